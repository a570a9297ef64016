"""An image version's provenance: what made it - the base (the exact Marketplace version, or
the VHD's content digest), the customize steps' digests, the spec file's SHA-256, the tool's
version and the spec's git commit - kept as tags on the version (names in `Marks.Tag`), so
it is read back from Azure alone, and compared with what a run would make now, in words.

    now = Provenance.of(spec, base="Canonical:ubuntu-24_04-lts:server:24.04.202503180")
    now.tags()                          {"batchimage-customize": "sha256:...", ...}
    then = Provenance.from_tags(tags)   None for a version made before provenance was kept
    then.changes(now, spec.image.customize)   ["customize.0 script changed", "base ... → ..."]

Azure's tag limits (docs/azure-behaviours.md, "Tags and provenance") hold whatever the
spec: one digest covers every customize step, and the steps' short digests share one value
(left out when they do not fit in 256 characters)."""

from __future__ import annotations

import functools
import hashlib
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from batchimage import __version__
from batchimage.core.hashing import canonical_json
from batchimage.core.ownership import Marks
from batchimage.steps.names import customize_inputs

STEP_DIGEST = 8  # hex digits of one customize step's digest
SCRIPT_ACTIONS = ("shell", "powershell", "shell_file", "powershell_file")


@dataclass(frozen=True)
class Provenance:
    """What made an image version (None: not recorded)."""

    base: str | None = None  # publisher:offer:sku:version
    base_digest: str | None = None  # a VHD base: xxh3:<hex>
    customize: str | None = None  # sha256:<hex> over every step's inputs
    customize_steps: tuple[str, ...] | None = None  # each step's content digest (8 hex)
    spec: str | None = None  # sha256:<hex> of the spec file
    tool: str | None = None
    commit: str | None = None  # <sha> or <sha>+dirty

    @classmethod
    def of(cls, spec: Any, *, base: str | None = None, digest: str | None = None) -> Provenance:
        """What a run of `spec` makes now, from `base` (the exact Marketplace image) or
        `digest` (a VHD base's content digest)."""
        return cls.made(
            spec.image.customize,
            getattr(spec, "source_sha256", "") or "",
            Path(getattr(spec, "base_dir", ".") or "."),
            base=base,
            digest=digest,
        )

    @classmethod
    def made(
        cls,
        customize: Sequence[Any],
        sha: str,
        folder: Path,
        *,
        base: str | None = None,
        digest: str | None = None,
    ) -> Provenance:
        """What a run makes now of the customize steps `customize`, from a spec file of
        SHA-256 `sha` in `folder` (its git commit), from `base` or `digest` (see `of`)."""
        steps = list(customize)
        return cls(
            base=base,
            base_digest=digest,
            customize="sha256:" + _sha256([customize_inputs(s) for s in steps]),
            customize_steps=tuple(_sha256(_content(s))[:STEP_DIGEST] for s in steps),
            spec=f"sha256:{sha}" if sha else None,
            tool=__version__,
            commit=git_commit(folder),
        )

    def tags(self) -> dict[str, str]:
        """The tags that record it (within Azure's limits: see the module doc)."""
        T = Marks.Tag
        out = {
            T.BASE: self.base,
            T.BASE_DIGEST: self.base_digest,
            T.CUSTOMIZE: self.customize,
            T.SPEC: self.spec,
            T.TOOL: self.tool,
            T.COMMIT: self.commit,
        }
        if self.customize_steps is not None:
            joined = ",".join(self.customize_steps)
            if len(joined) <= Marks.Tag.VALUE_MAX:
                out[T.CUSTOMIZE_STEPS] = joined
        return {k: v[: Marks.Tag.VALUE_MAX] for k, v in out.items() if v}

    @classmethod
    def from_tags(cls, tags: dict[str, str] | None) -> Provenance | None:
        """The provenance a version's tags record; None when it has none (made before
        batchimage kept it: only `batchimage-base` may be there)."""
        T = Marks.Tag
        tags = tags or {}
        if not any(tags.get(n) for n in (T.CUSTOMIZE, T.TOOL, T.SPEC, T.BASE_DIGEST)):
            return None
        steps = tags.get(T.CUSTOMIZE_STEPS)
        return cls(
            base=tags.get(T.BASE),
            base_digest=tags.get(T.BASE_DIGEST),
            customize=tags.get(T.CUSTOMIZE),
            customize_steps=tuple(steps.split(",")) if steps else None,
            spec=tags.get(T.SPEC),
            tool=tags.get(T.TOOL),
            commit=tags.get(T.COMMIT),
        )

    def to_json(self) -> dict[str, Any]:
        """For `--format json`: every field, the steps' digests as a list."""
        out = asdict(self)
        out["customize_steps"] = list(self.customize_steps) if self.customize_steps else None
        return out

    def changes(self, now: Provenance, customize: Sequence[Any]) -> list[str]:
        """What differs between this (recorded) provenance and `now`, in words: the base,
        each customize step; the tool's version and the spec file only when nothing else
        does (they alone do not make a new image)."""
        out: list[str] = []
        if self.base and now.base and self.base.lower() != now.base.lower():
            out.append(f"base {_base_words(self.base, now.base)}")
        if self.base_digest and now.base_digest and self.base_digest != now.base_digest:
            out.append(f"base VHD {_short(self.base_digest)} → {_short(now.base_digest)}")
        if self.customize != now.customize and self.customize and now.customize:
            out += _step_changes(self.customize_steps, now.customize_steps, customize)
        if not out and self.tool and now.tool and self.tool != now.tool:
            out.append(f"tool {self.tool} → {now.tool}")
        if not out and self.spec and now.spec and self.spec != now.spec:
            out.append(f"spec file {_short(self.spec)} → {_short(now.spec)}")
        return out


