"""What the sweep benchmarks share: run one of the suite's sweep tests with its report file
(one JSON line per case) and return pytest's verdict, the time taken and the rows; then
print the Markdown report and write it where asked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Sweep:
    """A finished sweep: pytest's exit code and last line, seconds taken, report rows."""

    returncode: int
    verdict: str
    seconds: float
    rows: list[dict[str, Any]]


def run_sweep(test: str, report_var: str, env: dict[str, str], pytest_args: list[str]) -> Sweep:
    """`pytest <pytest_args> <test>` with `report_var` naming a fresh report file."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.jsonl"
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *pytest_args, test],
            cwd=REPO,
            env={**os.environ, **env, report_var: str(report)},
            capture_output=True,
            text=True,
        )
        seconds = time.monotonic() - started
        lines = report.read_text().splitlines() if report.exists() else []
    out = done.stdout.strip()
    verdict = out.splitlines()[-1] if out else done.stderr[-500:]
    return Sweep(done.returncode, verdict, seconds, [json.loads(line) for line in lines])


def publish(text: str, write: Path | None, sweep: Sweep) -> int:
    """Print the report, write it to `write` if given; the sweep's exit code."""
    print(text)
    if write:
        write.write_text(text)
    return sweep.returncode
