"""Crash sweep: per seed, three phases SIGKILLed at seeded random points of their work, each
re-run until it exits 0 and the sandbox's inventory compared with a clean run's (the suite's
tests/engine/test_crash_sigkill.py, which runs one seed with fewer kills per phase):
- apply: a first apply, 8 kills; after about every other kill the state file (and its .bak)
  is deleted too (a state loss), then a re-apply makes zero writes;
- update: an apply after the first customize script's edit (a new image version rolled out to
  the pool), --phase-kills kills, then a re-apply makes zero writes;
- destroy: `batchimage destroy` after a converged apply, --phase-kills kills; nothing is left.
Writes a Markdown table of the kill points by phase and step.

Run: `python3 bench/crash_sweep.py --seeds 1-7 --write bench/crash_sweep.md` (repository root).
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path
from typing import Any

from sweeps import publish, run_sweep

TEST = "tests/engine/test_crash_sigkill.py"


def seeds_of(text: str) -> list[int]:
    """'1-7' or '3,5,9' as a list of seeds."""
    if "-" in text:
        low, high = text.split("-", 1)
        return list(range(int(low), int(high) + 1))
    return [int(part) for part in text.split(",")]


def kill_points(rows: list[dict[str, Any]]) -> collections.Counter[tuple[str, str]]:
    """Kills by (phase, step); an apply kill followed by a state loss is its own phase."""
    points: collections.Counter[tuple[str, str]] = collections.Counter()
    for row in rows:
        phase = row.get("phase", "apply")
        lost = collections.Counter(row.get("state_lost", []))
        for kill in row["killed_in"]:
            step = kill.split(":")[0]
            if lost[kill] > 0:
                lost[kill] -= 1
                points[(f"{phase} + state lost", step)] += 1
            else:
                points[(phase, step)] += 1
    return points


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1-7", help="seeds: a range 1-7 or a list 3,5,9")
    parser.add_argument("--phase-kills", type=int, default=8, help="kills per update, destroy")
    parser.add_argument("--write", type=Path, help="write the Markdown table here")
    args = parser.parse_args()
    seeds = seeds_of(args.seeds)
    sweep = run_sweep(
        TEST,
        "BATCHIMAGE_CRASH_REPORT",
        {
            "BATCHIMAGE_CRASH_SEEDS": ",".join(map(str, seeds)),
            "BATCHIMAGE_CRASH_PHASE_KILLS": str(args.phase_kills),
        },
        ["-n0"],
    )
    rows, tail, took = sweep.rows, sweep.verdict, sweep.seconds
    by_point = kill_points(rows)
    total = sum(by_point.values())
    lines = [
        "# Crash sweep",
        "",
        f"`python3 bench/crash_sweep.py --seeds {args.seeds} --phase-kills {args.phase_kills}`: "
        f"{len(seeds)} seeds; per seed 8 SIGKILLs of a first `batchimage apply` (the state file "
        "and its .bak deleted after about every other kill), "
        f"{args.phase_kills} of an update's apply (the first customize script edited: a new "
        f"image version rolled out to the pool) and {args.phase_kills} of `batchimage destroy` "
        "(quickstart + VHD export, sandbox at time scale 0.0002). Each phase is re-run until "
        "exit 0 and its inventory compared with a clean run's (resources, gallery versions, "
        "blobs, pools, every sandbox record; after destroy, a fresh sandbox's but for two empty "
        "blob containers), then, after apply and update, a re-apply with zero writes.",
        "",
        f"Result: pytest says {tail!r} ({took:.0f} s in all); {total} kills landed inside a "
        f"run ({len(by_point)} distinct phase and step pairs); every phase that passed ended "
        "with zero orphans and zero duplicates.",
        "",
        "| phase | step the run was in when killed | kills |",
        "| --- | --- | ---: |",
        *(f"| {phase} | `{step}` | {n} |" for (phase, step), n in sorted(by_point.items())),
        "",
    ]
    text = "\n".join(lines)
    return publish(text, args.write, sweep)


if __name__ == "__main__":
    raise SystemExit(main())
