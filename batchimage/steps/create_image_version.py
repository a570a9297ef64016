"""Step `capture.version`: the gallery image version - from the generalized build VM, or from
a VHD (the classic capture, a VHD URL, or an uploaded local VHD) - replicated to the spec's
regions (at least one replica per 300 pool nodes), waiting with progress per region.

Adopt before create: a version tagged with this image's fingerprint (and made from this
run's exact base image, tag `batchimage-base`) is the result, whatever its number, so a
crash after the PUT never makes a second version, and a base moved to a newer Marketplace
version makes a new one. `auto` numbers a new version as the next patch after the highest
existing one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field

from batchimage.azure.arm import VERSION, poll_interval, tags_of, text, wait, watch_beside
from batchimage.azure.errors import is_not_found
from batchimage.azure.gallery_versions import list_versions, read_version, start_version
from batchimage.azure.pollers import fixed_rate
from batchimage.core.errors import AzureError, PermanentAzureError
from batchimage.core.ownership import Marks
from batchimage.spec import CustomizeStep
from batchimage.steps.base import Outputs, RunContext, Step, StepInputs
from batchimage.steps.create_image_definition import CreateImageDefinition
from batchimage.steps.deleting import DeletesCreated, delete
from batchimage.steps.gallery import next_version, replica_plan, version_key
from batchimage.steps.marks import observed, ref_for, resource_tags
from batchimage.steps.names import image_fingerprint
from batchimage.steps.provenance import Provenance, current_version
from batchimage.steps.resolve_image import BasePin, ResolveImage, base_mark, dated, made_from
from batchimage.steps.upload_vhd import UploadVhd

BUSY = ("creating", "updating", "deleting", "migrating")


class VersionOutputs(Outputs):
    """The captured image: what pools use (`version_id`), where it is replicated."""

    version_id: str
    version: str
    definition_id: str
    regions: tuple[str, ...]
    security_type: str = "Standard"  # the definition's: TrustedLaunch ones need such pools


class VersionInputs(StepInputs):
    """The image's fingerprint, the version the spec asks for, replicas, publishing settings
    and the spec's tags (hashed); read, not hashed: the region, the time limit, the base's
    pin, and what the version's provenance records of the spec (its customize steps, the
    file's SHA-256 and folder)."""

    image: str
    version: str
    replicas: list[tuple[str, int]]
    settings: dict[str, Any]
    tags: dict[str, str]
    location: str = Field(exclude=True)
    timeout_s: int = Field(exclude=True)
    pin: BasePin = Field(exclude=True)
    customize: tuple[CustomizeStep, ...] = Field(exclude=True)
    spec_sha256: str = Field(exclude=True)
    spec_dir: Path = Field(exclude=True)


