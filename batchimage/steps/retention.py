"""Retention of gallery image versions: which of a pipeline's versions a `keep` /
`keep_days` rule deletes - keeping, with a reason, every version it cannot prove unused
(the pools' image references are read by `batchimage.azure.pool_uses`).

    verdict = choose(versions, uses, definition_id, rule)    # pure: delete / kept (why)

A pool names a version id, or the definition id ("latest"): Batch does not publish when
it resolves latest, so such a pool may run any of the definition's versions and keeps them
all (docs/azure-behaviours.md, "Gallery image versions")."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from batchimage.azure.pool_uses import PoolUse
from batchimage.steps.gallery import version_key
from batchimage.steps.preflight.facts import pool_accounts

KEEP_USED_BY = "fix image.capture.gallery.keep_used_by, or remove the account from it"


def kept_for(spec: Any) -> list[tuple[str, str]]:
    """The accounts `capture.gallery.keep_used_by` adds to the pools' (resource group, name),
    each once, none already among the pools' (resource groups compared as Azure compares
    them: letter case aside)."""
    known = {(group.lower(), name) for group, name in pool_accounts(spec)}
    out = []
    for ref in spec.image.capture.gallery.keep_used_by:
        group = ref.resource_group or spec.resource_group
        if (group.lower(), ref.name) not in known:
            known.add((group.lower(), ref.name))
            out.append((group, ref.name))
    return out


@dataclass(frozen=True)
class VersionSeen:
    """A version of the image definition as the gallery lists it."""

    name: str
    id: str
    ours: bool  # made by this pipeline (its pipeline and run tags)
    state: str  # provisioning state
    published: dt.datetime | None = None


@dataclass(frozen=True)
class Rule:
    """What to keep: the newest `keep` versions, those published in the last `keep_days`
    days (as of `now`), and `current`, the version the pools were just rolled out to."""

    keep: int | None
    keep_days: int | None
    current: str
    now: dt.datetime


@dataclass(frozen=True)
class Verdict:
    """This pipeline's versions retention deletes, and those it keeps with why (newest
    first)."""

    delete: tuple[str, ...]
    kept: tuple[tuple[str, str], ...]

    def summary(self) -> str:
        """One line for people: what goes and what stays, with why."""
        kept = "; ".join(f"{name} ({why})" for name, why in self.kept)
        if not self.delete:
            return f"keeps every image version: {kept}" if kept else "no image version to delete"
        gone = ", ".join(self.delete)
        return f"will delete image version(s) {gone}" + (f"; keeps {kept}" if kept else "")


def choose(
    versions: Sequence[VersionSeen], uses: Sequence[PoolUse], definition_id: str, rule: Rule
) -> Verdict:
    """Which of this pipeline's `versions` to delete under `rule`; every other one of ours is
    kept with the first reason that holds: a pool names it, a pool names the definition
    (latest), it is the version just rolled out, one of the newest `keep`, published within
    `keep_days`, not in a settled state, or of unknown age."""
    ours = sorted((v for v in versions if v.ours), key=lambda v: version_key(v.name), reverse=True)
    on_latest = [u for u in uses if u.names(definition_id)]
    delete: list[str] = []
    kept: list[tuple[str, str]] = []
    for rank, version in enumerate(ours):
        why = _kept_why(version, rank, [u for u in uses if u.names(version.id)], on_latest, rule)
        if why is None:
            delete.append(version.name)
        else:
            kept.append((version.name, why))
    return Verdict(tuple(delete), tuple(kept))


def _kept_why(
    version: VersionSeen,
    rank: int,
    users: list[PoolUse],
    on_latest: list[PoolUse],
    rule: Rule,
) -> str | None:
    if users:
        return f"in use by {_listed(users)}"
    if on_latest:
        return (
            f"{_listed(on_latest)} names the image definition without a version; Batch does not "
            "say which version its nodes run"
        )
    if version.name == rule.current:
        return "the version the pools run now"
    if rule.keep is not None and rank < rule.keep:
        return f"one of the newest {rule.keep}"
    if version.state.lower() not in ("succeeded", "failed"):
        return f"provisioning state {version.state}"
    if rule.keep_days is not None:
        if version.published is None:
            return "its publish date is unknown"
        if rule.now - version.published < dt.timedelta(days=rule.keep_days):
            return f"published less than {rule.keep_days} day(s) ago (keep_days)"
    return None


def _listed(users: list[PoolUse]) -> str:
    return ", ".join(str(u) for u in users[:3]) + (
        f" and {len(users) - 3} more" if len(users) > 3 else ""
    )
