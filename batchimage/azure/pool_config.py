"""A pool's configuration as the Batch SDK has it: the create options for a spec pool, and
one plain, comparable form (`PoolConfig`) read alike from those options and from a live
pool; which differences matter and what they need is `steps/pool_rules.py`'s to say.

    options = create_options(pool, Desired(pool_id, image_id, agent, metadata, ...), secret)
    want = config_of(options)            # the same normaliser reads a live BatchPool
    changes = diff(config_of(live), want)   # steps/pool_rules.py
    [c for c in changes if c.immutable]  # what only a new pool can change

Secrets (mount keys, passwords) are sent but never compared. The security profile follows
the image: a TrustedLaunch image definition backs only pools that ask for Trusted Launch
(`securityProfile`, secure boot and vTPM on).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from azure.batch import models as bm

from batchimage.azure.arm import text
from batchimage.core.ownership import Marks

# the metadata batchimage writes on every pool it manages is `Marks.Pool`; these two are
# kept from the live pool, never compared
KEPT_META = (Marks.Pool.RUN, Marks.Pool.SMOKE_TEST)

SecretFn = Callable[[Any], str]


@dataclass(frozen=True)
class Desired:
    """What the spec does not say by itself: the pool id, image, agent, metadata, the
    security type the image demands ("trustedLaunch", or "" for none) and the resize
    timeout the pool rules give."""

    pool_id: str
    image_id: str
    node_agent: str
    metadata: Mapping[str, str]
    security: str = ""
    resize_timeout_s: int = field(kw_only=True)  # of a fixed-size pool (steps/pool_rules.py)


@dataclass(frozen=True)
class PoolConfig:
    """The comparable configuration of a pool (spec or live)."""

    vm_size: str
    image_id: str
    node_agent: str
    security: str
    display_name: str | None
    task_slots: int
    network: str
    mounts: str
    start_task: str
    metadata: tuple[tuple[str, str], ...]
    autoscale: tuple[str, int] | None
    dedicated: int
    spot: int


# -- spec -> create options --------------------------------------------------------------


def create_options(pool: Any, desired: Desired, secret: SecretFn) -> bm.BatchPoolCreateOptions:
    """The Batch create options for spec pool `pool` (secrets resolved through `secret`)."""
    options: dict[str, Any] = {
        "id": desired.pool_id,
        "display_name": pool.display_name,
        "vm_size": pool.vm_size,
        "virtual_machine_configuration": bm.VirtualMachineConfiguration(
            image_reference=bm.BatchVmImageReference(virtual_machine_image_id=desired.image_id),
            node_agent_sku_id=desired.node_agent,
            security_profile=security_profile(desired.security),
        ),
        "task_slots_per_node": pool.task_slots_per_node,
        "start_task": start_task(pool.start_task),
        "network_configuration": network(pool.network),
        "mount_configuration": mounts(pool.mounts, secret) or None,
        "metadata": [bm.BatchMetadataItem(name=k, value=v) for k, v in desired.metadata.items()],
    }
    if pool.autoscale is not None:
        options["enable_auto_scale"] = True
        options["auto_scale_formula"] = pool.autoscale.formula
        options["auto_scale_evaluation_interval"] = timedelta(minutes=pool.autoscale.interval_min)
    else:
        options["enable_auto_scale"] = False
        options["target_dedicated_nodes"] = pool.dedicated_nodes or 0
        options["target_low_priority_nodes"] = pool.spot_nodes or 0
        options["resize_timeout"] = timedelta(seconds=desired.resize_timeout_s)
    return bm.BatchPoolCreateOptions(**{k: v for k, v in options.items() if v is not None})


def security_profile(security: str) -> bm.SecurityProfile | None:
    """The pool's security profile: Trusted Launch with secure boot and vTPM, or none."""
    if not security:
        return None
    return bm.SecurityProfile(
        security_type=security,
        uefi_settings=bm.BatchUefiSettings(secure_boot_enabled=True, vtpm_enabled=True),
    )


def start_task(task: Any) -> bm.BatchStartTask | None:
    """The Batch start task for a spec start task (None for none)."""
    if task is None:
        return None
    identity = None
    if task.elevated:
        identity = bm.UserIdentity(
            auto_user=bm.AutoUserSpecification(scope="pool", elevation_level="admin")
        )
    return bm.BatchStartTask(
        command_line=task.command_line,
        resource_files=[_resource_file(f) for f in task.resource_files] or None,
        environment_settings=[
            bm.EnvironmentSetting(name=k, value=v) for k, v in sorted(task.environment.items())
        ]
        or None,
        user_identity=identity,
        max_task_retry_count=task.max_task_retry_count,
        wait_for_success=task.wait_for_success,
    )


def _resource_file(spec: Any) -> bm.ResourceFile:
    identity = (
        bm.BatchNodeIdentityReference(resource_id=spec.identity_reference)
        if spec.identity_reference
        else None
    )
    return bm.ResourceFile(
        http_url=spec.http_url,
        storage_container_url=spec.storage_container_url,
        auto_storage_container_name=spec.auto_storage_container_name,
        blob_prefix=spec.blob_prefix,
        file_path=spec.file_path,
        file_mode=spec.file_mode,
        identity_reference=identity,
    )


IP_MODES = {
    "batch_managed": "batchmanaged",
    "user_managed": "usermanaged",
    "none": "nopublicipaddresses",
}


def network(spec: Any) -> bm.NetworkConfiguration | None:
    """The network configuration (None when the spec keeps Batch's default)."""
    if spec.subnet_id is None and spec.public_ip == "batch_managed":
        return None
    public = None
    if spec.public_ip != "batch_managed":
        public = bm.BatchPublicIpAddressConfiguration(
            ip_address_provisioning_type=IP_MODES[spec.public_ip],
            ip_address_ids=list(spec.public_ip_ids) or None,
        )
    return bm.NetworkConfiguration(subnet_id=spec.subnet_id, public_ip_address_configuration=public)