class CreateImageVersion(DeletesCreated, Step[VersionOutputs]):
    """The image version of this image fingerprint in the definition."""

    given: VersionInputs

    kind = "create_image_version"
    key = "capture.version"
    apply_observes = True
    shown = ("version_id", "version", "regions")

    def __init__(
        self,
        spec: Any,
        definition: CreateImageDefinition,
        source: Step[Any],
        *,
        source_is_need: bool,
        base: ResolveImage | None = None,
    ) -> None:
        """`source` produces the VM (GeneralizeVm) or VHD (CaptureClassic, ResolveImage,
        UploadVhd) the version is made from; a build source is an `apply_needs` (so a
        captured image is not rebuilt after its VM was cleaned up)."""
        self.definition = definition
        self.source = source
        self.base = base  # the pipeline's base image step: says when the base moves
        self.reads = (base or ResolveImage,)  # the exact base: the version is made from it
        self.other_base: str | None = None  # the last check found this image on another base
        self.changed: list[str] = []  # the last check: what differs from the current version
        if source_is_need:
            self.depends_on = (definition,)
            self.apply_needs = (source,)
        else:
            self.depends_on = (definition, source)
        gallery = spec.image.capture.gallery
        settings = {
            "storage_account_type": gallery.storage_account_type,
            "exclude_from_latest": gallery.exclude_from_latest,
            "end_of_life": gallery.end_of_life.isoformat() if gallery.end_of_life else None,
        }
        if gallery.end_of_life_days is not None:  # only when set: older fingerprints stay
            settings["end_of_life_days"] = gallery.end_of_life_days
        self.given = VersionInputs(
            image=image_fingerprint(spec),
            version=gallery.version,
            replicas=replica_plan(spec),
            settings=settings,
            tags=dict(spec.tags),
            location=spec.location,
            timeout_s=spec.timeouts.capture_s + spec.timeouts.replication_s,
            pin=BasePin.of(spec),
            customize=tuple(spec.image.customize),
            spec_sha256=getattr(spec, "source_sha256", "") or "",
            spec_dir=Path(getattr(spec, "base_dir", ".") or "."),
        )

    # -- finding -------------------------------------------------------------------------

    def _where(self, ctx: RunContext) -> tuple[str, str, str]:
        d = ctx.output(CreateImageDefinition)
        return d.group, d.gallery, d.name

    def _versions(self, ctx: RunContext, where: tuple[str, str, str] | None = None) -> list[Any]:
        return list_versions(ctx.clients, *(where or self._where(ctx)))

    def absent(self, ctx: RunContext) -> bool:
        """No version holds this image: the definition (or its gallery or group) is not
        there yet, or none of its versions carries this image's tag (or the spec's number).
        Names from the spec alone, so it is asked while the gallery is being made."""
        d = self.definition
        try:
            versions = self._versions(
                ctx, (d.given.group, d.given.gallery, d.given.definition.name)
            )
        except AzureError as exc:
            if is_not_found(exc):
                return True
            raise
        if self.given.version != "auto":
            return all(text(v.name) != self.given.version for v in versions)
        return not any(self._mine(ctx, v) for v in versions)

    def _this_image(self, ctx: RunContext, raw: Any) -> bool:
        """Tagged by this pipeline with this image's fingerprint (whatever its base)."""
        tags = tags_of(raw)
        return (
            tags.get(Marks.Tag.IMAGE) == self.given.image
            and tags.get(Marks.Tag.PIPELINE) == ctx.pipeline
        )

    def _mine(self, ctx: RunContext, raw: Any) -> bool:
        """This image, made from this run's exact base image (a VHD base: of the same content,
        when the version records its digest)."""
        tags = tags_of(raw)
        digest = tags.get(Marks.Tag.BASE_DIGEST)
        same_vhd = digest is None or digest == self._digest(ctx)
        return (
            self._this_image(ctx, raw)
            and made_from(ctx, self.given.pin, tags, Marks.Tag.BASE)
            and same_vhd
        )

    def _digest(self, ctx: RunContext) -> str | None:
        """A VHD base's content digest (xxh3:<hex>): the uploaded file's, or the blob's."""
        digest = getattr(ctx.output(self.source), "digest", None) if not self.apply_needs else None
        if digest:
            return f"xxh3:{digest}" if ":" not in digest else str(digest)
        return ctx.output(ResolveImage).digest

    def provenance(self, ctx: RunContext) -> Provenance:
        """What this run makes: the provenance its version is tagged with."""
        base = ctx.output(ResolveImage)
        digest = self._digest(ctx) if base.source != "marketplace" else None
        g = self.given
        return Provenance.made(
            g.customize, g.spec_sha256, g.spec_dir, base=base_mark(base), digest=digest
        )

    def _changes(self, ctx: RunContext, versions: list[Any]) -> list[str]:
        """What differs, in words, between the provenance of the pipeline's current version
        (the one the state records, else its highest) and this run's; [] when that version
        records none (made before provenance was kept)."""
        recorded = ctx.recorded()
        current = current_version(versions, ctx.pipeline, recorded.version if recorded else None)
        then = Provenance.from_tags(tags_of(current)) if current is not None else None
        if then is None or current is None:
            return []
        words = then.changes(self.provenance(ctx), self.given.customize)
        return [*words[:-1], f"{words[-1]} (since version {text(current.name)})"] if words else []

    def _find(self, ctx: RunContext) -> tuple[Any | None, list[str]]:
        """The version holding this image (or None), and every version name."""
        versions = self._versions(ctx)
        names = [text(v.name) for v in versions]
        self.other_base = None
        if self.given.version != "auto":
            found = next((v for v in versions if v.name == self.given.version), None)
            if found is not None and not self._mine(ctx, found):
                what = (
                    f"this image built from {self._base_of(found)}, not from {self._base(ctx)}"
                    if self._this_image(ctx, found)
                    else f"not this image {self.given.image[:8]}"
                )
                raise PermanentAzureError(
                    f"gallery image version {self.given.version} already exists with other content "
                    f"({what}); versions cannot change: set "
                    "image.capture.gallery.version to a new number, or to auto",
                    code="GalleryImageVersionExists",
                    status=409,
                )
            self.changed = self._changes(ctx, versions) if found is None else []
            return found, names
        mine = [v for v in versions if self._mine(ctx, v)]
        found = max(mine, key=lambda v: version_key(text(v.name))) if mine else None
        self.changed = self._changes(ctx, versions) if found is None else []
        if found is None:
            older = [v for v in versions if self._this_image(ctx, v)]
            if older:
                last = max(older, key=lambda v: version_key(text(v.name)))
                self.other_base = (
                    f"a new image version from {self._base(ctx)}: version {text(last.name)} "
                    f"holds this image built from {self._base_of(last)}"
                )
        return found, names

    def _base(self, ctx: RunContext) -> str:
        """This run's base image, for people: its version and the date that carries."""
        base = ctx.output(ResolveImage)
        return f"base {dated(base.version)}" if base.version else "this base"

    def _base_of(self, raw: Any) -> str:
        """The base a version of this image was built from, as its tag says."""
        mark = tags_of(raw).get(Marks.Tag.BASE)
        return f"base {dated(mark.rsplit(':', 1)[-1])}" if mark else "the base pinned before"

    def why_missing(self) -> str | None:
        if self.changed:
            return f"a new image version: {'; '.join(self.changed)}"
        return self.other_base

    def planned_after(
        self, changing: Mapping[str, str], recorded: Mapping[str, Any] | None
    ) -> tuple[str, str] | None:
        """Plan, while the definition is rewritten first: a base image moving to a newer
        version makes a new image version, as does a local VHD base uploaded anew (its
        content changed)."""
        if UploadVhd.key in changing and self.source.key == UploadVhd.key:
            return "create", "a new image version: base VHD changed (uploaded anew)"
        update = self.base.update if self.base is not None else None
        if update is None or not update.moving:
            return None
        return "create", f"a new image version from base {dated(update.newest)}"

    def _read(self, ctx: RunContext, name: str) -> Any:
        return read_version(ctx.clients, *self._where(ctx), name, replication=True)

    def check(self, ctx: RunContext) -> VersionOutputs | None:
        found, _ = self._find(ctx)
        if found is None:
            return None
        return self._outputs(ctx, self._read(ctx, text(found.name)))

    def _outputs(self, ctx: RunContext, raw: Any) -> VersionOutputs | None:
        """The outputs of the version as read (with its replication status): None unless
        it succeeded and every region is replicated."""
        if raw is None or text(raw.provisioning_state) != "Succeeded":
            return None
        pending = _pending_regions(raw)
        if pending:
            return None
        regions = tuple(
            sorted(_region(t.name) for t in (raw.publishing_profile.target_regions or []))
        )
        tags = tags_of(raw)
        definition = ctx.output(CreateImageDefinition)
        return VersionOutputs(
            version_id=raw.id,
            version=raw.name,
            definition_id=definition.id,
            regions=regions,
            security_type=definition.security_type,
            resources=(ref_for(ctx, raw.id, VERSION, tags),),
            observed_fingerprint=observed(ctx, tags),
        )

    # -- making --------------------------------------------------------------------------

    def apply(self, ctx: RunContext) -> VersionOutputs | None:
        from batchimage.steps.cleanup_build import cleaning_up_after_failure

        return self._outputs(ctx, cleaning_up_after_failure(ctx, self._apply))

    def _apply(self, ctx: RunContext) -> Any:
        """Make the version; the last read of it, once created and replicated."""
        found, names = self._find(ctx)
        group, gallery, definition = self._where(ctx)
        name = text(found.name) if found is not None else None
        if found is not None:
            raw = self._read(ctx, text(found.name)) or found
            state = text(raw.provisioning_state or "").lower()
            if state in BUSY:
                return self._wait_replicated(ctx, name or "", None)
            if state == "failed":
                ctx.say(f"image version {name} failed earlier; deleting it to try again")
                delete(ctx, ref_for(ctx, raw.id, VERSION, tags_of(raw)))
                found = None
        if name is None:
            name = self.given.version if self.given.version != "auto" else next_version(names)
        existing_tags = tags_of(found) if found is not None else None
        marks = {Marks.Tag.IMAGE: self.given.image, **self.provenance(ctx).tags()}
        body = self._body(ctx, resource_tags(ctx, self.given.tags, existing_tags, **marks), found)
        ctx.say(
            f"creating image version {definition}/{name} in "
            + ", ".join(region for region, _ in self.given.replicas)
        )
        poller = start_version(ctx.clients, group, gallery, definition, name, body)
        return self._wait_replicated(ctx, name, poller)

    def _body(self, ctx: RunContext, tags: dict[str, str], existing: Any = None) -> dict[str, Any]:
        """The version's PUT body; `existing`: the version when it is there already (its
        publish date and, `until_rolled_out`, whether it joined latest are kept)."""
        account_type = self.given.settings["storage_account_type"]
        profile = getattr(existing, "publishing_profile", None)
        publishing: dict[str, Any] = {
            "targetRegions": [
                {"name": region, "regionalReplicaCount": count, "storageAccountType": account_type}
                for region, count in self.given.replicas
            ],
            "excludeFromLatest": excluded_at_create(
                self.given.settings["exclude_from_latest"],
                getattr(profile, "exclude_from_latest", None),
            ),
            "storageAccountType": account_type,
        }
        if self.given.settings["end_of_life"]:
            publishing["endOfLifeDate"] = f"{self.given.settings['end_of_life']}T00:00:00Z"
        days = self.given.settings.get("end_of_life_days")
        if days:
            published = getattr(profile, "published_date", None) or dt.datetime.now(dt.UTC)
            end = published.date() + dt.timedelta(days=int(days))
            publishing["endOfLifeDate"] = f"{end.isoformat()}T00:00:00Z"
        return {
            "location": self.given.location,
            "tags": tags,
            "properties": {
                "publishingProfile": publishing,
                "storageProfile": self._source(ctx),
                "safetyProfile": {"allowDeletionOfReplicatedLocations": True},
            },
        }

    def _source(self, ctx: RunContext) -> dict[str, Any]:
        out = ctx.output(self.source)
        vm_id = getattr(out, "vm_id", None)
        if vm_id and not getattr(out, "vhd_url", None):
            return {"source": {"virtualMachineId": vm_id}}
        url = getattr(out, "vhd_url", None)
        account = getattr(out, "storage_account_id", None)
        if not url or not account:
            raise PermanentAzureError(
                f"the VHD source of the image version is unknown (no URL or storage account from "
                f"step {self.source.key})",
                code="MissingImageSource",
            )
        return {"osDiskImage": {"source": {"storageAccountId": account, "uri": url}}}

    def _wait_replicated(self, ctx: RunContext, name: str, poller: Any) -> Any:
        """Wait for the LRO (if any) and replication, saying each region's progress; the
        version's last read.

        The version is read once per poll interval at a fixed rate from the start (request
        times do not add up), and at once when the LRO's poller sees the end: the wait ends
        with whichever sees the version created and replicated first."""
        shown: dict[str, str] = {}
        if poller is not None:
            fixed_rate(poller)

        def read(lro_over: bool) -> Any:
            raw = self._read(ctx, name)
            if raw is None:
                return None
            self._report(ctx, name, shown, raw)
            state = text(raw.provisioning_state or "").lower()
            if state == "failed":
                return raw if lro_over else None  # the LRO's error (below) says why
            return raw if state == "succeeded" and not _pending_regions(raw) else None

        raw = watch_beside(
            ctx,
            poller,
            read,
            f"image version {name} to be created and replicated",
            interval_s=poll_interval(ctx, 5),
            timeout_s=self.given.timeout_s,
        )
        if poller is not None and poller.done():  # else its thread ends at its next poll
            wait(ctx, poller, f"image version {name}", f"create image version {name}")
        if text(raw.provisioning_state).lower() == "failed":
            raise PermanentAzureError(
                f"image version {name} ended in state Failed", code="GalleryImageVersionFailed"
            )
        return raw

    def _report(self, ctx: RunContext, name: str, shown: dict[str, str], raw: Any = None) -> None:
        """Say each region's replication state when it changes (progress in 10 % steps)."""
        raw = raw if raw is not None else self._read(ctx, name)
        status = getattr(raw, "replication_status", None) if raw is not None else None
        for item in getattr(status, "summary", None) or []:
            region = _region(item.region)
            progress = int(item.progress or 0)
            state = text(item.state)
            key = f"{state} {progress // 10}"
            if shown.get(region) != key:
                shown[region] = key
                ctx.say(
                    f"image version {name}: {region} {state.lower()} {progress}%",
                    region=region,
                    progress=progress,
                )

    def input_words(self, name: str) -> str | None:
        return {"image": "the image's content", "replicas": "the replicas"}.get(name)

    def explain_change(self, changed: list[str], upstream: list[str]) -> str | None:
        if self.changed:  # the last check found no version: the provenance says what changed
            return f"a new image version: {'; '.join(self.changed)}"
        if "image" not in changed:
            return None
        why = "; ".join(upstream) if upstream else "the image's content changed"
        return f"a new image version: {why}"

    def describe(self) -> str:
        what = (
            "the next image version"
            if self.given.version == "auto"
            else f"image version {self.given.version}"
        )
        return f"{what} of {self.definition.given.definition.name} (image {self.given.image[:8]})"


def excluded_at_create(setting: Any, current: bool | None) -> bool:
    """`excludeFromLatest` to send for setting `exclude_from_latest` (true, false or
    until_rolled_out), `current` being the version's own when it exists: a version kept out
    until its rollout is made excluded, and a re-sent one keeps what it has (step
    `capture.release` includes it once every pool runs it)."""
    if setting == "until_rolled_out":
        return True if current is None else bool(current)
    return bool(setting)


def _region(name: Any) -> str:
    return text(name or "").replace(" ", "").lower()


def _pending_regions(raw: Any) -> list[str]:
    """Regions whose replication has not completed (from `expand=ReplicationStatus`)."""
    status = getattr(raw, "replication_status", None)
    summary = getattr(status, "summary", None)
    if not summary:
        return []
    return [_region(s.region) for s in summary if text(s.state or "").lower() != "completed"]
