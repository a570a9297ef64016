"""The README's two commands stay true: the test command is what .ci/run runs, and the
quickstart command (after its install part) applies the quickstart spec in the sandbox."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

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


def test_the_quickstart_command_applies_the_quickstart(tmp_path: Path) -> None:
    quickstart, _ = two_commands()
    shutil.copytree(REPO / "specs", tmp_path / "specs")
    env = child_env(BATCHIMAGE_SANDBOX_TIME_SCALE="0.002")
    env.pop("BATCHIMAGE_SANDBOX_DIR", None)
    for command in quickstart.removeprefix(INSTALL).split(" && "):
        argv = shlex.split(command)
        assert argv[0] == "batchimage", command
        done = subprocess.run(
            [sys.executable, "-m", "batchimage", *argv[1:]],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    assert "apply complete" in done.stdout
    assert "pool.quickstart" in done.stdout
    state = tmp_path / "specs" / ".batchimage" / "state" / "quickstart.json"
    assert '"pool.quickstart"' in state.read_text()
