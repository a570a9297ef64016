"""Deterministic names and ids for everything the image pipeline creates.

Every name derives from the pipeline name, plus a short content hash where a new thing
needs a new name:

- the **image fingerprint** (`image_fingerprint`): everything that decides the image's
  content - base image, OS disk, customize steps (including the bytes of every file they
  use), generalize settings. Captured artifacts are tagged with it (a gallery version is
  adopted by it), and the build VM is tagged with the image it was generalized for.
- the **build fingerprint** (`build_fingerprint`): what decides the build VM itself - base
  image, OS disk, size, Spot, admin user, security type. Build resources carry its first 8
  hex digits, so fixing a failed customize script continues on the same VM, while a new
  base or size gets a fresh VM that never collides with an old one.

An unchanged spec gives the same names, so a crash between "create sent" and "state saved"
is adopted by the next run.

    image_fingerprint(spec) -> "3f2a..."      (32 hex digits)
    BuildNames.of(spec)     -> vm, nic, os_disk, vnet, subnet, nsg, public_ip, computer_name

ARM ids themselves are built and split by the Azure edge (`batchimage.azure.ids`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchimage.core.hashing import file_sha256, fingerprint_of, short_hash


def customize_inputs(step: Any) -> dict[str, Any]:
    """What decides one customize step's effect: its action and content (file bytes hashed)."""
    action = step.action
    out: dict[str, Any] = {"action": action, "env": dict(step.env)}
    out["secret_env"] = {k: v.describe() for k, v in step.secret_env.items()}
    if action in ("shell", "powershell"):
        out["script"] = getattr(step, action)
    elif action in ("shell_file", "powershell_file"):
        out["script_sha256"] = file_sha256(getattr(step, action))
    elif action == "file":
        out["source_sha256"] = file_sha256(step.file.source)
        out["destination"] = step.file.destination
    return out


def base_inputs(spec: Any) -> dict[str, Any]:
    """What decides the base image: the Marketplace reference, or the VHD's identity."""
    base = spec.image.base
    out: dict[str, Any] = {"os_type": spec.os_type}
    if base.marketplace is not None:
        out["marketplace"] = base.marketplace.identity()
    elif base.vhd_url is not None:
        out["vhd_url"] = base.vhd_url.url
    elif base.vhd_file is not None:
        info = base.vhd_file
        out["vhd_file"] = {"size": Path(info.path).stat().st_size, "name": Path(info.path).name}
    return out


def image_fingerprint(spec: Any) -> str:
    """The hash of everything that decides the captured image's content (see module doc)."""
    image = spec.image
    disk = image.build.os_disk
    parts = {
        "base": short_hash(base_inputs(spec)),
        "os_disk": short_hash({"type": disk.type, "size_gb": disk.size_gb}),
        "customize": short_hash([customize_inputs(step) for step in image.customize]),
        "generalize": short_hash(image.generalize.model_dump(mode="json")),
        "definition": short_hash(
            {
                "hyper_v": image.capture.gallery.definition.hyper_v_generation,
                "security": image.capture.gallery.definition.security_type,
            }
        ),
    }
    return fingerprint_of(parts)


def build_fingerprint(spec: Any) -> str:
    """The hash of what decides the build VM (see module doc)."""
    build = spec.image.build
    definition = spec.image.capture.gallery.definition
    parts = {
        "base": short_hash(base_inputs(spec)),
        "vm": short_hash(
            {
                "os_disk": build.os_disk.model_dump(mode="json"),
                "size": build.vm_size,
                "spot": build.spot,
                "admin": build.admin_username,
                "security": definition.security_type,
                "hyper_v": definition.hyper_v_generation,
            }
        ),
    }
    return fingerprint_of(parts)


@dataclass(frozen=True)
class BuildNames:
    """The names of one build's resources (all in the spec's resource group)."""

    group: str
    vm: str
    nic: str
    os_disk: str
    vnet: str
    subnet: str
    nsg: str
    public_ip: str
    computer_name: str
    fingerprint: str  # the build fingerprint
    image: str  # the image fingerprint

    @classmethod
    def of(cls, spec: Any) -> BuildNames:
        """Names for `spec`'s build, from its pipeline name and build fingerprint."""
        fp = build_fingerprint(spec)
        stem = f"{spec.name}-{fp[:8]}"
        return cls(
            group=spec.resource_group,
            vm=f"{stem}-vm",
            nic=f"{stem}-nic",
            os_disk=f"{stem}-osdisk",
            vnet=f"{stem}-vnet",
            subnet="build",
            nsg=f"{stem}-nsg",
            public_ip=f"{stem}-pip",
            # Windows computer names have at most 15 characters and cannot be all digits.
            computer_name=f"bi{fp[:13]}",
            fingerprint=fp,
            image=image_fingerprint(spec),
        )
