"""Step `build.vm`: the build VM - from the pinned base image, on the build NIC, managed OS
disk by default (an unmanaged VHD in the named storage account for the classic flow), Linux
with an SSH key (a throwaway one generated in memory when none is given, never stored),
Windows with an administrator password generated in memory (never in state or logs); a
Trusted Launch VM for a TrustedLaunch definition, a Standard one for any other."""

from __future__ import annotations

import secrets
from typing import Any

from pydantic import Field

from batchimage.azure.arm import BLOB, DISK, VM, tags_of, text
from batchimage.azure.blobs import blob_id, require_account, split_blob_url
from batchimage.azure.guest import read_vm, statuses, write_vm
from batchimage.core.errors import PermanentAzureError
from batchimage.core.ownership import BUILD_ROLE, Marks
from batchimage.core.redact import register_secret
from batchimage.core.refs import ResourceRef
from batchimage.spec import Build
from batchimage.steps.base import Outputs, RunContext, Step, StepInputs
from batchimage.steps.build_inventory import BuildPlaces
from batchimage.steps.create_group import CreateGroup
from batchimage.steps.create_nic import CreateNic
from batchimage.steps.deleting import DeletesCreated
from batchimage.steps.gallery import STANDARD, build_vm_security
from batchimage.steps.marks import observed, owned, ref_for, resource_tags
from batchimage.steps.names import BuildNames
from batchimage.steps.resolve_image import BasePin, ResolveImage, base_mark, made_from


class VmOutputs(Outputs):
    """The build VM and its OS disk (a managed disk id, or the VHD blob of an unmanaged one)."""

    vm_id: str
    vm_guid: str  # Azure's vmId: a re-created VM of the same name has a new one
    name: str
    group: str
    os_type: str
    os_disk_id: str | None = None
    os_vhd_url: str | None = None
    os_vhd_account_id: str | None = None


def ssh_public_key(build: Build) -> str:
    """The spec's SSH public key (`image.build`), or a new throwaway one (its private half
    is discarded)."""
    given = build.ssh_public_key
    if given is not None:
        return str(given.read_text(encoding="utf-8")).strip()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    public = Ed25519PrivateKey.generate().public_key()
    return public.public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()


def admin_password(ctx: RunContext, build: Build) -> str:
    """The spec's administrator password (`image.build`), or a new random one; registered
    as a secret."""
    given = build.admin_password
    if given is not None:
        return ctx.secret(given).get_secret_value()
    password = f"Bi-{secrets.token_urlsafe(24)}-7a"
    register_secret(password)
    return password


class VmInputs(StepInputs):
    """What makes the build VM (hashed: its name, size, OS disk, admin, whether an SSH key
    is given, spot, security type, region, the spec's tags); read, not hashed: the spec's
    `image.build` as it is, the OS, the build's names and places, the base's pin."""

    vm: str
    size: str
    os_disk: dict[str, Any]
    admin: str
    ssh_key_given: bool
    spot: bool
    security: str
    location: str
    tags: dict[str, str]
    build: Build = Field(exclude=True)
    os_type: str = Field(exclude=True)
    names: BuildNames = Field(exclude=True)
    places: BuildPlaces = Field(exclude=True)
    pin: BasePin = Field(exclude=True)


