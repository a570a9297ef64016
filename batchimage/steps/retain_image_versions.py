"""Step `retention`: after a successful rollout, delete this pipeline's gallery image
versions beyond the newest `capture.gallery.keep` (and published before the last
`keep_days` days) that no pool of the Batch accounts the spec names (its pools' and
`capture.gallery.keep_used_by`) uses; say what it keeps and why.

Only versions this pipeline made (its pipeline and run tags) are ever deleted. A version
a pool names, every version when a pool names the definition without a version (Batch
does not say which version such a pool's nodes run), the version the pools were just
rolled out to, and versions still provisioning are kept. `check` observes (plan lists what
would go and what stays); `apply` deletes; a run cut short starts again from what is left.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from pydantic import Field

from batchimage.azure.arm import VERSION, tags_of, text
from batchimage.azure.batch_pools import find_account
from batchimage.azure.gallery_versions import list_versions
from batchimage.azure.pool_uses import pool_uses
from batchimage.steps.base import RunContext, Step, StepInputs
from batchimage.steps.create_image_definition import CreateImageDefinition
from batchimage.steps.create_image_version import CreateImageVersion
from batchimage.steps.deleting import delete
from batchimage.steps.marks import owned, ref_for
from batchimage.steps.pool_common import DriftOutputs
from batchimage.steps.preflight.facts import pool_accounts
from batchimage.steps.retention import (
    KEEP_USED_BY,
    Rule,
    Verdict,
    VersionSeen,
    choose,
    kept_for,
)
from batchimage.steps.verbs import DELETE


class RetentionOutputs(DriftOutputs):
    """This pipeline's image versions left (newest first), and those kept with why."""

    versions: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()  # "<version>: <why>"
    note: str | None = Field(None, exclude=True)  # plan's words when nothing is to delete


class RetentionInputs(StepInputs):
    """`keep`, `keep_days` and the Batch accounts whose pools' images it keeps (the spec's
    pools' and `keep_used_by`; hashed); read, not hashed: the definition's name."""

    keep: int | None
    keep_days: int | None
    accounts: list[tuple[str, str]]
    kept_for: list[tuple[str, str]] = Field(exclude=True)  # those of `accounts` from keep_used_by
    definition_name: str = Field(exclude=True)


class RetainImageVersions(Step[RetentionOutputs]):
    """Delete old image versions of this pipeline that no pool uses (`keep`, `keep_days`)."""

    given: RetentionInputs

    kind = "retain_image_versions"
    key = "retention"
    verb = DELETE
    shown = ("versions", "kept")

    def __init__(
        self,
        spec: Any,
        definition: CreateImageDefinition,
        version: CreateImageVersion,
        rollout: tuple[type[Step[Any]] | Step[Any], ...],
    ) -> None:
        """`rollout`: the steps that finish putting the pools on the new version (every
        pool's retire step, the version's release): retention runs after them."""
        gallery = spec.image.capture.gallery
        more = kept_for(spec)
        self.given = RetentionInputs(
            keep=gallery.keep,
            keep_days=gallery.keep_days,
            accounts=sorted({*pool_accounts(spec), *more}),
            kept_for=more,
            definition_name=gallery.definition.name,
        )
        self.definition = definition
        self.version = version
        self.depends_on = (definition, version, *rollout)

    def _keeps(self) -> str:
        rules = []
        if self.given.keep is not None:
            rules.append(f"the newest {self.given.keep}")
        if self.given.keep_days is not None:
            rules.append(f"those of the last {self.given.keep_days} day(s)")
        return f"keeps {' and '.join(rules)}, and every version a pool uses"

    def describe(self) -> str:
        return f"delete old image versions of {self.given.definition_name} ({self._keeps()})"

    def planned_after(
        self, changing: Mapping[str, str], recorded: Mapping[str, Any] | None
    ) -> tuple[str, str] | None:
        """After a new version and its rollout: the older versions become candidates."""
        if changing.get(self.version.key) not in ("create", "replace"):
            return None
        return "delete", (
            "after the rollout: will delete this pipeline's older image versions (it "
            f"{self._keeps()}); `plan` lists them once the rollout is done"
        )

    # -- observing -----------------------------------------------------------------------

    def _seen(self, ctx: RunContext) -> tuple[list[Any], Verdict]:
        """This definition's versions as listed, and the verdict on this pipeline's."""
        d = ctx.output(self.definition)
        current = ctx.output(self.version)
        raw = list_versions(ctx.clients, d.group, d.gallery, d.name)
        seen = [_seen(ctx, v) for v in raw]
        accounts = [
            find_account(ctx.clients, group, name, KEEP_USED_BY)
            if (group, name) in self.given.kept_for
            else find_account(ctx.clients, group, name)
            for group, name in self.given.accounts
        ]
        uses = pool_uses(ctx.clients, accounts)
        rule = Rule(self.given.keep, self.given.keep_days, current.version, dt.datetime.now(dt.UTC))
        return raw, choose(seen, uses, current.definition_id, rule)

    def check(self, ctx: RunContext) -> RetentionOutputs:
        _, verdict = self._seen(ctx)
        gone = set(verdict.delete)
        left = tuple(name for name, _ in verdict.kept)
        kept = tuple(f"{name}: {why}" for name, why in verdict.kept)
        if gone:
            return RetentionOutputs(
                versions=left,
                kept=kept,
                drift=verdict.summary(),
                drift_action="delete",
            )
        return RetentionOutputs(
            versions=left,
            kept=kept,
            note=verdict.summary(),
            observed_fingerprint=ctx.fingerprint,
        )

    # -- acting --------------------------------------------------------------------------

    def apply(self, ctx: RunContext) -> RetentionOutputs | None:
        raw, verdict = self._seen(ctx)
        by_name = {text(v.name): v for v in raw}
        for name, why in verdict.kept:
            ctx.say(f"keeping image version {name}: {why}", version=name, kept=why)
        for name in verdict.delete:
            version = by_name[name]
            ctx.say(f"deleting image version {name}: no pool uses it", version=name)
            delete(ctx, ref_for(ctx, str(version.id), VERSION, tags_of(version)))
        return None


def _seen(ctx: RunContext, raw: Any) -> VersionSeen:
    profile = getattr(raw, "publishing_profile", None)
    published = getattr(profile, "published_date", None)
    if published is not None and published.tzinfo is None:
        published = published.replace(tzinfo=dt.UTC)
    return VersionSeen(
        name=text(raw.name),
        id=str(raw.id),
        ours=owned(ctx, tags_of(raw)),
        state=text(getattr(raw, "provisioning_state", None), "Succeeded"),
        published=published,
    )
