"""Many specs in one command against the sandbox (issue 16): 20 quickstart specs applied at
once by one `batchimage apply --yes DIR --parallel 20` process while 10 % of ARM requests
are answered 429 with Retry-After, against one spec applied alone; and a no-op `plan` of
the 20 specs as one process.

    PYTHONPATH=. python3 bench/fleet.py [--specs 20] [--retry-after 1] [--write bench/fleet.md]

Each spec is the quickstart with its own name, image definition and pool, all in one
resource group, one gallery and one Batch account (a repository of specs as teams keep
it). The sandbox runs at its default time scale in a fresh folder. Figures: wall time of
each command (a fresh process, the sandbox already up), its CPU time (user + system of
the child), the 429s the sandbox answered, and whether every spec ended ok.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
SECTION = "## Many specs in one command"


def spec_data(name: str, n: int) -> dict[str, Any]:
    """The quickstart as the `n`th spec of the repository."""
    data = yaml.safe_load((REPO / "specs" / "quickstart.yaml").read_text())
    data["name"] = name
    capture = data["image"]["capture"]["gallery"]
    capture["gallery"] = "fleet_gallery"
    capture["definition"]["name"] = f"{name}-image"
    capture["definition"]["sku"] = f"sku-{n}"
    data["pools"][0]["id"] = f"{name}-pool"
    return data


def write_specs(folder: Path, prefix: str, count: int) -> None:
    folder.mkdir(parents=True)
    shutil.copytree(REPO / "specs" / "files", folder / "files")
    for n in range(count):
        name = f"{prefix}{n:02d}"
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(spec_data(name, n), sort_keys=False))


def timed(cwd: Path, env: dict[str, str], *args: str) -> dict[str, Any]:
    """Run `batchimage args...`: wall and CPU seconds, exit code, output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "batchimage", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=1800,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "rc": done.returncode, "out": done.stdout, "err": done.stderr}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--specs", type=int, default=20)
    parser.add_argument("--rate", type=float, default=0.1, help="share of ARM requests 429")
    parser.add_argument("--retry-after", type=float, default=1.0, help="seconds, on each 429")
    parser.add_argument("--write", type=Path, help="write the figures to this markdown file")
    args = parser.parse_args()

    from batchimage.sandbox.admin import SandboxAdmin
    from batchimage.sandbox.runtime import start

    root = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    sandbox = start(root / "sandbox")
    admin = SandboxAdmin(sandbox.connection)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATCHIMAGE_")}
    env.update(BATCHIMAGE_SANDBOX_DIR=str(root / "sandbox"), PYTHONPATH=str(REPO))
    figures: dict[str, dict[str, Any]] = {}
    try:
        write_specs(root / "solo", "solo", 1)
        write_specs(root / "fleet", "fleet", args.specs)
        write_specs(root / "calm", "calm", args.specs)
        figures["one spec alone"] = timed(root / "solo", env, "apply", "--yes", "solo00.yaml")
        n = str(args.specs)
        figures[f"{n} specs, no faults"] = timed(
            root / "calm", env, "apply", "--yes", ".", "--parallel", n
        )
        rule = {
            "kind": "status",
            "path": "^/subscriptions/",
            "rate": args.rate,
            "status": 429,
            "retry_after": args.retry_after,
        }
        admin.set_faults([rule], seed=16)
        label = f"{n} specs, {args.rate:.0%} of ARM requests 429"
        figures[label] = timed(root / "fleet", env, "apply", "--yes", ".", "--parallel", n)
        fired = admin.faults()["rules"][0]["fired"]
        seen = admin.faults()["rules"][0]["seen"]
        admin.clear_faults()
        figures[label] |= {"fired": fired, "seen": seen}
        figures[f"no-op plan of {n} specs"] = timed(root / "fleet", env, "plan", ".")
    finally:
        sandbox.stop()
        shutil.rmtree(root, ignore_errors=True)
    lines = report(figures, args)
    for label, f in figures.items():  # what did not end well, on stderr
        bad = [x for x in f["out"].splitlines() if " failed " in x or " in use " in x]
        if f["rc"] not in (0, 2) or bad:
            print(f"{label}: exit {f['rc']}", *bad, f["err"][-3000:], sep="\n", file=sys.stderr)
    print("\n".join(lines))
    if args.write:
        args.write.write_text("\n".join(lines) + "\n")


def report(figures: dict[str, dict[str, Any]], args: argparse.Namespace) -> list[str]:
    """The figures as the markdown section bench/fleet.md holds."""
    solo = figures["one spec alone"]["wall"]
    lines = [
        SECTION,
        "",
        f"`PYTHONPATH=. python3 bench/fleet.py --specs {args.specs} --rate {args.rate} "
        f"--retry-after {args.retry_after:g}`. Machine: {platform.machine()}, "
        f"{os.cpu_count()} cores (shared), Python {platform.python_version()}; sandbox at "
        "its default time scale (0.015).",
        "",
        "| command | exit | wall s | CPU s | x one spec | results | 429s answered |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, f in figures.items():
        tally = [x for x in (f["out"] + f["err"]).splitlines() if " spec(s): " in x]
        ok = tally[-1].split(": ", 1)[1] if tally else "-"
        fired = f"{f['fired']} of {f['seen']}" if "fired" in f else ""
        lines.append(
            f"| {label} | {f['rc']} | {f['wall']:.1f} | {f['cpu']:.1f} | "
            f"{f['wall'] / solo:.2f} | {ok} | {fired} |"
        )
    return lines


if __name__ == "__main__":
    main()
