"""Find a pipeline's build resources in Azure by their marks, whatever the state says; mark
a build VM's OS disk before the VM is deleted, so the disk is still found afterwards.

    places = BuildPlaces.of(spec)  # in the inputs of the steps that look for the build
    refs = build_leftovers(ctx, places)   # every build resource of ctx.pipeline there now
    mark_os_disk(ctx, vm_ref)      # before a build VM goes: its managed disk carries our tags

The state lists what the runs created, but a state can be lost (deleted, or replaced by an
old copy) while the build still stands: between the image version and the end of cleanup,
say. Cleanup and destroy therefore also look in Azure. What counts as this pipeline's
build, and how it is known as ours (never by its name alone):

- VMs, NICs, public IPs, VNets, NSGs and managed disks in the build group (the spec's
  `resource_group`) tagged with the pipeline, a run and role `build`: every build step
  tags what it writes, and a VM's OS disk is marked before its VM is deleted (Azure copies
  a VM's tags to its OS disk only when it makes the disk; the sandbox not even then);
- each such VM's OS disk: its managed disk, or the VHD blob of an unmanaged one; an
  unmanaged VHD left by a deleted VM is its build's (`<stem>-vm-osdisk.vhd` in the spec's
  container) while another resource of that build (`<stem>-nic`, ...) still carries the
  marks, as it does until cleanup has deleted the VHD (it goes before the NIC);
- the build group itself, when its tags say the pipeline created it (cleanup still
  deletes it only when nothing else is left in it);
- staged files: blobs under `<pipeline>/` in the staging container whose metadata names the
  pipeline and the run that wrote them.

Every ref carries the run that made it (`created_by_run`), read from those marks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from batchimage.azure.arm import (
    BLOB,
    DISK,
    GROUP,
    NIC,
    NSG,
    PUBLIC_IP,
    VM,
    VNET,
    tags_of,
    text,
)
from batchimage.azure.disks import read_disk, set_disk_tags
from batchimage.azure.errors import azure_call, is_not_found
from batchimage.azure.groups import read_group, resources_in
from batchimage.azure.guest import read_vm
from batchimage.azure.ids import parse_id
from batchimage.core.errors import AzureError, PermanentAzureError
from batchimage.core.ownership import BUILD_ROLE, STAGING_CONTAINER, Marks
from batchimage.core.refs import ResourceRef
from batchimage.steps.marks import owned, ref_for
from batchimage.steps.staging import StagingPlaces

if TYPE_CHECKING:
    from batchimage.steps.base import RunContext

# What a build leaves in its group, by the type ARM lists (compared without case).
BUILD_KINDS = {kind.lower(): kind for kind in (VM, DISK, NIC, PUBLIC_IP, VNET, NSG)}


class BuildPlaces(BaseModel):
    """Where a spec's build leaves things: its group, the storage account and container of
    an unmanaged OS disk (None: managed), and where files are staged (None: no file step)."""

    model_config = ConfigDict(frozen=True)

    group: str
    vhd_account: str | None = None
    vhd_container: str = "vhds"
    staging: StagingPlaces | None = None

    @classmethod
    def of(cls, spec: Any) -> BuildPlaces:
        """The build places of `spec`."""
        disk = spec.image.build.os_disk
        unmanaged = disk.type == "unmanaged" and bool(disk.storage_account)
        files = any(step.action == "file" for step in spec.image.customize)
        return cls(
            group=spec.resource_group,
            vhd_account=disk.storage_account if unmanaged else None,
            vhd_container=disk.container or "vhds",
            staging=StagingPlaces.of(spec) if files else None,
        )


def build_leftovers(ctx: RunContext, places: BuildPlaces) -> list[ResourceRef]:
    """Every build resource of `ctx.pipeline` in `places` that exists now (see the module
    docstring)."""
    refs = _in_group(ctx, places) + _staged(ctx, places)
    seen: set[str] = set()
    unique = []
    for ref in refs:
        if ref.id.lower() not in seen:
            seen.add(ref.id.lower())
            unique.append(ref)
    return unique


def _in_group(ctx: RunContext, places: BuildPlaces) -> list[ResourceRef]:
    group = places.group
    found = read_group(ctx.clients, group)
    if found is None:
        return []
    refs = []
    if owned(ctx, tags_of(found)):
        refs.append(ref_for(ctx, str(found.id), GROUP, tags_of(found)))
    items = resources_in(ctx.clients, group)
    runs: dict[str, str] = {}  # build name stem -> the run its marked resources name
    for item in items:
        tags = tags_of(item)
        kind = BUILD_KINDS.get(text(item.type).lower())
        if kind is None or not owned(ctx, tags) or tags.get(Marks.Tag.ROLE) != BUILD_ROLE:
            continue
        refs.append(ref_for(ctx, str(item.id), kind, tags))
        runs.setdefault(text(item.name).rsplit("-", 1)[0], tags[Marks.Tag.RUN])
        if kind == VM:
            refs += _os_disk(ctx, group, text(item.name), tags[Marks.Tag.RUN])
    return refs + _unmanaged_vhds(ctx, places, runs)


def _os_disk(ctx: RunContext, group: str, vm_name: str, run: str) -> list[ResourceRef]:
    """The OS disk of build VM `vm_name` (made by the VM's run)."""
    vm = read_vm(ctx, group, vm_name)
    disk = getattr(getattr(vm, "storage_profile", None), "os_disk", None)
    if disk is None:
        return []
    if disk.managed_disk is not None and disk.managed_disk.id:
        return [ResourceRef(id=disk.managed_disk.id, kind=DISK, created_by_run=run)]
    if disk.vhd is not None and disk.vhd.uri:
        from batchimage.azure.blobs import account_for_url, blob_id, split_blob_url

        account = account_for_url(ctx.clients, disk.vhd.uri)
        if account is not None:
            container, blob = split_blob_url(account, disk.vhd.uri)
            ref_id = blob_id(account, container, blob)
            return [ResourceRef(id=ref_id, kind=BLOB, created_by_run=run)]
    return []


def _unmanaged_vhds(
    ctx: RunContext, places: BuildPlaces, runs: dict[str, str]
) -> list[ResourceRef]:
    """The unmanaged OS disk VHDs of builds whose VM is gone (see the module docstring)."""
    if places.vhd_account is None or not runs:
        return []
    from batchimage.azure.blobs import blob_id, blob_service, find_account

    account = find_account(ctx.clients, places.vhd_account, places.group)
    if account is None:
        return []
    container_name = places.vhd_container
    container = blob_service(ctx.clients, account).get_container_client(container_name)
    refs = []
    with azure_call(f"list VHDs in {account.name}/{container_name}"):
        if not container.exists():
            return []
        for blob in container.list_blobs(name_starts_with=f"{ctx.pipeline}-"):
            stem = blob.name.removesuffix("-vm-osdisk.vhd")
            leased = text(getattr(blob.lease, "state", None)).lower() == "leased"
            if stem != blob.name and stem in runs and not leased:
                ref_id = blob_id(account, container_name, blob.name)
                refs.append(ResourceRef(id=ref_id, kind=BLOB, created_by_run=runs[stem]))
    return refs


def _staged(ctx: RunContext, places: BuildPlaces) -> list[ResourceRef]:
    """Files this pipeline staged for its build VMs (blobs marked with a run)."""
    if places.staging is None:
        return []
    from batchimage.azure.blobs import blob_id, blob_service
    from batchimage.steps.staging import staging_account

    try:
        account = staging_account(ctx, places.staging)
    except PermanentAzureError as err:
        if err.code != "NoStagingAccount":
            raise
        return []  # no account to stage in: nothing was staged
    container = blob_service(ctx.clients, account).get_container_client(STAGING_CONTAINER)
    refs = []
    try:
        with azure_call(f"list staged files in {account.name}/{STAGING_CONTAINER}"):
            listed = list(
                container.list_blobs(name_starts_with=f"{ctx.pipeline}/", include=["metadata"])
            )
    except AzureError as err:
        if not is_not_found(err):
            raise
        return []  # no staging container yet
    for blob in listed:
        run = Marks.Blob.creator(blob.metadata, ctx.pipeline)
        if run:
            ref_id = blob_id(account, STAGING_CONTAINER, blob.name)
            refs.append(ResourceRef(id=ref_id, kind=BLOB, created_by_run=run))
    return refs


def mark_os_disk(ctx: RunContext, vm_ref: ResourceRef) -> None:
    """Before build VM `vm_ref` is deleted: tag its managed OS disk as this pipeline's
    (the VM's run and step, role build), unless it is so tagged already."""
    p = parse_id(vm_ref.id)
    vm = read_vm(ctx, p["group"], p["name"])
    if vm is None:
        return
    vm_tags = tags_of(vm)
    managed = vm.storage_profile.os_disk.managed_disk
    if not owned(ctx, vm_tags) or managed is None or not managed.id:
        return
    d = parse_id(managed.id)
    disk = read_disk(ctx, d["group"], d["name"])
    if disk is None:
        return
    tags = tags_of(disk)
    marks = {
        Marks.Tag.PIPELINE: ctx.pipeline,
        Marks.Tag.RUN: vm_tags[Marks.Tag.RUN],
        Marks.Tag.STEP: vm_tags.get(Marks.Tag.STEP, ""),
        Marks.Tag.ROLE: BUILD_ROLE,
    }
    if all(tags.get(name) == value for name, value in marks.items()):
        return
    set_disk_tags(ctx, d["group"], d["name"], {**tags, **marks})
