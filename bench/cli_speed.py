"""CLI speed: cold start of `batchimage --help` against `python -c pass`, and `validate` over
100 specs in one run. Targets (issue 2): --help under 0.3 s; 100 specs under 1.5 s.

    python3 bench/cli_speed.py [--runs N] [--write bench/cli_speed.md]

Each figure is the median wall time of N fresh processes (no warm interpreter), plus the
fastest run. The 100 specs are the example specs copied under new names, each with its
referenced files, so every one is fully validated (files checked, rules run).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGETS = {"help": 0.3, "validate100": 1.5}


def timed(command: list[str], cwd: Path, runs: int) -> tuple[float, float]:
    """Median and minimum wall time of `runs` fresh runs of `command` (must exit 0)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}")
    return statistics.median(times), min(times)


def make_specs(folder: Path, count: int) -> list[str]:
    """Write `count` valid specs (the examples, renamed) into `folder`; return their names."""
    shutil.copytree(REPO / "specs/files", folder / "files")
    examples = sorted((REPO / "specs").glob("*.yaml"))
    names = []
    for index in range(count):
        source = examples[index % len(examples)]
        text = source.read_text(encoding="utf-8").replace(
            f"name: {source.stem}", f"name: {source.stem}-{index:03d}", 1
        )
        name = f"spec-{index:03d}.yaml"
        (folder / name).write_text(text, encoding="utf-8")
        names.append(name)
    return names


def azure_imported(cwd: Path, args: list[str]) -> bool:
    """True if running the CLI with `args` imports any azure.* module."""
    code = (
        "import sys\nfrom batchimage.cli import main\ntry:\n    main(sys.argv[1:])\n"
        "except SystemExit:\n    pass\nprint(any(m.startswith('azure') for m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    return result.stdout.strip().splitlines()[-1] == "True"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="fresh processes per figure")
    parser.add_argument("--write", type=Path, help="also write the markdown table here")
    args = parser.parse_args()
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        specs = make_specs(folder, 100)
        rows = [
            ("python -c pass", *timed([python, "-c", "pass"], folder, args.runs), None),
            (
                "batchimage --help",
                *timed([python, "-m", "batchimage", "--help"], folder, args.runs),
                TARGETS["help"],
            ),
            (
                "batchimage validate (1 spec)",
                *timed([python, "-m", "batchimage", "validate", specs[0]], folder, args.runs),
                None,
            ),
            (
                "batchimage validate (100 specs)",
                *timed([python, "-m", "batchimage", "validate", *specs], folder, args.runs),
                TARGETS["validate100"],
            ),
        ]
        help_azure = azure_imported(folder, ["--help"])
        validate_azure = azure_imported(folder, ["validate", specs[0]])
    lines = [
        "## CLI speed",
        "",
        "Cold start of `batchimage --help` against `python -c pass`, and `validate` over 100",
        "specs in one run (`python3 bench/cli_speed.py --write bench/cli_speed.md`).",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {args.runs} fresh processes per row.",
        "",
        "| command | median | fastest | target | met |",
        "| --- | ---: | ---: | ---: | :---: |",
    ]
    for label, median, fastest, target in rows:
        met = "" if target is None else ("yes" if median < target else "**no**")
        shown = "" if target is None else f"< {target:.1f} s"
        lines.append(f"| `{label}` | {median:.3f} s | {fastest:.3f} s | {shown} | {met} |")
    lines += [
        "",
        f"Azure SDK imported by `--help`: {'yes' if help_azure else 'no'}; "
        f"by `validate`: {'yes' if validate_azure else 'no'}.",
    ]
    table = "\n".join(lines) + "\n"
    print(table)
    if args.write:
        args.write.write_text(table, encoding="utf-8")


if __name__ == "__main__":
    main()
