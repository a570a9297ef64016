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

from batchimage.azure.marketplace import newer, resolve_marketplace, version_date
from batchimage.steps.base import Outputs, RunContext, Step
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


def made_from(ctx: RunContext, marks: Mapping[str, str] | None, name: str) -> bool:
    """Whether an artifact whose marks (tags, metadata) are `marks` holds the base this run
    builds from (`name`: the mark's name where it is kept). One made before artifacts were
    marked so has the version that was pinned then: the recorded pin, unless this run moves
    the base away from it."""
    wanted = base_mark(ctx.output(ResolveImage))
    if wanted is None:
        return True
    found = (marks or {}).get(name)
    if found is not None:
        return found.lower() == wanted.lower()
    recorded = recorded_pin(ctx.spec, ctx.recorded(ResolveImage))
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
    """The version `recorded` pinned when the spec still names that image with `latest`."""
    mp = spec.image.base.marketplace
    if mp is None or mp.version != "latest" or recorded is None or recorded.source != "marketplace":
        return None
    same = (recorded.publisher, recorded.offer, recorded.sku) == (mp.publisher, mp.offer, mp.sku)
    return recorded.version if same else None


def follows_latest(ctx: RunContext) -> str:
    """How this run resolves a Marketplace `latest` afresh instead of using its pin:
    "follow_latest" (the spec), "--refresh-base" (this run), or "" (it uses the pin)."""
    mp = ctx.spec.image.base.marketplace
    if mp is None or mp.version != "latest":
        return ""
    if mp.follow_latest:
        return "follow_latest"
    return REFRESH_FLAG if ctx.refresh_base else ""


def pinned_for(ctx: RunContext, recorded: BaseImageOutputs | None) -> str | None:
    """The version this run builds from, when a previous run pinned it and this run does
    not resolve `latest` afresh (`follows_latest`)."""
    return None if follows_latest(ctx) else recorded_pin(ctx.spec, recorded)


class ResolveImage(Step[BaseImageOutputs]):
    """Read-only: which exact image the build uses (a pinned version never moves by itself)."""

    kind = "resolve_image"
    key = "resolve_image"
    read_only = True
    depends_on = (RunPreflight,)

    def inputs(self) -> dict[str, Any]:
        return {"base": self.spec_base}

    def __init__(self, spec: Any) -> None:
        # how to resolve `latest` (follow_latest) is not an input: the version it gives is
        self.spec_base = spec.image.base.model_dump(
            mode="json", exclude={"vhd_file": True, "marketplace": {"follow_latest"}}
        )
        self.spec_base["vhd_file"] = (
            str(spec.image.base.vhd_file.path) if spec.image.base.vhd_file else None
        )
        self.update: BaseUpdate | None = None  # what the last check saw of a newer version
        self.deprecation: tuple[str, Any] | None = None  # (urn, Deprecation): the last check's

    def check(self, ctx: RunContext) -> BaseImageOutputs | None:
        spec = ctx.spec
        base = spec.image.base
        if base.marketplace is not None:
            mp = base.marketplace
            recorded = recorded_pin(spec, ctx.recorded())
            pinned = pinned_for(ctx, ctx.recorded())
            image = resolve_marketplace(ctx.clients, spec.location, mp, pinned=pinned)
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
                os_type=spec.os_type,
                publisher=mp.publisher,
                offer=mp.offer,
                sku=mp.sku,
                version=image.version,
                plan=plan,
                hyper_v_generation=image.hyper_v_generation,
            )
        if base.vhd_url is not None:
            identity = _vhd_identity(ctx, base.vhd_url)
            return BaseImageOutputs(
                source="vhd_url",
                os_type=spec.os_type,
                vhd_url=base.vhd_url.url,
                storage_account_id=base.vhd_url.storage_account_id
                or _account_id(ctx, base.vhd_url.url),
                hyper_v_generation=spec.image.capture.gallery.definition.hyper_v_generation,
                digest=identity.digest,
                etag=identity.etag,
            )
        return BaseImageOutputs(
            source="vhd_file",
            os_type=spec.os_type,
            hyper_v_generation=spec.image.capture.gallery.definition.hyper_v_generation,
        )

    def _update(
        self, ctx: RunContext, recorded: str | None, version: str, newest: str
    ) -> BaseUpdate | None:
        """The base moving away from the recorded pin (to a newer version, or to the newest
        listed when the pin is no longer), or a newer version than the pin only reported."""
        mp = ctx.spec.image.base.marketplace
        if recorded is None:
            return None
        image = f"{mp.publisher}:{mp.offer}:{mp.sku}"
        if version != recorded:
            return BaseUpdate(image, recorded, version, moving=True, how=follows_latest(ctx))
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
        base = self.spec_base
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
