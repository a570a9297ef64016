"""Security types end to end (image and pools) through the engine and the real SDKs: a
Standard definition is sent without a SecurityType feature; a TrustedLaunch definition is
built on a Trusted Launch VM and its pool asks for Trusted Launch; a `*Supported`
definition is built on a Standard VM and its pool asks for nothing. The sandbox refuses
each of these done the other way (tests/sandbox/test_compute_trusted_launch.py)."""

from __future__ import annotations

from typing import Any

from batchimage.azure.clients import AzureClients
from batchimage.azure.ids import parse_id
from batchimage.spec import load_spec
from tests.pools.harness import PoolHarness


def _security(value: str | None) -> Any:
    def edit(data: dict[str, Any]) -> None:
        if value is not None:
            data["image"]["capture"]["gallery"]["definition"]["security_type"] = value
        data["cleanup"] = "never"  # keep the build VM to read how it was made

    return edit


def _build_vm(pools: PoolHarness, clients: AzureClients, spec: Any) -> Any:
    vm_id = pools.outputs(spec, "build.vm")["vm_id"]
    parts = parse_id(vm_id)
    return clients.compute.virtual_machines.get(parts["group"], vm_id.rsplit("/", 1)[1])


def _definition(clients: AzureClients, spec: Any) -> Any:
    gallery = load_spec(spec).image.capture.gallery
    return clients.compute.gallery_images.get(
        "sandbox-rg", gallery.gallery, gallery.definition.name
    )


def test_trusted_launch_definition_vm_and_pool(pools: PoolHarness, clients: AzureClients) -> None:
    spec = pools.spec("quickstart.yaml", _security("TrustedLaunch"))
    pools.apply(spec)
    features = [(f.name, f.value) for f in _definition(clients, spec).features]
    assert features == [("SecurityType", "TrustedLaunch")]
    profile = _build_vm(pools, clients, spec).security_profile
    assert profile.security_type == "TrustedLaunch"
    assert (profile.uefi_settings.secure_boot_enabled, profile.uefi_settings.v_tpm_enabled) == (
        True,
        True,
    )
    pool = load_spec(spec).pools[0]
    live = pools.batch.get_pool(pool.id)
    security = live.virtual_machine_configuration.security_profile
    assert security is not None and security.security_type == "trustedLaunch"
    assert security.uefi_settings.secure_boot_enabled and security.uefi_settings.vtpm_enabled
    assert live.current_dedicated_nodes == pool.dedicated_nodes and not live.resize_errors
    assert pools.outputs(spec, "capture.version")["security_type"] == "TrustedLaunch"
    writes = pools.writes(lambda: pools.apply(spec))
    assert writes == 0, pools.admin.counters()["operations"]


def test_supported_definition_is_built_on_a_standard_vm(
    pools: PoolHarness, clients: AzureClients
) -> None:
    spec = pools.spec("quickstart.yaml", _security("TrustedLaunchSupported"))
    pools.apply(spec)
    features = [(f.name, f.value) for f in _definition(clients, spec).features]
    assert features == [("SecurityType", "TrustedLaunchSupported")]
    profile = _build_vm(pools, clients, spec).security_profile
    assert profile.security_type == "Standard" and profile.uefi_settings is None
    live = pools.batch.get_pool(load_spec(spec).pools[0].id)
    assert live.virtual_machine_configuration.security_profile is None
    assert not live.resize_errors


def test_standard_definition_has_no_security_type_feature(
    pools: PoolHarness, clients: AzureClients
) -> None:
    spec = pools.spec("quickstart.yaml", _security(None))
    data_security = load_spec(spec).image.capture.gallery.definition.security_type
    assert data_security is None  # Standard: the default
    pools.apply(spec)
    assert not _definition(clients, spec).features
    assert _build_vm(pools, clients, spec).security_profile.security_type == "Standard"
