"""Marketplace images: resolve `latest` to an exact version and read what the pipeline needs
(purchase plan, Hyper-V generation, OS, architecture, disk size).

    image = resolve_marketplace(clients, "eastus", spec.image.base.marketplace, pinned=None)
    image.version, image.plan, image.hyper_v_generation, image.os_type
    image.newest                       # the newest version listed (newer than a pinned one?)
    version_date("24.04.202503180")    # 2025-03-18: the date a version's number carries

A missing image or version raises PermanentAzureError with the `az` command that lists
what exists.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from batchimage.azure.arm import get_or_none, text
from batchimage.azure.errors import azure_call, is_not_found
from batchimage.core.errors import AzureError, PermanentAzureError

if TYPE_CHECKING:
    from batchimage.azure.clients import AzureClients


@dataclass(frozen=True)
class Deprecation:
    """A version its publisher deprecates (VirtualMachineImage `imageDeprecationStatus`):
    `ScheduledForDeprecation` on `scheduled` (new VMs can be made until then), with the
    publisher's alternative (`alternative_type` Offer or Plan, and its name)."""

    state: str
    scheduled: dt.datetime | None = None
    alternative_type: str | None = None
    alternative: str | None = None

    def message(self, urn: str) -> str:
        """One line for people: what is scheduled, when, and what to move to."""
        when = f" on {self.scheduled.date().isoformat()}" if self.scheduled else ""
        instead = (
            f"; its publisher's alternative: {self.alternative_type.lower()} {self.alternative}"
            if self.alternative and self.alternative_type not in (None, "None")
            else ""
        )
        return (
            f"base image {urn} is scheduled for deprecation{when}{instead}; from then on Azure "
            "makes no new VM from it: move to a newer version (`apply --refresh-base` for a "
            "pinned `latest`) or another image"
        )

    def to_json(self, urn: str) -> dict[str, Any]:
        """For `--format json`."""
        return {
            "image": urn,
            "state": self.state,
            "scheduled": self.scheduled.isoformat() if self.scheduled else None,
            "alternative": (
                {"type": self.alternative_type, "value": self.alternative}
                if self.alternative_type
                else None
            ),
            "message": self.message(urn),
        }


@dataclass(frozen=True)
class MarketplaceImage:
    """One exact Marketplace image version and its facts (`security_type`: its SecurityType
    feature, "" when it has none; `disallowed_disk`: the VM disk type it disallows)."""

    publisher: str
    offer: str
    sku: str
    version: str
    plan: dict[str, str] | None
    hyper_v_generation: str
    os_type: str
    architecture: str
    os_disk_gb: int | None
    security_type: str = ""
    disallowed_disk: str = "None"
    newest: str = ""  # the newest version listed when it was resolved
    deprecation: Deprecation | None = None  # scheduled for deprecation (None: active)

    @property
    def trusted_launch_capable(self) -> bool:
        """Whether a Trusted Launch VM can boot it: Gen2 with TrustedLaunch in its security
        type (learn.microsoft.com, Trusted Launch FAQ)."""
        gen2 = self.hyper_v_generation.upper() == "V2"
        return gen2 and "trustedlaunch" in self.security_type.lower()

    @property
    def urn(self) -> str:
        """publisher:offer:sku:version, as `az` writes it."""
        return f"{self.publisher}:{self.offer}:{self.sku}:{self.version}"


def version_key(version: str) -> tuple[int, ...]:
    """Sort key of a dotted version ("1.10.2" after "1.9.30"); non-numbers sort first."""
    out = []
    for part in version.split("."):
        out.append(int(part) if part.isdigit() else -1)
    return tuple(out)


def version_date(version: str) -> dt.date | None:
    """The date a Marketplace version's number carries, or None. The image API has no
    publish date; publishers write one into the last part of the version (documented in
    docs/image-pipeline.md, "Refreshing the base image"): eight digits YYYYMMDD
    (WindowsServer 2012-R2 `4.127.20180315`), nine: YYYYMMDD and a serial (Canonical
    `24.04.202503180`, AlmaLinux `9.5.202411260`), six: YYMMDD (WindowsServer
    `20348.2966.241205`). Anything else, or a number that is no date, gives None."""
    last = version.rsplit(".", 1)[-1]
    if not last.isdigit() or "." not in version:
        return None
    if len(last) in (8, 9):
        year, month, day = int(last[:4]), int(last[4:6]), int(last[6:8])
    elif len(last) == 6:
        year, month, day = 2000 + int(last[:2]), int(last[2:4]), int(last[4:6])
    else:
        return None
    if not 2000 <= year <= 2099:
        return None
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def newer(version: str, than: str) -> bool:
    """Whether Marketplace version `version` sorts after `than` (as Azure orders them)."""
    return version_key(version) > version_key(than)


def list_command(location: str, mp: Any) -> str:
    """The `az` command that lists the versions of `mp` in `location`."""
    return (
        f"az vm image list --location {location} --publisher {mp.publisher} "
        f"--offer {mp.offer} --sku {mp.sku} --all --output table"
    )


