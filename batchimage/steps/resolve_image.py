"""Step `resolve_image`: the exact base image - a Marketplace `latest` resolved once and
pinned in state (with its purchase plan and Hyper-V generation), or a VHD blob's identity.

A pinned version never moves by itself: when the Marketplace lists a newer one, the step
says so (`BaseUpdate`, shown by plan, status and apply) and keeps the pin. It moves on
purpose: for one run with `--refresh-base` (`RunContext.refresh_base`), or on every run
with `image.base.marketplace.follow_latest: true`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from batchimage.azure.marketplace import newer, resolve_marketplace, version_date
from batchimage.spec import Marketplace, VhdUrl
from batchimage.steps.base import Outputs, RunContext, Step, StepInputs
from batchimage.steps.run_preflight import RunPreflight

REFRESH_FLAG = "--refresh-base"


class BaseImageOutputs(Outputs):
    """The exact base image the build starts from."""

    source: str  # marketplace | vhd_url | vhd_file
    os_type: str
    publisher: str | None = None
    offer: str | None = None
    sku: str | None = None
    version: str | None = None
    plan: dict[str, str] | None = None
    hyper_v_generation: str | None = None
    vhd_url: str | None = None
    storage_account_id: str | None = None
    digest: str | None = None  # a VHD base's content digest (xxh3:<hex>)
    etag: str | None = None  # a vhd_url blob's ETag when its digest was read
    # not a change for the steps that depend on it: the image version compares the digest
    # with its tag (a new content makes a new version; the definition stays as it is)
    unhashed: ClassVar[frozenset[str]] = frozenset({"digest", "etag"})


def base_mark(base: BaseImageOutputs) -> str | None:
    """What an artifact is marked with as its base (`Marks.Tag.BASE`, `Marks.Blob.BASE`):
    the exact Marketplace image, publisher:offer:sku:version; None for a VHD base (the
    image fingerprint names that one)."""
    if base.source != "marketplace":
        return None
    return f"{base.publisher}:{base.offer}:{base.sku}:{base.version}"


class BasePin(BaseModel):
    """What of the spec's base decides whether a Marketplace version pinned in state holds:
    the image when the spec asks for its `latest`, and whether it follows latest. A step
    that compares the base holds one in its inputs (`BasePin.of(spec)`), not hashed."""

    model_config = ConfigDict(frozen=True)

    latest_of: tuple[str, str, str] | None = None  # publisher, offer, sku: version `latest`
    follow_latest: bool = False

    @classmethod
    def of(cls, spec: Any) -> BasePin:
        """The pin rules of `spec`'s base image."""
        mp = spec.image.base.marketplace
        if mp is None or mp.version != "latest":
            return cls()
        return cls(latest_of=(mp.publisher, mp.offer, mp.sku), follow_latest=mp.follow_latest)

    def recorded(self, recorded: BaseImageOutputs | None) -> str | None:
        """The version `recorded` pinned when the spec still names that image with `latest`."""
        if self.latest_of is None or recorded is None or recorded.source != "marketplace":
            return None
        same = (recorded.publisher, recorded.offer, recorded.sku) == self.latest_of
        return recorded.version if same else None

    def follows(self, refresh_base: bool) -> str:
        """How a run resolves `latest` afresh instead of using its pin: "follow_latest"
        (the spec), "--refresh-base" (`refresh_base`: this run), or "" (it uses the pin)."""
        if self.latest_of is None:
            return ""
        if self.follow_latest:
            return "follow_latest"
        return REFRESH_FLAG if refresh_base else ""


def made_from(ctx: RunContext, pin: BasePin, marks: Mapping[str, str] | None, name: str) -> bool:
    """Whether an artifact whose marks (tags, metadata) are `marks` holds the base this run
    builds from (`name`: the mark's name where it is kept). One made before artifacts were
    marked so has the version that was pinned then: the recorded pin (`pin`: the spec's
    rules), unless this run moves the base away from it."""
    wanted = base_mark(ctx.output(ResolveImage))
    if wanted is None:
        return True
    found = (marks or {}).get(name)
    if found is not None:
        return found.lower() == wanted.lower()
    recorded = pin.recorded(ctx.recorded(ResolveImage))
    return recorded is None or recorded == ctx.output(ResolveImage).version


