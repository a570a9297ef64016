"""Preflight: read-only checks that fail in seconds, before anything is created.

`run_checks(ctx, spec) -> Report` runs them all (credentials first, then providers, storage,
Batch accounts, base image, the classic flow's unmanaged OS disk, gallery/definition,
node agent, quota, concurrently); each check module holds one check returning pass /
warn / fail results with the next action.
The `preflight` step (`batchimage.steps.run_preflight`) and `batchimage preflight FILE`
both use it.
"""

from batchimage.steps.preflight.report import CheckResult, Report
from batchimage.steps.preflight.run import run_checks

__all__ = ["CheckResult", "Report", "run_checks"]
