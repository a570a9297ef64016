"""Tunable Batch behaviour from the sandbox config's `batch` mapping (config file, or
`PATCH /_sandbox/config {"batch": {...}}`; keys are merged one by one):

    start_task_rules: [{"match": "<regex on commandLine>", "exit_code": 1,
                        "stdout": "...", "stderr": "..."}]      first match wins; default 0
    task_rules:       [same shape, for job tasks]
    allocation_failures: [{"pool": "<regex on pool id>", "nodes": "dedicated" |
                        "low_priority" | "all", "reason": "..."}]  resize error AllocationFailed
    account_quotas: {"<account>": {"dedicated": 20, ...}}   a Batch account's quotas (see
                                  batch_management.quotas; `core_quotas` is the older name)
    low_priority_retired: true    Batch-service accounts get no low-priority nodes (Azure
                                  retired them on 2025-09-30); false models the old quota
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from batchimage.sandbox.context import World


@dataclass(frozen=True)
class Outcome:
    """How a (start) task ends: exit code and what it wrote."""

    exit_code: int
    stdout: str
    stderr: str


def _settings(world: World) -> dict[str, Any]:
    return world.config.batch


def outcome(world: World, kind: str, command_line: str) -> Outcome:
    """The outcome of a task whose command line is `command_line` (`kind`: "start_task"
    or "task"): the first matching `<kind>_rules` entry, else exit code 0."""
    for rule in _settings(world).get(f"{kind}_rules") or []:
        if re.search(str(rule.get("match", "")), command_line):
            return Outcome(
                int(rule.get("exit_code", 1)),
                str(rule.get("stdout", "")),
                str(rule.get("stderr", "")),
            )
    return Outcome(0, f"sandbox: ran {command_line!r}\n", "")


def allocation_failure(world: World, pool_id: str, dedicated: bool) -> str | None:
    """The configured allocation failure reason for this pool and node kind, or None."""
    kind = "dedicated" if dedicated else "low_priority"
    for rule in _settings(world).get("allocation_failures") or []:
        if re.search(str(rule.get("pool", ".*")), pool_id) and rule.get("nodes", "all") in (
            "all",
            kind,
        ):
            return str(
                rule.get("reason")
                or "Deployment allocation failed due to insufficient capacity for the "
                "requested VM size in the region."
            )
    return None


def low_priority_retired(world: World) -> bool:
    return bool(_settings(world).get("low_priority_retired", True))
