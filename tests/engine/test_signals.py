"""SIGTERM is never a silent death: at any moment it stops the command with a message and
exit 130, a run saves its progress first, and a signal after the last message (while the
process winds down) ends it at once with the same code. Real processes, the sandbox."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from batchimage.sandbox.config import DEFAULT_DURATIONS
from tests.engine.procs import REPO
from tests.engine.sandbox_cli import ci_env
from tests.engine.sandbox_pipeline import admin, cloud, pools  # noqa: F401
from tests.engine.terminal import Terminal
from tests.engine.test_process import wait_for_event
from tests.pools.harness import PoolHarness

LINGER = Path(__file__).with_name("linger_main.py")


def test_sigterm_before_the_run_says_so_and_exits_130(
    pools: PoolHarness,  # noqa: F811
    sandbox_folder: Path,
) -> None:
    spec = pools.spec("quickstart.yaml")
    pools.admin.reset_counters()
    asked = Terminal(spec.parent, ci_env(sandbox_folder), "apply", spec.name)
    asked.expect("Apply these changes?")
    asked.proc.send_signal(signal.SIGTERM)
    assert asked.finish() == 130, asked.output
    said = asked.output.replace("\r", "")
    assert "interrupted by SIGTERM; nothing was being changed" in said, said
    assert "Traceback" not in said
    assert pools.admin.counters()["writes"] == 0
    assert pools.store(spec).read() is None  # no run began


def test_a_second_sigterm_after_progress_saved_exits_130_at_once(
    pools: PoolHarness,  # noqa: F811
    sandbox_folder: Path,
) -> None:
    spec = pools.spec("quickstart.yaml")
    pools.admin.configure(durations={"vm.create": 10**6})  # the run waits on its VM
    run = subprocess.Popen(
        [sys.executable, str(LINGER), "apply", spec.name, "--yes", "--log-format", "json"],
        cwd=spec.parent,
        env={**ci_env(sandbox_folder), "PYTHONPATH": str(REPO)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        seen = wait_for_event(run, "step_waiting", "build.vm")
        run.send_signal(signal.SIGTERM)
        assert run.stderr is not None
        lines = []
        while (line := run.stderr.readline()) and line.strip() != "lingering":
            lines.append(line)
        assert line.strip() == "lingering", "".join(lines)
        run.send_signal(signal.SIGTERM)  # while it winds down
        assert run.wait(timeout=30) == 130  # at once: not after the minute it lingers
    finally:
        pools.admin.configure(durations={"vm.create": DEFAULT_DURATIONS["vm.create"]})
        if run.poll() is None:
            run.kill()
            run.wait()
    said = [json.loads(line) for line in lines if line.strip()]  # every line is JSON
    last = said[-1]
    assert last["event"] == "error" and last["exit_code"] == 130
    assert last["message"].startswith("interrupted by SIGTERM; progress saved in ")
    assert any(e["event"] == "run_stopping" for e in seen + said)
    state = pools.store(spec).read()
    assert state is not None and state.runs[-1].result == "interrupted"
    assert state.steps["build.vm"].status == "in_flight"