def mounts(specs: list[Any], secret: SecretFn) -> list[bm.MountConfiguration]:
    """The mount configurations (secrets from `secret(ref)`)."""
    out = []
    for mount in specs:
        if mount.azure_blob is not None:
            m = mount.azure_blob
            out.append(
                bm.MountConfiguration(
                    azure_blob_file_system_configuration=bm.AzureBlobFileSystemConfiguration(
                        account_name=m.account_name,
                        container_name=m.container_name,
                        account_key=secret(m.account_key) if m.account_key else None,
                        sas_key=secret(m.sas_key) if m.sas_key else None,
                        identity_reference=bm.BatchNodeIdentityReference(
                            resource_id=m.identity_reference
                        )
                        if m.identity_reference
                        else None,
                        blobfuse_options=m.mount_options,
                        relative_mount_path=m.relative_mount_path,
                    )
                )
            )
        elif mount.azure_files is not None:
            f = mount.azure_files
            out.append(
                bm.MountConfiguration(
                    azure_file_share_configuration=bm.AzureFileShareConfiguration(
                        account_name=f.account_name,
                        azure_file_url=f.share_url,
                        account_key=secret(f.account_key),
                        relative_mount_path=f.relative_mount_path,
                        mount_options=f.mount_options,
                    )
                )
            )
        elif mount.nfs is not None:
            n = mount.nfs
            out.append(
                bm.MountConfiguration(
                    nfs_mount_configuration=bm.NfsMountConfiguration(
                        source=n.source,
                        relative_mount_path=n.relative_mount_path,
                        mount_options=n.mount_options,
                    )
                )
            )
        elif mount.cifs is not None:
            c = mount.cifs
            out.append(
                bm.MountConfiguration(
                    cifs_mount_configuration=bm.CifsMountConfiguration(
                        username=c.username,
                        source=c.source,
                        password=secret(c.password),
                        relative_mount_path=c.relative_mount_path,
                        mount_options=c.mount_options,
                    )
                )
            )
    return out


# -- options or live pool -> comparable config -------------------------------------------

SECRET_FIELDS = frozenset({"accountKey", "sasKey", "password"})


def _plain(model: Any) -> Any:
    """An SDK model as plain JSON (REST names), without secrets and empty values."""
    if model is None:
        return None
    if isinstance(model, list):
        return [_plain(item) for item in model]
    if hasattr(model, "as_dict"):
        model = model.as_dict()
    if isinstance(model, Mapping):
        out = {}
        for key, value in model.items():
            if key in SECRET_FIELDS:
                continue
            value = _plain(value)
            if value not in (None, [], {}, ""):
                out[key] = value
        return out
    return model


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _start_task(task: Any) -> str:
    if task is None:
        return ""
    identity = getattr(task, "user_identity", None)
    auto = getattr(identity, "auto_user", None) if identity is not None else None
    elevated = text(getattr(auto, "elevation_level", None)).lower() == "admin"
    env = {e.name: e.value or "" for e in (task.environment_settings or [])}
    retries = task.max_task_retry_count
    return _canon(
        {
            "command_line": task.command_line,
            "resource_files": _plain(task.resource_files) or [],
            "environment": env,
            "elevated": elevated,
            "user": getattr(identity, "username", None) if identity is not None else None,
            "max_task_retry_count": 0 if retries is None else retries,
            "wait_for_success": True if task.wait_for_success is None else task.wait_for_success,
        }
    )


def _network(config: Any) -> str:
    if config is None:
        return _canon({"subnet": None, "ip": "batchmanaged", "ids": []})
    public = config.public_ip_address_configuration
    mode = text(getattr(public, "ip_address_provisioning_type", None) or "batchmanaged").lower()
    ids = sorted(i.lower() for i in (getattr(public, "ip_address_ids", None) or []))
    subnet = config.subnet_id.lower() if config.subnet_id else None
    return _canon({"subnet": subnet, "ip": mode, "ids": ids})


def _minutes(interval: Any) -> int:
    if isinstance(interval, timedelta):
        return int(interval.total_seconds() // 60)
    return 15


def _security(profile: Any) -> str:
    return text(getattr(profile, "security_type", "") or "").lower()


def config_of(pool: Any) -> PoolConfig:
    """The comparable configuration of create options or a live `BatchPool`."""
    vmc = pool.virtual_machine_configuration
    ref = vmc.image_reference if vmc is not None else None
    metadata = {m.name: m.value or "" for m in (pool.metadata or []) if m.name not in KEPT_META}
    autoscale = None
    if pool.enable_auto_scale:
        autoscale = (
            (pool.auto_scale_formula or "").strip(),
            _minutes(pool.auto_scale_evaluation_interval),
        )
    return PoolConfig(
        vm_size=str(pool.vm_size or "").lower(),
        image_id=str(getattr(ref, "virtual_machine_image_id", "") or "").lower(),
        node_agent=str(getattr(vmc, "node_agent_sku_id", "") or "").lower(),
        security=_security(getattr(vmc, "security_profile", None)),
        display_name=pool.display_name or None,
        task_slots=pool.task_slots_per_node or 1,
        network=_network(pool.network_configuration),
        mounts=_canon(_plain(pool.mount_configuration) or []),
        start_task=_start_task(pool.start_task),
        metadata=tuple(sorted(metadata.items())),
        autoscale=autoscale,
        dedicated=pool.target_dedicated_nodes or 0,
        spot=pool.target_low_priority_nodes or 0,
    )