class CreateVm(DeletesCreated, Step[VmOutputs]):
    """The build VM, named after the pipeline and the image fingerprint."""

    given: VmInputs

    kind = "create_vm"
    key = "build.vm"
    apply_observes = True

    def __init__(self, spec: Any, group: CreateGroup, nic: CreateNic) -> None:
        names = BuildNames.of(spec)
        self.depends_on = (group, nic, ResolveImage)
        build = spec.image.build
        self.given = VmInputs(
            vm=names.vm,
            size=build.vm_size,
            os_disk=build.os_disk.model_dump(mode="json"),
            admin=build.admin_username,
            ssh_key_given=build.ssh_public_key is not None,
            spot=build.spot,
            security=build_vm_security(
                spec.image.capture.gallery.definition.security_type or STANDARD
            ),
            location=spec.location,
            tags=dict(spec.tags),
            build=build,
            os_type=spec.os_type,
            names=names,
            places=BuildPlaces.of(spec),
            pin=BasePin.of(spec),
        )

    def input_words(self, name: str) -> str | None:
        return "the base image" if name == f"@{ResolveImage.key}" else None

    def _read(self, ctx: RunContext) -> Any:
        return read_vm(ctx, self.given.names.group, self.given.names.vm)

    def stale(self, ctx: RunContext, found: Any) -> bool:
        """A VM of ours already generalized for another image (it cannot be customized
        again), or made from another base image than this run's (a VM's image cannot
        change: a base moved to a newer Marketplace version gets a new VM of the same name)."""
        tags = tags_of(found)
        if not owned(ctx, tags):
            return False
        other_image = is_generalized(found) and tags.get(Marks.Tag.IMAGE) != self.given.names.image
        return other_image or not made_from(ctx, self.given.pin, tags, Marks.Tag.BASE)

    def absent(self, ctx: RunContext) -> bool:
        """No VM of this name."""
        return self._read(ctx) is None

    def check(self, ctx: RunContext) -> VmOutputs | None:
        found = self._read(ctx)
        if found is None or text(found.provisioning_state) != "Succeeded" or self.stale(ctx, found):
            return None
        return self._outputs(ctx, found)

    def _outputs(self, ctx: RunContext, found: Any) -> VmOutputs:
        """The VM's outputs; one generalized for this image has done its work: Azure refuses
        any update to it, so it counts as up to date whatever its tags say."""
        tags = tags_of(found)
        fingerprint = ctx.fingerprint if is_generalized(found) else observed(ctx, tags)
        vm_ref = ref_for(ctx, found.id, VM, tags)
        disk = found.storage_profile.os_disk
        refs = [vm_ref]
        out: dict[str, Any] = {}
        if disk.managed_disk is not None and disk.managed_disk.id:
            out["os_disk_id"] = disk.managed_disk.id
            refs.append(
                ResourceRef(
                    id=disk.managed_disk.id, kind=DISK, created_by_run=vm_ref.created_by_run
                )
            )
        elif disk.vhd is not None and disk.vhd.uri:
            account = self._account(ctx)
            container, blob = split_blob_url(account, disk.vhd.uri)
            out["os_vhd_url"] = disk.vhd.uri
            out["os_vhd_account_id"] = account.id
            refs.append(
                ResourceRef(
                    id=blob_id(account, container, blob),
                    kind=BLOB,
                    created_by_run=vm_ref.created_by_run,
                )
            )
        return VmOutputs(
            vm_id=found.id,
            vm_guid=text(found.vm_id or ""),
            name=found.name,
            group=self.given.names.group,
            os_type=self.given.os_type,
            resources=tuple(refs),
            observed_fingerprint=fingerprint,
            **out,
        )

    def _account(self, ctx: RunContext) -> Any:
        disk = self.given.build.os_disk
        return require_account(ctx.clients, disk.storage_account or "", self.given.names.group)

    def apply(self, ctx: RunContext) -> VmOutputs | None:
        base = ctx.output(ResolveImage)
        if base.source != "marketplace":
            raise PermanentAzureError(
                "customize steps on a VHD base are not supported yet: register the VHD without "
                "customize steps, or start from a Marketplace image",
                code="UnsupportedBase",
            )
        n = self.given.names
        old = self._read(ctx)
        if old is not None and self.stale(ctx, old):
            ctx.say(f"{n.vm} was made for an older image; re-creating it")
            type(self).destroy(ctx, self._outputs(ctx, old))
            old = None
        if old is not None and is_generalized(old):
            ctx.say(f"{n.vm} is generalized for this image already: nothing to change")
            return None
        tags = resource_tags(
            ctx,
            self.given.tags,
            tags_of(old) if old is not None else None,
            **{Marks.Tag.ROLE: BUILD_ROLE, Marks.Tag.IMAGE: n.image},
            **({Marks.Tag.BASE: mark} if (mark := base_mark(base)) else {}),
        )
        body = self._body(ctx, base, tags)
        ctx.say(f"VM size {self.given.size}")
        made = write_vm(ctx, n.group, n.vm, body, timeout_s=self.given.build.timeout_s)
        if text(made.provisioning_state) != "Succeeded":
            return None  # the engine's check says what is there
        return self._outputs(ctx, made)  # just made or updated: not generalized

    def _body(self, ctx: RunContext, base: Any, tags: dict[str, str]) -> dict[str, Any]:
        build = self.given.build
        n = self.given.names
        os_disk: dict[str, Any] = {
            "name": n.os_disk,
            "createOption": "FromImage",
            "caching": "ReadWrite",
        }
        if build.os_disk.size_gb:
            os_disk["diskSizeGB"] = build.os_disk.size_gb
        if build.os_disk.type == "unmanaged":
            account = self._account(ctx)
            os_disk["vhd"] = {
                "uri": account.blob_url(build.os_disk.container or "vhds", f"{n.vm}-osdisk.vhd")
            }
        else:
            os_disk["managedDisk"] = {"storageAccountType": build.os_disk.sku}
        os_profile: dict[str, Any] = {
            "computerName": n.computer_name,
            "adminUsername": build.admin_username,
        }
        if self.given.os_type == "windows":
            os_profile["adminPassword"] = admin_password(ctx, build)
            os_profile["windowsConfiguration"] = {
                "provisionVMAgent": True,
                "enableAutomaticUpdates": False,
            }
        else:
            key_path = f"/home/{build.admin_username}/.ssh/authorized_keys"
            os_profile["linuxConfiguration"] = {
                "disablePasswordAuthentication": True,
                "provisionVMAgent": True,
                "ssh": {"publicKeys": [{"path": key_path, "keyData": ssh_public_key(build)}]},
            }
        security_profile: dict[str, Any] = {"securityType": self.given.security}
        if self.given.security == "TrustedLaunch":
            security_profile["uefiSettings"] = {"secureBootEnabled": True, "vTpmEnabled": True}
        props: dict[str, Any] = {
            "hardwareProfile": {"vmSize": build.vm_size},
            "storageProfile": {
                "imageReference": {
                    "publisher": base.publisher,
                    "offer": base.offer,
                    "sku": base.sku,
                    "version": base.version,
                },
                "osDisk": os_disk,
            },
            "osProfile": os_profile,
            "networkProfile": {
                "networkInterfaces": [
                    {"id": ctx.output(CreateNic).nic_id, "properties": {"primary": True}}
                ]
            },
            "securityProfile": security_profile,
        }
        if build.spot:
            props.update(
                priority="Spot", evictionPolicy="Deallocate", billingProfile={"maxPrice": -1}
            )
        body: dict[str, Any] = {"location": self.given.location, "tags": tags, "properties": props}
        if base.plan:
            body["plan"] = dict(base.plan)
        return body

    def leftovers(self, ctx: RunContext) -> list[ResourceRef]:
        """Every build resource of this pipeline, found by its marks (the build VM's step
        answers for the whole build: a lost state records none of it)."""
        from batchimage.steps.build_inventory import build_leftovers

        return build_leftovers(ctx, self.given.places)

    def describe(self) -> str:
        return f"build VM {self.given.names.vm}"


def is_generalized(vm: Any) -> bool:
    """Whether the VM (read with its instance view) is marked generalized."""
    return any(code.lower() == "osstate/generalized" for code in statuses(vm))
