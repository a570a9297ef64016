"""On a real pseudo-terminal `batchimage apply FILE` shows the plan and asks; `n` changes
nothing (zero sandbox writes, no step done) and exits 1, `y` applies. `batchimage destroy
FILE` lists what will go and asks likewise; `n` deletes nothing, `y` deletes."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from batchimage.spec import load_spec
from batchimage.state import StepStatus
from tests.engine.sandbox_cli import ci_env
from tests.engine.sandbox_pipeline import admin, cloud, pools  # noqa: F401
from tests.pools.harness import PoolHarness


class Terminal:
    """`batchimage args...` with stdin, stdout and stderr on a pseudo-terminal."""

    def __init__(self, cwd: Path, env: dict[str, str], *args: str) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 120, 0, 0))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "batchimage", *args],
            cwd=cwd,
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
        )
        os.close(slave)
        self.screen = ""

    def _read(self, timeout: float) -> bool:
        """Append what the child wrote within `timeout`; False once the terminal closed."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: every holder of the other end is gone
            return False
        self.screen += data.decode(errors="replace")
        return bool(data)

    def expect(self, text: str, timeout: float = 60) -> str:
        """Wait until `text` is on the screen; returns the screen so far."""
        deadline = time.monotonic() + timeout
        while text not in self.screen:
            assert time.monotonic() < deadline, f"no {text!r} on the terminal:\n{self.screen}"
            assert self._read(0.2), f"the terminal closed before {text!r}:\n{self.screen}"
        return self.screen

    def answer(self, line: str) -> None:
        os.write(self.master, f"{line}\n".encode())

    def finish(self, timeout: float = 120) -> int:
        """Read to the end; the child's exit code."""
        deadline = time.monotonic() + timeout
        while self._read(0.2):
            assert time.monotonic() < deadline, f"still running:\n{self.screen}"
        os.close(self.master)
        return self.proc.wait(timeout=30)


def test_apply_and_destroy_ask_on_a_terminal(
    pools: PoolHarness,  # noqa: F811
    sandbox_folder: Path,
) -> None:
    spec = pools.spec("quickstart.yaml")
    env = ci_env(sandbox_folder)
    name = spec.stem
    pool_id = load_spec(spec).pools[0].id

    pools.admin.reset_counters()
    refused = Terminal(spec.parent, env, "apply", spec.name)
    screen = refused.expect("Apply these changes?")
    assert f"plan for {name}" in screen and "capture.version" in screen
    assert "to create" in screen
    refused.answer("n")
    assert refused.finish() == 1, refused.screen
    assert "apply cancelled; nothing was changed" in refused.screen
    assert pools.admin.counters()["writes"] == 0
    state = pools.store(spec).read()
    assert state is None or not any(s.status == StepStatus.DONE for s in state.steps.values())

    accepted = Terminal(spec.parent, env, "apply", spec.name)
    accepted.expect("Apply these changes?")
    accepted.answer("y")
    assert accepted.finish() == 0, accepted.screen
    assert "apply complete" in accepted.screen
    version_id = pools.outputs(spec, "capture.version")["version_id"]
    assert pools.resource(version_id) is not None

    pools.admin.reset_counters()
    kept = Terminal(spec.parent, env, "destroy", spec.name)
    screen = kept.expect("Delete these resources?")
    assert f"destroy {name} will delete" in screen and version_id in screen
    kept.answer("n")
    assert kept.finish() == 1, kept.screen
    assert "destroy cancelled; nothing was deleted" in kept.screen
    assert pools.admin.counters()["writes"] == 0
    assert pools.resource(version_id) is not None
    assert pools.pool_ids(pool_id)

    deleted = Terminal(spec.parent, env, "destroy", spec.name)
    deleted.expect("Delete these resources?")
    deleted.answer("y")
    assert deleted.finish() == 0, deleted.screen
    assert "destroy complete" in deleted.screen
    assert pools.resource(version_id) is None
    assert pools.pool_ids(pool_id) == []