def listed_versions(clients: AzureClients, location: str, mp: Any) -> list[str]:
    """The versions of image `mp` listed in `location`, oldest first (empty when the
    publisher, offer or SKU does not exist there)."""
    images = clients.compute.virtual_machine_images
    operation = f"list versions of image {mp.publisher}:{mp.offer}:{mp.sku} in {location}"
    # a missing publisher, offer or sku answers 404: treated as "no versions"
    found = get_or_none(operation, images.list, location, mp.publisher, mp.offer, mp.sku) or []
    return sorted((text(v.name) for v in found), key=version_key)


def resolve_marketplace(
    clients: AzureClients, location: str, mp: Any, *, pinned: str | None = None
) -> MarketplaceImage:
    """The exact image `mp` names: `pinned` or its explicit version, else the newest one."""
    images = clients.compute.virtual_machine_images
    urn = f"{mp.publisher}:{mp.offer}:{mp.sku}"
    versions = listed_versions(clients, location, mp)
    if not versions:
        raise PermanentAzureError(
            f"Marketplace image {urn} does not exist in {location} (or has no versions); check "
            f"the publisher, offer and sku: {list_command(location, mp)}",
            code="ImageNotFound",
            status=404,
        )
    wanted = pinned or (mp.version if mp.version != "latest" else versions[-1])
    if wanted not in versions:
        shown = ", ".join(versions[-5:])
        then = (
            "it was pinned by an earlier run and is no longer listed: `apply --refresh-base` "
            "moves to the newest"
            if pinned
            else f"pick one from: {list_command(location, mp)}"
        )
        raise PermanentAzureError(
            f"Marketplace image {urn} has no version {wanted} in {location} (newest: {shown}); "
            f"{then}",
            code="ImageVersionNotFound",
            status=404,
        )
    how = "newest" if wanted == versions[-1] else ("pinned" if pinned else "explicit")
    raw = _read(images, location, mp, wanted, how=how)
    if raw is None:
        raise PermanentAzureError(
            f"Marketplace image {urn}:{wanted} vanished while being read; run again",
            code="ImageNotFound",
            status=404,
        )
    return _facts(mp, wanted, raw, newest=versions[-1])


_MOVE_ON = {
    "pinned": "it was pinned by an earlier run: `apply --refresh-base` moves to the newest",
    "explicit": "set image.base.marketplace.version to a newer one, or to latest",
    "newest": "it is the newest version listed: pin an older one that is not deprecated "
    "(image.base.marketplace.version), or pick another offer or SKU",
}


def _read(images: Any, location: str, mp: Any, version: str, *, how: str) -> Any:
    """VirtualMachineImages_Get of one version (None: not found); a deprecated version is an
    error that says how to move on (Azure answers 404 ImageVersionDeprecated): `how` is
    "newest" when no newer version is listed, else how the version was chosen: "pinned" by
    an earlier run or "explicit" in the spec."""
    urn = f"{mp.publisher}:{mp.offer}:{mp.sku}:{version}"
    try:
        with azure_call(f"read image {urn}"):
            return images.get(location, mp.publisher, mp.offer, mp.sku, version)
    except AzureError as exc:
        if exc.code == "ImageVersionDeprecated":
            raise PermanentAzureError(
                f"Marketplace image {urn} is deprecated: its publisher withdrew it and Azure "
                f"makes no new VM from it; {_MOVE_ON[how]} ({list_command(location, mp)})",
                code="ImageVersionDeprecated",
                status=404,
            ) from exc
        if is_not_found(exc):
            return None
        raise


def _deprecation(raw: Any) -> Deprecation | None:
    """The version's deprecation status, None when it is active (or not said)."""
    status = getattr(raw, "image_deprecation_status", None)
    state = text(getattr(status, "image_state", None) or "")
    if not state or state == "Active":
        return None
    alternative = getattr(status, "alternative_option", None)
    return Deprecation(
        state=state,
        scheduled=getattr(status, "scheduled_deprecation_time", None),
        alternative_type=text(getattr(alternative, "type", None) or "") or None,
        alternative=text(getattr(alternative, "value", None) or "") or None,
    )


def _facts(mp: Any, version: str, raw: Any, *, newest: str) -> MarketplaceImage:
    plan = raw.plan
    disk = getattr(raw, "os_disk_image", None)
    os_name = text(getattr(disk, "operating_system", "") or "")
    features = {
        text(f.name).lower(): text(f.value or "") for f in getattr(raw, "features", None) or []
    }
    disallowed = getattr(raw, "disallowed", None)
    return MarketplaceImage(
        publisher=mp.publisher,
        offer=mp.offer,
        sku=mp.sku,
        version=version,
        plan=(
            {"name": plan.name, "product": plan.product, "publisher": plan.publisher}
            if plan is not None and plan.name
            else None
        ),
        hyper_v_generation=text(raw.hyper_v_generation or "V1"),
        os_type=os_name.lower() or mp.inferred_os_type(),
        architecture=text(raw.architecture or "x64"),
        os_disk_gb=getattr(disk, "size_in_gb", None) if disk is not None else None,
        security_type=features.get("securitytype", ""),
        disallowed_disk=text(getattr(disallowed, "vm_disk_type", None) or "None"),
        newest=newest,
        deprecation=_deprecation(raw),
    )
