"""Fault sweep: the quickstart applied with one transient fault at every request position
of a run (503 and 429 on a request and the SDK's retries of it, a dropped connection) and
at every operation it starts (ended Failed); each apply must end well with nothing of the
build left (the suite's tests/pools/test_fault_sweep.py, which sweeps one seeded position
per fault). Writes a Markdown table.

Run: `python3 bench/fault_sweep.py --write bench/fault_sweep.md` (repository root).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEST = "tests/pools/test_fault_sweep.py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", default="all", help="`all`, or `seed:N` (one each)")
    parser.add_argument("--workers", default="2", help="pytest-xdist workers (one per fault)")
    parser.add_argument("--write", type=Path, help="write the Markdown table here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.jsonl"
        env = {
            **os.environ,
            "BATCHIMAGE_FAULT_POSITIONS": args.positions,
            "BATCHIMAGE_FAULT_REPORT": str(report),
        }
        started = time.monotonic()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "-n",
                args.workers,
                "--dist",
                "load",
                "-o",
                "timeout=0",
                TEST,
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
        )
        took = time.monotonic() - started
        rows = [json.loads(line) for line in report.read_text().splitlines()]
    tail = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-500:]
    lines = [
        "# Fault sweep",
        "",
        f"`python3 bench/fault_sweep.py --positions {args.positions}`: the quickstart (image "
        "and pool, in-process, sandbox at the tests' time scale) applied once per position "
        "with one transient fault there; each apply must end well, leave nothing of the "
        "build, and have its pool.",
        "",
        f"Result: pytest says {tail!r} ({took:.0f} s in all).",
        "",
        "| fault | positions | requests a run sends | fired | applies that ended well "
        "| slowest apply |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for fault in sorted({row["fault"] for row in rows}):
        mine = [row for row in rows if row["fault"] == fault]
        sent = sorted({row["requests"] for row in mine})
        lines.append(
            f"| {fault} | {len(mine)} | {sent[0]}-{sent[-1]} "
            f"| {sum(1 for row in mine if row['fired'])} | {sum(row['ok'] for row in mine)} "
            f"| {max(row['seconds'] for row in mine):.1f} s |"
        )
    failures = [row for row in rows if not row["ok"]]
    lines += ["", f"Failures: {len(failures)}."]
    lines += [
        f"- {row['fault']} at {row['nth']}: {row['error'] or row['left'] or 'fault not fired'}"
        for row in failures
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        args.write.write_text(text)
    return done.returncode


if __name__ == "__main__":
    raise SystemExit(main())