def _step_changes(
    then: tuple[str, ...] | None, now: tuple[str, ...] | None, customize: Sequence[Any]
) -> list[str]:
    """Which customize steps changed ("customize.0 script changed", "customize.2 added"),
    of the spec's `customize` steps now."""
    if then is None or now is None:
        return ["the customize steps changed"]
    steps = list(customize)
    out = []
    for i in range(max(len(then), len(now))):
        if i >= len(then):
            out.append(f"customize.{i} added")
        elif i >= len(now):
            out.append(f"customize.{i} removed")
        elif then[i] != now[i]:
            out.append(f"customize.{i} {_what(steps[i])} changed")
    return out or ["customize settings changed (env, secret_env)"]


def _what(step: Any) -> str:
    """What a step's content digest covers, in a word."""
    if step.action in SCRIPT_ACTIONS:
        return "script"
    return "file" if step.action == "file" else "step"


def _content(step: Any) -> dict[str, Any]:
    """What one customize step's short digest covers: its script or file and where it goes
    (env and secret_env are in the digest over all steps)."""
    inputs = customize_inputs(step)
    return {k: v for k, v in inputs.items() if k not in ("env", "secret_env")}


def _base_words(then: str, now: str) -> str:
    """`24.04.202503180 → 24.04.202511050` for one image's versions, else both in full."""
    a, _, va = then.rpartition(":")
    b, _, vb = now.rpartition(":")
    return f"{va} → {vb}" if a.lower() == b.lower() else f"{then} → {now}"


def _short(digest: str) -> str:
    kind, _, hexd = digest.partition(":")
    return f"{kind}:{hexd[:12]}" if hexd else digest[:12]


def _sha256(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


@functools.cache
def git_commit(folder: Path) -> str | None:
    """The git commit checked out where the spec lives (`<sha>`, `<sha>+dirty` when that
    folder has changes not committed, untracked files included); None outside a work tree,
    without git, or when git fails."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(folder), *args],
                capture_output=True,
                text=True,
                timeout=20,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    sha = git("rev-parse", "--verify", "--quiet", "HEAD")
    if not sha:
        return None
    changes = git("status", "--porcelain", "--", ".")
    if changes is None:
        return sha
    return f"{sha}+dirty" if changes else sha


def current_version(
    versions: list[Any], pipeline: str, recorded: str | None, image: str | None = None
) -> Any | None:
    """The pipeline's current image version among `versions` (SDK models): the one the state
    records, else the highest of this `image` fingerprint, else the pipeline's highest."""
    from batchimage.azure.arm import tags_of, text
    from batchimage.steps.gallery import version_key

    ours = [v for v in versions if tags_of(v).get(Marks.Tag.PIPELINE) == pipeline]
    named = [v for v in ours if recorded and text(v.name) == recorded]
    same = [v for v in ours if image and tags_of(v).get(Marks.Tag.IMAGE) == image]
    pick = named or same or ours
    return max(pick, key=lambda v: version_key(text(v.name))) if pick else None


def read_current(clients: Any, spec: Any, recorded: str | None) -> dict[str, Any] | None:
    """The provenance of `spec`'s current image version, read from its tags in Azure alone:
    `version`, `version_id`, `image` (its fingerprint), `current` (it holds the image the
    spec makes now), `provenance` (`Provenance.to_json`, None for a version made before
    batchimage kept it); None when the definition or its versions are not there."""
    from batchimage.azure.arm import tags_of, text
    from batchimage.azure.errors import is_not_found
    from batchimage.azure.gallery_versions import list_versions
    from batchimage.core.errors import AzureError
    from batchimage.steps.names import image_fingerprint

    gallery = spec.image.capture.gallery
    group = gallery.resource_group or spec.resource_group
    name = gallery.definition.name
    try:
        versions = list_versions(clients, group, gallery.gallery, name)
    except AzureError as exc:
        if is_not_found(exc):
            return None
        raise
    image = image_fingerprint(spec)
    found = current_version(versions, spec.name, recorded, image)
    if found is None:
        return None
    tags = tags_of(found)
    then = Provenance.from_tags(tags)
    return {
        "version": text(found.name),
        "version_id": text(found.id),
        "image": tags.get(Marks.Tag.IMAGE),
        "current": tags.get(Marks.Tag.IMAGE) == image,
        "provenance": then.to_json() if then is not None else None,
    }