def dated(version: str) -> str:
    """`24.04.202503180 (2025-03-18)`: a version with the date its number carries, if any."""
    day = version_date(version)
    return f"{version} ({day.isoformat()})" if day else version


def dated_json(version: str) -> dict[str, Any]:
    """`{"version", "date"}`: a version and the date its number carries (None: none)."""
    day = version_date(version)
    return {"version": version, "date": day.isoformat() if day else None}


@dataclass(frozen=True)
class BaseUpdate:
    """A Marketplace version newer than the pinned one: `moving` when this run moves to it
    (`how`: the flag or setting that asked), else only reported."""

    image: str  # publisher:offer:sku
    pinned: str
    newest: str
    moving: bool = False
    how: str = ""  # what moves it: "--refresh-base" (this run), "follow_latest" (the spec)

    def message(self) -> str:
        """One line for people, saying what the next step is."""
        if self.moving:
            return (
                f"base image {self.image}: moving from the pinned {dated(self.pinned)} to "
                f"{dated(self.newest)} ({self.how})"
            )
        then = (
            f"the next apply moves to it ({self.how})"
            if self.how
            else f"`apply {REFRESH_FLAG}` moves to it"
        )
        return (
            f"base image {self.image}: {dated(self.newest)} is newer than the pinned "
            f"{dated(self.pinned)}; {then}"
        )

    def to_json(self) -> dict[str, Any]:
        """For `--format json`: the image, both versions with their dates, and the message."""
        return {
            "image": self.image,
            "pinned": dated_json(self.pinned),
            "newest": dated_json(self.newest),
            "moving": self.moving,
            "how": self.how or None,
            "message": self.message(),
        }


def recorded_pin(spec: Any, recorded: BaseImageOutputs | None) -> str | None:
    """The version `recorded` pinned when `spec` still names that image with `latest`."""
    return BasePin.of(spec).recorded(recorded)


def pinned_for(pin: BasePin, ctx: RunContext, recorded: BaseImageOutputs | None) -> str | None:
    """The version this run builds from, when a previous run pinned it and this run does
    not resolve `latest` afresh (`BasePin.follows`)."""
    return None if pin.follows(ctx.refresh_base) else pin.recorded(recorded)


class ResolveInputs(StepInputs):
    """The spec's base image as hashed (`base`: how `latest` is resolved and a VHD file's
    content are not inputs: the version and the digest it gives are); read, not hashed:
    the same base typed, the OS, the region, the definition's Hyper-V generation (a VHD's)."""

    base: dict[str, Any]
    marketplace: Marketplace | None = Field(exclude=True)
    vhd_url: VhdUrl | None = Field(exclude=True)
    pin: BasePin = Field(exclude=True)
    os_type: str = Field(exclude=True)
    location: str = Field(exclude=True)
    hyper_v_generation: str = Field(exclude=True)


