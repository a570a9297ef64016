"""`batchimage apply` as a person sees it on a terminal (a pseudo-terminal read through a
terminal emulator): what starts is said, the plan and the `[y/N]` question come before
any table and the answer lands on the question's line, the table fits the screen (one
line per step, running pools in sight, no line wider than the terminal), and after Ctrl-C
the last lines start at column 0 with no stale copy of the table left above.

The sandbox holds every node in its start (a duration of centuries), so the run waits on
the pools until Ctrl-C, however fast or slow the machine is.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from batchimage.spec import load_spec
from tests.engine.procs import REPO
from tests.engine.sandbox_cli import ci_env
from tests.engine.sandbox_pipeline import admin, cloud, pools  # noqa: F401
from tests.engine.terminal import Terminal
from tests.pools.harness import PoolHarness

HELD = 1e10  # simulated seconds: a node start that does not end while the test runs
HEADER = r"\s*step\s+status\s+time\s+activity$"
INTERRUPTED = 130


def row(key: str, status: str) -> str:
    """A table row: a mark (spinner, ✓, ...), the step key, its status."""
    return rf".  {re.escape(key)}\s+{status}\b"


def ends_at_column_0(term: Terminal) -> None:
    """The lines after Ctrl-C start at column 0, and the table was drawn once only."""
    lines = term.lines()
    for start in ("SIGINT: stopping;", "apply interrupted after", "error: interrupted by SIGINT;"):
        assert term.find(re.escape(start)), f"no line starts with {start!r}:\n{term.shown()}"
        assert not any(start in line and not line.startswith(start) for line in lines)
    assert len(term.find(HEADER)) == 1, term.shown()


def test_a_first_apply_on_a_terminal(tmp_path: Path) -> None:
    """160x50, no sandbox running yet: the one a newcomer types first."""
    shutil.copy(REPO / "specs" / "quickstart.yaml", tmp_path)
    shutil.copytree(REPO / "specs" / "files", tmp_path / "files")
    folder = tmp_path / "sandbox"
    folder.mkdir()
    config = {"time_scale": 0.001, "durations": {"node.start": HELD}}
    (folder / "config.json").write_text(json.dumps(config))
    term = Terminal(tmp_path, ci_env(folder), "apply", "quickstart.yaml", rows=50, columns=160)

    term.expect("Apply these changes?")
    term.wait_for(lambda: bool(term.find("Apply these changes?")), "question on the screen")
    starting = term.find(r"starting the sandbox \(a local Azure\) in \S+/sandbox; it stops when")
    plan = term.find("plan for quickstart")
    assert starting and plan and starting[0] < plan[0], term.shown()
    assert not term.find(HEADER), f"a table before the question:\n{term.shown()}"
    assert term.lines()[-1] == "Apply these changes? [y/N]:", term.shown()

    term.answer("y")
    term.wait_for(lambda: bool(term.find(row("pool.quickstart", "creating"))), "pool creating")
    question = term.find(re.escape("Apply these changes? [y/N]: y") + "$")
    assert question, f"the answer is not on the question's line:\n{term.shown()}"
    assert term.find(HEADER)[0] > question[0], term.shown()
    note = term.find("customize.0: the sandbox does not run scripts: ")
    assert note and note[0] > question[0], term.shown()

    term.interrupt()
    assert term.finish() == INTERRUPTED, term.shown()
    ends_at_column_0(term)
    assert term.find(row("pool.quickstart", "interrupted")), term.shown()


def many_steps(data: dict[str, Any]) -> None:
    """Quickstart with ten more customize steps and a second pool: 27 steps."""
    data["image"]["customize"][1:1] = [
        {"name": f"step {n}", "shell": f"echo {n}"} for n in range(10)
    ]
    second = {**data["pools"][0], "id": data["pools"][0]["id"] + "-b"}
    data["pools"].append(second)


def test_a_tall_run_fits_80_by_24(pools: PoolHarness) -> None:  # noqa: F811
    spec = pools.spec("quickstart.yaml", many_steps)
    keys = [f"pool.{pool.id}" for pool in load_spec(spec).pools]
    pools.admin.configure(durations={"node.start": HELD})
    try:
        term = Terminal(
            spec.parent, ci_env(pools.conn.folder), "apply", "--yes", spec.name, rows=24, columns=80
        )

        def pools_running() -> bool:
            """Both pools creating, in a table drawn whole: it ends with the line that
            counts the rows left out, and no line in it is blank (a redraw half read)."""
            shown = [line.rstrip() for line in term.screen.display]
            while shown and not shown[-1]:
                shown.pop()
            headers = [i for i, line in enumerate(shown) if re.match(HEADER, line)]
            if not headers or not shown[-1].startswith("… "):
                return False
            table = shown[headers[-1] + 1 :]
            return all(table) and all(
                any(re.match(row(key, "creating"), line) for line in table) for key in keys
            )

        term.wait_for(pools_running, "both pools creating on the screen")
        widest = max(len(line) for line in term.written())
        assert widest <= 80, "\n".join(line for line in term.written() if len(line) > 80)
        table = term.lines()[term.find(HEADER)[-1] + 1 :]
        steps = {step.key for step in _steps(spec)}
        for line in table:  # one line per row: no row wraps onto a second
            found = re.match(r".  (\S+)\s", line)
            assert line.startswith("… ") or (found and found[1] in steps), term.shown()
        assert any(line.startswith("… ") for line in table), "27 steps cannot all fit in 24"

        term.interrupt()
        assert term.finish() == INTERRUPTED, term.shown()
        ends_at_column_0(term)
    finally:
        pools.admin.configure(durations={"node.start": 180.0})


def _steps(spec: Path) -> list[Any]:
    from batchimage.steps.pipeline import build_steps

    return build_steps(load_spec(spec))
