"""Real processes: Ctrl-C/SIGTERM, crashes at every step, two concurrent applies, secrets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from batchimage.state import StepStatus
from batchimage.state.local import LocalStateStore
from tests.engine.fakes import World
from tests.engine.procs import REPO, child_env

SCRIPT = Path(__file__).with_name("pipeline_script.py")


class Pipeline:
    """The in-test pipeline run as a child process over a world file and a state file."""

    def __init__(self, tmp: Path) -> None:
        self.world_path = tmp / "world.json"
        self.state_path = tmp / "state" / "demo.json"

    def args(self, behaviour: dict[str, Any] | None = None, *extra: str) -> list[str]:
        return [
            sys.executable,
            str(SCRIPT),
            str(self.world_path),
            str(self.state_path),
            "--yes",
            "--behaviour",
            json.dumps(behaviour or {}),
            *extra,
        ]

    def run(
        self, behaviour: dict[str, Any] | None = None, *extra: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.args(behaviour, *extra),
            capture_output=True,
            text=True,
            cwd=REPO,
            env=child_env(),
            timeout=60,
        )

    def start(self, behaviour: dict[str, Any] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.args(behaviour),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=child_env(),
        )

    def state(self) -> Any:
        return LocalStateStore(self.state_path).read()

    def world(self) -> World:
        return World(self.world_path)


def wait_for_event(
    proc: subprocess.Popen[str], kind: str, step: str | None
) -> list[dict[str, Any]]:
    """Read JSON events from the child's stderr until `kind` for `step` appears."""
    assert proc.stderr is not None
    seen = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        if line.startswith("{"):
            event = json.loads(line)
            seen.append(event)
            if event["event"] == kind and event.get("step") == step:
                return seen
    raise AssertionError(f"no {kind} for {step}; saw {seen}")


def events(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def done_actions(stderr: str) -> dict[str, str]:
    return {e["step"]: e["action"] for e in events(stderr) if e["event"] == "step_done"}


@pytest.fixture
def pipeline(tmp_path: Path) -> Pipeline:
    return Pipeline(tmp_path)


def test_sigint_lets_the_in_flight_call_settle_then_exits_130(pipeline: Pipeline) -> None:
    proc = pipeline.start({"b": {"sleep_s": 1.0}})
    wait_for_event(proc, "step_applying", "b")
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "interrupted by SIGINT; progress saved" in stderr
    state = pipeline.state()
    assert state.steps["b"].status == StepStatus.DONE  # settled, recorded
    assert "c" not in state.steps  # nothing new started after the signal
    assert state.runs[-1].result == "interrupted"

    again = pipeline.run()
    assert again.returncode == 0, again.stderr
    assert done_actions(again.stderr) == {"a": "no-op", "b": "no-op", "c": "created", "d": "no-op"}
    assert pipeline.world().writes == {"a": 1, "b": 1, "c": 1, "d": 1}


def test_sigterm_during_a_long_wait_records_in_flight_and_resumes(pipeline: Pipeline) -> None:
    proc = pipeline.start({"a": {"wait_forever": True}})
    wait_for_event(proc, "step_waiting", "a")
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)  # the wait would never end by itself
    assert proc.returncode == 130, stderr
    assert pipeline.state().steps["a"].status == StepStatus.IN_FLIGHT

    again = pipeline.run()
    assert again.returncode == 0, again.stderr
    plan = [e for e in events(again.stderr) if e["event"] == "step_planned" and e["step"] == "a"]
    assert plan[0]["reason"] == "resuming: the last run stopped during this step"
    assert pipeline.state().steps["a"].status == StepStatus.DONE


@pytest.mark.parametrize("step", ["a", "b", "c", "d"])
@pytest.mark.parametrize("moment", ["crash_before_put", "crash_after_put"])
def test_crash_at_any_step_resumes_at_that_step(pipeline: Pipeline, step: str, moment: str) -> None:
    crashed = pipeline.run({step: {moment: True}})
    assert crashed.returncode == 137
    before = pipeline.state()
    assert before.steps[step].status == StepStatus.IN_FLIGHT
    finished = {k for k, r in before.steps.items() if r.status == StepStatus.DONE}

    resumed = pipeline.run()
    assert resumed.returncode == 0, resumed.stderr
    actions = done_actions(resumed.stderr)
    assert all(actions[k] == "no-op" for k in finished)  # nothing done is redone
    # after the PUT the resource is adopted by its tags: no second write; before it, created
    assert actions[step] == ("no-op" if moment == "crash_after_put" else "created")
    assert pipeline.world().writes == {"a": 1, "b": 1, "c": 1, "d": 1}  # no duplicates
    after = pipeline.state()
    assert {r.status for r in after.steps.values()} == {StepStatus.DONE}
    assert [ref.id for ref in after.steps[step].created] == [f"/things/{step}"]


