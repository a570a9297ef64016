"""The README's two commands stay true: the test command is what .ci/run runs, and the
quickstart command (after its install part) applies the quickstart spec in the sandbox,
which lives where the README says, whatever the directory a command runs from."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.engine.procs import REPO, child_env

INSTALL = "python3 -m pip install -e . && "


def two_commands() -> list[str]:
    """The shell blocks of the README's "Two commands" section, in order."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", section, re.S)]


def test_the_test_command_is_what_ci_runs() -> None:
    quickstart, tests = two_commands()
    ci_lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert tests in ci_lines, f"{tests!r} is not a line of .ci/run"
    assert quickstart.startswith(INSTALL)


@dataclass(frozen=True)
class Quickstart:
    """The README's quickstart, run from `root` by a user whose sandbox lives under `root`."""

    root: Path
    env: dict[str, str]
    done: subprocess.CompletedProcess[str]

    @property
    def sandbox(self) -> Path:
        """The user's sandbox folder (the README's `~/.local/state/batchimage/sandbox`)."""
        return self.root / "state" / "batchimage" / "sandbox"


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> Quickstart:
    root = tmp_path_factory.mktemp("readme")
    command, _ = two_commands()
    shutil.copytree(REPO / "specs", root / "specs")
    env = child_env(BATCHIMAGE_SANDBOX_TIME_SCALE="0.0005", XDG_STATE_HOME=str(root / "state"))
    env.pop("BATCHIMAGE_SANDBOX_DIR", None)
    for part in command.removeprefix(INSTALL).split(" && "):
        argv = shlex.split(part)
        assert argv[0] == "batchimage", part
        done = subprocess.run(
            [sys.executable, "-m", "batchimage", *argv[1:]],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    return Quickstart(root, env, done)


def test_the_quickstart_command_applies_the_quickstart(quickstart: Quickstart) -> None:
    done = quickstart.done
    assert "apply complete" in done.stdout
    assert "pool.quickstart" in done.stdout
    state = quickstart.root / "specs" / ".batchimage" / "state" / "quickstart.json"
    assert '"pool.quickstart"' in state.read_text()
    # the command said where the sandbox it started lives: where the README says
    assert f"starting the sandbox (a local Azure) in {quickstart.sandbox};" in done.stderr
    assert (quickstart.sandbox / "state.json").exists()
    assert not (quickstart.root / ".batchimage" / "sandbox").exists()
    readme = (REPO / "README.md").read_text()
    assert "~/.local/state/batchimage/sandbox" in readme and "BATCHIMAGE_SANDBOX_DIR" in readme


def test_plan_from_any_directory_sees_what_the_quickstart_made(
    quickstart: Quickstart, tmp_path: Path
) -> None:
    """Two plans at once, from the spec's folder and from elsewhere: one sandbox (started
    once, by one of them), the quickstart's resources found, nothing to change."""
    spec = quickstart.root / "specs" / "quickstart.yaml"
    places = [(spec.parent, spec.name), (tmp_path, str(spec))]
    plans = [
        subprocess.Popen(
            [sys.executable, "-m", "batchimage", "plan", name],
            cwd=cwd,
            env=quickstart.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for cwd, name in places
    ]
    said = [plan.communicate(timeout=300) for plan in plans]
    for plan, (out, err) in zip(plans, said, strict=True):
        assert plan.returncode == 0, out + err
        assert "No changes: Azure matches the spec." in out
        assert "deleted outside" not in out
    started = [err for _, err in said if "starting the sandbox" in err]
    assert len(started) == 1, said  # the other one joined it
    assert f"starting the sandbox (a local Azure) in {quickstart.sandbox};" in started[0]
    for cwd, _ in places:
        assert not (cwd / ".batchimage" / "sandbox").exists()


@pytest.mark.parametrize(
    ("doc", "lead"),
    [
        ("README.md", "This is `specs/quickstart.yaml`"),
        ("docs/spec.md", "`specs/quickstart.yaml`, which runs against the sandbox"),
    ],
)
def test_the_quickstart_shown_is_the_file_as_it_is(doc: str, lead: str) -> None:
    """The README (and the spec guide) show specs/quickstart.yaml whole, byte for byte."""
    text = (REPO / doc).read_text(encoding="utf-8")
    after = text[text.index(lead) :]
    shown = after.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert shown == (REPO / "specs" / "quickstart.yaml").read_text(encoding="utf-8")
