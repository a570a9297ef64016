"""Fault sweep: the quickstart applied with one transient fault at every request position
of a run (503 and 429 on a request and the SDK's retries of it, a dropped connection) and
at every operation it starts (ended Failed); each apply must end well with nothing of the
build left (the suite's tests/pools/test_fault_sweep.py, which sweeps one seeded position
per fault). Writes a Markdown table.

Run: `python3 bench/fault_sweep.py --write bench/fault_sweep.md` (repository root).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sweeps import publish, run_sweep

TEST = "tests/pools/test_fault_sweep.py"


def table(rows: list[dict[str, Any]], positions: str, verdict: str, took: float) -> str:
    """The Markdown report: per fault, the positions swept, reached, and ended well."""
    reached = [row for row in rows if row["fired"]]
    failures = [row for row in reached if not row["ok"]]
    lines = [
        "# Fault sweep",
        "",
        f"`python3 bench/fault_sweep.py --positions {positions}`: the quickstart (image and "
        "pool, in-process, sandbox at the tests' time scale) applied once per position with "
        "one transient fault there; each apply must end well, leave nothing of the build, "
        "and have its pool. A position past the last request of its run is not reached "
        "(runs differ by a few polls) and proves nothing.",
        "",
        f"Result: pytest says {verdict!r} ({took:.0f} s in all); {len(reached)} faults "
        f"landed, {len(failures)} applies failed.",
        "",
        "| fault | positions | requests a clean run sends | reached | ended well | slowest apply |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for fault in sorted({row["fault"] for row in rows}):
        mine = [row for row in rows if row["fault"] == fault]
        hit = [row for row in mine if row["fired"]]
        sent = sorted({row["requests"] for row in mine})
        lines.append(
            f"| {fault} | {len(mine)} | {sent[0]}-{sent[-1]} | {len(hit)} "
            f"| {sum(row['ok'] for row in hit)} | {max(row['seconds'] for row in mine):.1f} s |"
        )
    lines += ["", f"Failures: {len(failures)}."]
    lines += [
        f"- {row['fault']} at {row['nth']}: {row['error'] or row['left']}" for row in failures
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", default="all", help="`all`, or `seed:N` (one each)")
    parser.add_argument("--workers", default="2", help="pytest-xdist workers (one per fault)")
    parser.add_argument("--write", type=Path, help="write the Markdown table here")
    args = parser.parse_args()
    sweep = run_sweep(
        TEST,
        "BATCHIMAGE_FAULT_REPORT",
        {"BATCHIMAGE_FAULT_POSITIONS": args.positions},
        ["-n", args.workers, "--dist", "load", "-o", "timeout=0"],
    )
    text = table(sweep.rows, args.positions, sweep.verdict, sweep.seconds)
    return publish(text, args.write, sweep)


if __name__ == "__main__":
    raise SystemExit(main())