class ResolveImage(Step[BaseImageOutputs]):
    """Read-only: which exact image the build uses (a pinned version never moves by itself)."""

    given: ResolveInputs

    kind = "resolve_image"
    key = "resolve_image"
    read_only = True
    depends_on = (RunPreflight,)

    def __init__(self, spec: Any) -> None:
        base = spec.image.base
        # how to resolve `latest` (follow_latest) is not an input: the version it gives is
        hashed = base.model_dump(
            mode="json", exclude={"vhd_file": True, "marketplace": {"follow_latest"}}
        )
        hashed["vhd_file"] = str(base.vhd_file.path) if base.vhd_file else None
        self.given = ResolveInputs(
            base=hashed,
            marketplace=base.marketplace,
            vhd_url=base.vhd_url,
            pin=BasePin.of(spec),
            os_type=spec.os_type,
            location=spec.location,
            hyper_v_generation=spec.image.capture.gallery.definition.hyper_v_generation,
        )
        self.update: BaseUpdate | None = None  # what the last check saw of a newer version
        self.deprecation: tuple[str, Any] | None = None  # (urn, Deprecation): the last check's

    def check(self, ctx: RunContext) -> BaseImageOutputs | None:
        given = self.given
        if given.marketplace is not None:
            mp = given.marketplace
            recorded = given.pin.recorded(ctx.recorded())
            pinned = pinned_for(given.pin, ctx, ctx.recorded())
            image = resolve_marketplace(ctx.clients, given.location, mp, pinned=pinned)
            self.update = self._update(ctx, recorded, image.version, image.newest)
            self.deprecation = (image.urn, image.deprecation) if image.deprecation else None
            if image.deprecation is not None:
                ctx.say(
                    image.deprecation.message(image.urn),
                    base_deprecation=image.deprecation.to_json(image.urn),
                )
            if self.update is not None:
                ctx.say(self.update.message(), base_update=self.update.to_json())
            elif recorded is None and mp.version == "latest":
                ctx.say(f"latest of {mp.publisher}:{mp.offer}:{mp.sku} is {image.version}; pinned")
            plan = mp.plan.model_dump() if mp.plan is not None else image.plan
            return BaseImageOutputs(
                source="marketplace",
                os_type=given.os_type,
                publisher=mp.publisher,
                offer=mp.offer,
                sku=mp.sku,
                version=image.version,
                plan=plan,
                hyper_v_generation=image.hyper_v_generation,
            )
        if given.vhd_url is not None:
            identity = _vhd_identity(ctx, given.vhd_url)
            return BaseImageOutputs(
                source="vhd_url",
                os_type=given.os_type,
                vhd_url=given.vhd_url.url,
                storage_account_id=given.vhd_url.storage_account_id
                or _account_id(ctx, given.vhd_url.url),
                hyper_v_generation=given.hyper_v_generation,
                digest=identity.digest,
                etag=identity.etag,
            )
        return BaseImageOutputs(
            source="vhd_file",
            os_type=given.os_type,
            hyper_v_generation=given.hyper_v_generation,
        )

    def _update(
        self, ctx: RunContext, recorded: str | None, version: str, newest: str
    ) -> BaseUpdate | None:
        """The base moving away from the recorded pin (to a newer version, or to the newest
        listed when the pin is no longer), or a newer version than the pin only reported."""
        mp = self.given.marketplace
        if recorded is None or mp is None:
            return None
        image = f"{mp.publisher}:{mp.offer}:{mp.sku}"
        if version != recorded:
            how = self.given.pin.follows(ctx.refresh_base)
            return BaseUpdate(image, recorded, version, moving=True, how=how)
        if newer(newest, recorded):
            return BaseUpdate(image, recorded, newest)
        return None

    def apply(self, ctx: RunContext) -> BaseImageOutputs | None:
        return self.check(ctx)

    def read_moved(self, recorded: Mapping[str, Any] | None, found: Outputs) -> str | None:
        """The base image moved to a newer version on purpose (`--refresh-base`,
        `follow_latest`), or a VHD base's content changed: the image is built again from it."""
        then = (recorded or {}).get("digest")
        now = getattr(found, "digest", None)
        if then and now and then != now:
            return f"the VHD's content changed ({then[:17]} → {now[:17]})"
        update = self.update
        if update is None or not update.moving:
            return None
        if getattr(found, "version", None) != update.newest:
            return None
        return f"moves from {dated(update.pinned)} to {dated(update.newest)} ({update.how})"

    def describe(self) -> str:
        base = self.given.base
        if base.get("marketplace"):
            mp = base["marketplace"]
            return f"base image {mp['publisher']}:{mp['offer']}:{mp['sku']}:{mp['version']}"
        return (
            f"base image {(base.get('vhd_url', {}) and base['vhd_url']['url']) or base['vhd_file']}"
        )


def _vhd_identity(ctx: RunContext, vhd_url: Any) -> Any:
    """The content digest of the VHD blob (see `batchimage.azure.vhd_source`)."""
    from batchimage.azure.vhd_source import VhdIdentity, vhd_blob, vhd_identity

    sas = ctx.secret(vhd_url.sas).get_secret_value() if vhd_url.sas is not None else None
    blob = vhd_blob(ctx.clients, vhd_url.url, sas, vhd_url.storage_account_id)
    recorded = ctx.recorded()
    known = (
        VhdIdentity(recorded.digest, recorded.etag)
        if recorded is not None and recorded.digest and recorded.etag
        else None
    )
    return vhd_identity(blob, known, ctx.say)


def _account_id(ctx: RunContext, url: str) -> str | None:
    """The id of the storage account whose blob endpoint serves `url`."""
    from batchimage.azure.blobs import account_for_url

    found = account_for_url(ctx.clients, url)
    return found.id if found is not None else None
