"""Spec models: defaults filled after loading, cross-field rules, paths, secrets."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from batchimage.core.errors import SpecProblem, UsageError
from batchimage.spec import AzureBlobState, CustomCloud, LocalState, SecretRef, Spec, load_spec

from .conftest import MINIMAL

POOL = """
pools:
  - id: work
    batch_account: {name: acct, location: westus}
    vm_size: Standard_D2s_v5
"""


def messages(found: list[SpecProblem]) -> dict[str, str]:
    return {p.field: p.message for p in found}


def test_minimal_spec_gets_every_default(write_spec: Callable[..., Path]) -> None:
    path = write_spec(MINIMAL + POOL + "    dedicated_nodes: 1\n")
    spec = load_spec(path, environ={})
    assert spec.cloud == "AzurePublicCloud"
    assert spec.cleanup == "on_success"
    assert spec.os_type == "linux"
    assert spec.image.capture.gallery.definition.os_type == "linux"
    assert spec.image.capture.gallery.resource_group == "demo-rg"
    assert spec.pools[0].batch_account.resource_group == "demo-rg"
    assert [(r.region, r.count) for r in spec.image.capture.gallery.replicas] == [
        ("eastus", 1),
        ("westus", 1),
    ]
    assert spec.image.build.timeout_s == spec.timeouts.build_s == 1800
    assert (spec.retry.max_attempts, spec.retry.initial_delay_s) == (6, 2)
    assert (spec.retry.max_delay_s, spec.retry.step_deadline_s) == (60, 3600)
    assert spec.pools[0].rollout == "blue_green"
    assert spec.pools[0].wait_for == "steady"
    assert spec.pools[0].node_agent_sku == "auto"
    assert isinstance(spec.state, LocalState)
    assert spec.local_state_path == path.parent / ".batchimage" / "state" / "demo.json"
    assert spec.source_path == path.resolve()
    assert spec.source_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert spec.base_dir == path.parent.resolve()


def test_relative_paths_resolve_against_the_spec_folder(
    write_spec: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_spec("echo hi\n", name="sub/scripts/setup.sh")
    text = (
        MINIMAL.replace(
            "  capture:", "  customize:\n    - shell_file: scripts/setup.sh\n  capture:"
        )
        + "state: {path: run/state.json}\n"
    )
    path = write_spec(text, name="sub/spec.yaml")
    monkeypatch.chdir(tmp_path.parent)
    spec = load_spec(os.path.relpath(path), environ={})
    assert spec.image.customize[0].shell_file == (tmp_path / "sub/scripts/setup.sh").resolve()
    assert spec.local_state_path == (tmp_path / "sub/run/state.json").resolve()


def test_missing_input_file_is_reported(problems: Callable[..., list[SpecProblem]]) -> None:
    text = MINIMAL.replace("  capture:", "  customize:\n    - shell_file: nope.sh\n  capture:")
    found = messages(problems(text))
    assert found["image.customize[0].shell_file"].startswith("no such file: ")


def test_azure_blob_state_defaults(load: Callable[..., Spec]) -> None:
    spec = load(MINIMAL + "state: {backend: azure_blob, storage_account: st1, container: state}\n")
    assert isinstance(spec.state, AzureBlobState)
    assert (spec.state.blob, spec.state.resource_group) == ("demo.json", "demo-rg")
    assert spec.local_state_path is None


def test_custom_cloud_profile(load: Callable[..., Spec]) -> None:
    text = MINIMAL.replace(
        "name: demo", "name: demo\ncloud: {name: stack, arm_endpoint: 'https://arm.local/'}", 1
    )
    spec = load(text)
    assert isinstance(spec.cloud, CustomCloud)
    assert spec.cloud.arm_endpoint == "https://arm.local/"


def test_sandbox_may_omit_the_subscription(
    load: Callable[..., Spec], problems: Callable[..., list[SpecProblem]]
) -> None:
    no_sub = MINIMAL.replace("subscription: 00000000-0000-4000-8000-000000000001\n", "")
    assert load("cloud: sandbox\n" + no_sub).subscription is None
    assert messages(problems(no_sub))["subscription"].startswith("required")


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        (
            "    dedicated_nodes: 1\n    autoscale: {formula: x}\n",
            "pools[0].dedicated_nodes",
            "autoscale excludes fixed node counts",
        ),
        ("    wait_for: idle\n", "pools[0]", "a fixed-size pool needs dedicated_nodes"),
        (
            "    spot_nodes: 1\n    wait_for: none\n    smoke_test: {command_line: x}\n",
            "pools[0].smoke_test",
            "a smoke test needs wait_for",
        ),
        (
            "    spot_nodes: 1\n    network: {public_ip: none}\n",
            "pools[0].network.subnet_id",
            "public_ip 'none' needs a subnet_id",
        ),
    ],
)
def test_pool_rules(
    problems: Callable[..., list[SpecProblem]], extra: str, field: str, message: str
) -> None:
    assert message in messages(problems(MINIMAL + POOL + extra))[field]


def test_replicas_must_cover_pool_regions_and_the_location(
    problems: Callable[..., list[SpecProblem]],
) -> None:
    text = MINIMAL.replace(
        "      definition:", "      replicas: [{region: northeurope}]\n      definition:"
    )
    found = problems(text + POOL + "    dedicated_nodes: 1\n")
    texts = [p.message for p in found if p.field == "image.capture.gallery.replicas"]
    assert any("'eastus'" in t for t in texts)
    assert any("'westus', the region of pool 'work'" in t for t in texts)


def test_pools_need_a_generalized_image(
    problems: Callable[..., list[SpecProblem]], load: Callable[..., Spec]
) -> None:
    """Batch takes only generalized gallery images: a built image that skips generalizing
    cannot feed a pool, so validate refuses it (not a pool failing after the build)."""
    off = MINIMAL.replace("  capture:", "  generalize: {enabled: false}\n  capture:")
    found = problems(off + POOL + "    dedicated_nodes: 1\n")
    (problem,) = [p for p in found if p.field == "image.generalize.enabled"]
    assert "Batch pools need a generalized image" in problem.message
    assert (problem.line, problem.column) == (8, 25)  # the `false` itself
    assert load(off).image.generalize.enabled is False  # an image without pools may skip it
    vhd = off.replace(
        "    marketplace: {publisher: Canonical, offer: ubuntu-24_04-lts, sku: server}",
        "    vhd_url: {url: 'https://st.blob.core.windows.net/vhds/base.vhd'}\n    os_type: linux",
    )
    agent = "    node_agent_sku: batch.node.ubuntu 24.04\n"
    spec = load(vhd + POOL + agent + "    dedicated_nodes: 1\n")
    assert spec.pools and not spec.image.builds_vm  # a VHD registered as it is: no build VM


def test_unmanaged_disk_needs_a_storage_account(problems: Callable[..., list[SpecProblem]]) -> None:
    text = MINIMAL.replace("  capture:", "  build: {os_disk: {type: unmanaged}}\n  capture:")
    found = messages(problems(text))
    assert found["image.build.os_disk.storage_account"] == (
        "an unmanaged OS disk needs a storage account"
    )


def test_base_needs_exactly_one_source(
    problems: Callable[..., list[SpecProblem]], write_spec: Callable[..., Path]
) -> None:
    vhd = write_spec("x", name="disk.vhd")
    both = MINIMAL.replace(
        "    marketplace:", f"    vhd_file: {{path: {vhd}, storage_account: st1}}\n    marketplace:"
    )
    found = messages(problems(both))
    assert "not 'marketplace' and 'vhd_file'" in found["image.base.vhd_file"]
    needs_storage = MINIMAL.replace(
        "    marketplace: {publisher: Canonical, offer: ubuntu-24_04-lts, sku: server}",
        f"    vhd_file: {{path: {vhd}}}\n    os_type: linux",
    )
    assert messages(problems(needs_storage))["image.base.vhd_file.storage_account"] == (
        "required, but missing"
    )


def test_vhd_base_needs_an_os_type(
    problems: Callable[..., list[SpecProblem]], write_spec: Callable[..., Path]
) -> None:
    vhd = write_spec("x", name="disk.vhd")
    text = MINIMAL.replace(
        "    marketplace: {publisher: Canonical, offer: ubuntu-24_04-lts, sku: server}",
        f"    vhd_file: {{path: {vhd}, storage_account: st1}}",
    )
    assert "required for a VHD base" in messages(problems(text))["image.base.os_type"]


def test_script_steps_must_match_the_os(problems: Callable[..., list[SpecProblem]]) -> None:
    text = MINIMAL.replace(
        "{publisher: Canonical, offer: ubuntu-24_04-lts, sku: server}",
        "{publisher: MicrosoftWindowsServer, offer: WindowsServer, sku: 2022-datacenter-g2}",
    ).replace("  capture:", "  customize:\n    - shell: echo hi\n  capture:")
    found = messages(problems(text))
    assert found["image.customize[0].shell"] == "a linux script step cannot run on a windows image"


def test_vhd_url_with_a_sas_token_is_refused(problems: Callable[..., list[SpecProblem]]) -> None:
    text = MINIMAL.replace(
        "    marketplace: {publisher: Canonical, offer: ubuntu-24_04-lts, sku: server}",
        "    vhd_url: {url: 'https://st.blob.core.windows.net/v/a.vhd?sv=1&sig=SECRET'}\n"
        "    os_type: linux",
    )
    assert "SAS token" in messages(problems(text))["image.base.vhd_url.url"]


def test_duplicate_pool_ids_in_one_account(problems: Callable[..., list[SpecProblem]]) -> None:
    pool = POOL.split("\n", 2)[2] + "    dedicated_nodes: 1\n"
    found = messages(problems(MINIMAL + "pools:\n" + pool + pool))
    assert found["pools[1].id"] == "pool id 'work' is used twice in account 'acct'"


def test_inline_secret_is_refused(problems: Callable[..., list[SpecProblem]]) -> None:
    text = MINIMAL.replace(
        "  capture:", "  customize:\n    - shell: x\n      secret_env: {TOKEN: hunter2}\n  capture:"
    )
    found = messages(problems(text))
    assert "secrets are never written in a spec" in found["image.customize[0].secret_env.TOKEN"]


def test_secret_reference_resolves_without_printing(tmp_path: Path) -> None:
    from_env = SecretRef(env="TOKEN")
    value = from_env.resolve({"TOKEN": "s3cret"})
    assert isinstance(value, SecretStr)
    assert value.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(value) and "s3cret" not in str(value)
    secret_file = tmp_path / "token"
    secret_file.write_text("from-file\n")
    assert SecretRef(file=secret_file).resolve().get_secret_value() == "from-file"
    vault = SecretRef(key_vault="https://kv.vault.azure.net/secrets/token")
    assert vault.resolve(key_vault=lambda uri: uri[-5:]).get_secret_value() == "token"
    assert vault.describe() == "key_vault:https://kv.vault.azure.net/secrets/token"
    with pytest.raises(UsageError, match="TOKEN"):
        from_env.resolve({})


def test_region_display_names_are_normalized(load: Callable[..., Spec]) -> None:
    assert load(MINIMAL.replace("location: eastus", "location: East US")).location == "eastus"


def test_friendly_messages_for_forms(problems: Callable[..., list[SpecProblem]]) -> None:
    text = MINIMAL.replace("sku: server}", "sku: server, version: newest}").replace(
        "  capture:", "  customize:\n    - restart: false\n  capture:"
    )
    found = messages(problems(text))
    assert found["image.base.marketplace.version"] == (
        "'newest' is not valid: use 'latest' or an exact version like '1.2.3'"
    )
    assert found["image.customize[0].restart"].startswith("write 'restart: true'")


def _security(text: str, security: str, **definition: str) -> str:
    extra = "".join(f", {k}: {v}" for k, v in definition.items())
    return text.replace("sku: linux}", f"sku: linux, security_type: {security}{extra}}}")


def test_security_types_azure_cannot_make(problems: Callable[..., list[SpecProblem]]) -> None:
    at = "image.capture.gallery.definition.security_type"
    confidential = messages(problems(_security(MINIMAL, "ConfidentialVM")))
    assert "cannot make ConfidentialVM images" in confidential[at]
    assert "use ConfidentialVMSupported" in confidential[at]
    gen1 = messages(problems(_security(MINIMAL, "TrustedLaunchSupported", hyper_v_generation="V1")))
    assert gen1[at].startswith("TrustedLaunchSupported is a security type of Generation 2 images")
    managed = problems(_security(MINIMAL, "TrustedLaunch") + "    managed_image: {name: img}\n")
    found = messages(managed)
    assert (
        "Azure makes no managed image from a Trusted Launch VM"
        in found["image.capture.managed_image"]
    )
    problem = next(p for p in managed if p.field == "image.capture.managed_image")
    assert (problem.line, problem.column) > (0, 0)


def test_trusted_launch_is_not_made_from_a_vhd(
    problems: Callable[..., list[SpecProblem]], write_spec: Callable[..., Path]
) -> None:
    classic = _security(MINIMAL, "TrustedLaunch").replace(
        "  capture:", "  build: {os_disk: {type: unmanaged, storage_account: disks}}\n  capture:"
    )
    classic = classic.replace("subscription:", "cloud: sandbox\nsubscription:")
    found = messages(problems(classic))
    assert (
        "a TrustedLaunch definition takes captures of Trusted Launch VMs"
        in found["image.capture.gallery.definition.security_type"]
    )


def test_public_azure_has_no_unmanaged_disks(
    problems: Callable[..., list[SpecProblem]], load: Callable[..., Spec]
) -> None:
    classic = MINIMAL.replace(
        "  capture:", "  build: {os_disk: {type: unmanaged, storage_account: disks}}\n  capture:"
    )
    found = problems(classic)  # cloud: AzurePublicCloud, the default
    problem = next(p for p in found if p.field == "image.build.os_disk.type")
    assert "unmanaged disks are retired in public Azure" in problem.message
    assert "31 March 2026" in problem.message and "use type: managed" in problem.message
    line = classic.splitlines()[problem.line - 1]
    assert line[problem.column - 1 :].startswith("unmanaged")  # file:line:col of the value
    stack = classic.replace(
        "subscription:",
        "cloud: {name: stack, arm_endpoint: https://management.local.azurestack.external/}\nsubscription:",
    )
    assert load(stack).image.build.os_disk.type == "unmanaged"  # other clouds may have them


def test_retention_and_life_settings(
    problems: Callable[..., list[SpecProblem]], load: Callable[..., Spec]
) -> None:
    at = "image.capture.gallery"
    gallery = "      gallery: demo_gallery\n"
    spec = load(MINIMAL.replace(gallery, gallery + "      keep: 2\n      keep_days: 30\n"))
    settings = spec.image.capture.gallery
    assert (settings.keep, settings.keep_days, settings.retains) == (2, 30, True)
    assert not load(MINIMAL).image.capture.gallery.retains
    rolled = load(
        MINIMAL.replace(gallery, gallery + "      exclude_from_latest: until_rolled_out\n")
    )
    assert rolled.image.capture.gallery.exclude_from_latest == "until_rolled_out"
    found = messages(problems(MINIMAL.replace(gallery, gallery + "      keep: 0\n")))
    assert "greater than or equal to 1" in found[f"{at}.keep"]
    both = "      end_of_life: 2030-01-01\n      end_of_life_days: 90\n"
    found = messages(problems(MINIMAL.replace(gallery, gallery + both)))
    assert found[f"{at}.end_of_life_days"] == "give either 'end_of_life' or 'end_of_life_days'"


def test_keep_used_by_names_more_accounts_for_retention(
    problems: Callable[..., list[SpecProblem]], load: Callable[..., Spec]
) -> None:
    gallery = "      gallery: demo_gallery\n"
    more = "      keep_used_by:\n        - name: teambatch\n          resource_group: team-rg\n"
    spec = load(MINIMAL.replace(gallery, gallery + "      keep: 2\n" + more))
    (account,) = spec.image.capture.gallery.keep_used_by
    assert (account.name, account.resource_group) == ("teambatch", "team-rg")
    text = MINIMAL.replace(gallery, gallery + more)  # no keep: nothing would read it
    (problem,) = problems(text)
    assert problem.field == "image.capture.gallery.keep_used_by"
    assert problem.message == "only retention reads it: give 'keep' or 'keep_days' too"
    line = text.splitlines()[problem.line - 1]  # file:line:col of the value
    assert line[problem.column - 1 :] == "- name: teambatch"