def test_two_concurrent_applies_one_runs_the_other_fails_fast(pipeline: Pipeline) -> None:
    first = pipeline.start({"a": {"sleep_s": 8.0}})
    wait_for_event(first, "step_applying", "a")
    second = pipeline.run()
    assert first.poll() is None  # the second did not wait for the first
    assert second.returncode == 3
    assert f"locked by `batchimage apply` (pid {first.pid} on" in second.stderr
    _, stderr = first.communicate(timeout=30)
    assert first.returncode == 0, stderr
    assert pipeline.world().writes == {"a": 1, "b": 1, "c": 1, "d": 1}


def test_removing_the_lock_file_does_not_let_a_second_apply_run(pipeline: Pipeline) -> None:
    first = pipeline.start({"a": {"wait_forever": True}})
    wait_for_event(first, "step_waiting", "a")
    lock_file = pipeline.state_path.with_name("demo.json.lock")
    lock_file.unlink()
    second = pipeline.run()
    assert second.returncode == 3, second.stderr
    assert f"in use by `batchimage apply` (pid {first.pid} on" in second.stderr
    assert "was removed" in second.stderr
    assert first.poll() is None  # the first run goes on, alone
    first.send_signal(signal.SIGINT)
    _, stderr = first.communicate(timeout=30)
    assert first.returncode == 130, stderr
    assert [r.result for r in pipeline.state().runs] == ["interrupted"]  # no second run
    assert pipeline.world().writes == {"d": 1}  # the first run's own, made once

    again = pipeline.run()
    assert again.returncode == 0, again.stderr
    assert pipeline.world().writes == {"a": 1, "b": 1, "c": 1, "d": 1}


def test_a_killed_holder_leaves_a_lock_the_next_apply_takes_over(pipeline: Pipeline) -> None:
    first = pipeline.start({"a": {"sleep_s": 30}})
    wait_for_event(first, "step_applying", "a")
    first.send_signal(signal.SIGKILL)
    first.wait()
    again = pipeline.run()
    assert again.returncode == 0, again.stderr
    notes = [e for e in events(again.stderr) if e["event"] == "run_note"]
    assert f"pid {first.pid}" in notes[0]["message"]


def test_non_terminal_apply_without_yes_refuses(pipeline: Pipeline) -> None:
    args = [a for a in pipeline.args() if a != "--yes"]
    result = subprocess.run(
        args,
        capture_output=True,
        text=True,
        cwd=REPO,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert result.returncode == 2
    assert "pass --yes" in result.stderr
    assert pipeline.world().writes == {}


def test_secrets_never_reach_state_or_logs(pipeline: Pipeline) -> None:
    secret = "s3cr3t-Value-0123456789"
    sas = "https://acct.blob.core.windows.net/c/x.vhd?sv=2024&sig=SIGNATUREabc%2B%3D"
    failing = {"b": {"fail_with": f"denied for key {secret} at {sas}"}}
    result = pipeline.run(failing, "--secret", secret)
    assert result.returncode == 1
    assert "step b failed" in result.stderr
    texts = [result.stdout, result.stderr, pipeline.state_path.read_text()]
    for text in texts:
        assert secret not in text
        assert "SIGNATUREabc" not in text
    assert "REDACTED" in pipeline.state_path.read_text()
    assert "REDACTED" in result.stderr
    assert os.stat(pipeline.state_path).st_mode & 0o777 == 0o600


def test_destroy_through_the_command_deletes_everything_created(pipeline: Pipeline) -> None:
    assert pipeline.run().returncode == 0
    result = pipeline.run(None, "--destroy")
    assert result.returncode == 0, result.stderr
    assert "will delete 4 resource(s)" in result.stdout
    assert pipeline.world().things == {}


def test_a_second_signal_stops_at_once(pipeline: Pipeline) -> None:
    proc = pipeline.start({"a": {"sleep_s": 20}})
    wait_for_event(proc, "step_applying", "a")
    proc.send_signal(signal.SIGINT)
    wait_for_event(proc, "run_stopping", None)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert time.monotonic() - started < 15  # not the 20 s the step sleeps
    assert pipeline.state().steps["a"].status == StepStatus.IN_FLIGHT
