"""A newcomer's first run, as real subprocesses: without Node.js the commands say what to
install (never a traceback, never "credentials"); a sandbox that cannot start is reported
as the sandbox's problem; Azurite's first install runs in the foreground before the
sandbox's health wait; and whatever the last command left (a killed apply, a sandbox still
stopping, one another command uses), the next command gets a working sandbox."""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from batchimage.sandbox.admin import SandboxAdmin
from batchimage.sandbox.azurite import AZURITE_VERSION, blob_main, find_azurite
from batchimage.sandbox.connection import read_connection
from batchimage.sandbox.errors import SandboxError
from batchimage.sandbox.owners import alive
from batchimage.sandbox.runtime import ensure_running, healthy
from tests.engine.procs import REPO, child_env
from tests.engine.sandbox_cli import ci_env, cli, spawn, start

pytestmark = [
    pytest.mark.long,
    pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and sh are POSIX"),
]

STARTING = "starting the sandbox (a local Azure) in "
NODE_HELP = "https://nodejs.org/en/download"
JOINER = """
import sys
from pathlib import Path
from batchimage.sandbox.runtime import ensure_running
conn = ensure_running(Path(sys.argv[1]))
print("up", conn.pid, flush=True)
sys.stdin.read()  # until the test closes stdin
"""
HOLDER = """
import os, sys
from pathlib import Path
import filelock
folder = Path(sys.argv[1])
folder.mkdir(parents=True, exist_ok=True)
lock = filelock.FileLock(str(folder / "serve.lock"))
lock.acquire()
(folder / "serve.pid").write_text(str(os.getpid()))
print("held", flush=True)
sys.stdin.read()  # a sandbox stopping until the test closes stdin
(folder / "serve.pid").unlink()
lock.release()
"""
FAKE_NPM = """#!{python}
# installs an azurite-blob that runs the real Azurite, saying so on stderr
import os, sys
args = sys.argv[1:]
binary = os.path.join(args[args.index("--prefix") + 1], "node_modules", ".bin", "azurite-blob")
os.makedirs(os.path.dirname(binary))
with open(binary, "w") as out:
    out.write('#!/bin/sh\\nexec {node} {main} "$@"\\n')
os.chmod(binary, 0o755)
print("fake npm: added 1 package", file=sys.stderr, flush=True)
"""


@pytest.fixture
def spec_dir(tmp_path: Path) -> Path:
    """A copy of specs/ (the quickstart's state goes beside it)."""
    folder = tmp_path / "specs"
    shutil.copytree(REPO / "specs", folder)
    return folder


def _env(folder: Path, **extra: str) -> dict[str, str]:
    return {**ci_env(folder), "BATCHIMAGE_SANDBOX_TIME_SCALE": "0.0002", **extra}


def _bin(tmp_path: Path, **tools: str) -> Path:
    """A PATH folder holding only `tools` (name -> script text, or a path to link to)."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    for name, what in tools.items():
        path = folder / name
        if what.startswith("/") and "\n" not in what:
            path.symlink_to(what)
        else:
            path.write_text(what)
            path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return folder


def _plain(done: subprocess.CompletedProcess[str]) -> str:
    """A failed command's output, checked to be a plain message: no traceback, and no word
    of credentials (this is never a sign-in problem)."""
    text = done.stdout + done.stderr
    assert "Traceback" not in text, text
    assert "credentials" not in text, text
    return text


def _within(seconds: float, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"still not done after {seconds} s")
        time.sleep(0.05)


def test_without_node_apply_and_serve_say_what_to_install(tmp_path: Path, spec_dir: Path) -> None:
    """No node, no npm on PATH: both commands exit 1 with what to install and where from."""
    env = _env(tmp_path / "sb", PATH=str(_bin(tmp_path)), BATCHIMAGE_CACHE=str(tmp_path / "cache"))
    applied = cli(spec_dir, env, "apply", "--yes", "quickstart.yaml")
    served = cli(tmp_path, env, "sandbox", "serve", "--folder", str(tmp_path / "sb"))
    for done in (applied, served):
        text = _plain(done)
        assert done.returncode == 1, text
        assert done.stderr.startswith("error: the sandbox needs Node.js"), text
        assert "`node` and `npm` are not on PATH" in text and NODE_HELP in text
    assert not (tmp_path / "sb" / "serve.log").exists()  # nothing was started


def test_a_sandbox_that_cannot_start_is_reported_as_the_sandboxs_problem(
    tmp_path: Path, spec_dir: Path
) -> None:
    """Azurite exits at once: `sandbox serve` exits 1 saying so (no thread traceback, no
    exit 0); `apply` reports the sandbox's exit, not a preflight credentials failure."""
    broken = _bin(tmp_path, **{"azurite-blob": "#!/bin/sh\necho 'no storage today' >&2\nexit 3\n"})
    env = _env(tmp_path / "sb", BATCHIMAGE_AZURITE=str(broken / "azurite-blob"))
    served = cli(tmp_path, env, "sandbox", "serve", "--folder", str(tmp_path / "served"))
    text = _plain(served)
    assert served.returncode == 1, text
    assert "error: Azurite exited with 3" in served.stderr and "no storage today" in text
    assert "sandbox serving at" not in served.stdout

    applied = cli(spec_dir, env, "apply", "--yes", "quickstart.yaml")
    text = _plain(applied)
    assert applied.returncode == 1, text
    assert "error: the sandbox exited with code 1" in applied.stderr, text
    assert "no storage today" in text and "preflight" not in text


def test_azurite_is_installed_in_the_foreground_before_the_health_wait(
    tmp_path: Path, spec_dir: Path
) -> None:
    """First run: npm runs in the command's foreground (its output shown), and only once it
    has finished does the command start the sandbox and wait for it to become healthy."""
    main = blob_main(find_azurite())
    node = shutil.which("node")
    assert main is not None and node is not None
    path = _bin(
        tmp_path, node=node, npm=FAKE_NPM.format(python=sys.executable, node=node, main=main)
    )
    folder = tmp_path / "sb"
    env = _env(folder, PATH=str(path), BATCHIMAGE_CACHE=str(tmp_path / "cache"))
    done = cli(spec_dir, env, "preflight", "quickstart.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    said = done.stderr
    order = [
        said.index(f"installing Azurite {AZURITE_VERSION} "),
        said.index("fake npm: added 1 package"),  # npm's own output, in the foreground
        said.index(f"Azurite {AZURITE_VERSION} installed in "),
        said.index(f"{STARTING}{folder}"),  # the health wait starts with the sandbox
    ]
    assert order == sorted(order), said
    assert "ok   credentials" in done.stdout
    assert (tmp_path / "cache" / "azurite" / "node_modules" / ".bin" / "azurite-blob").exists()


def test_a_killed_apply_leaves_a_sandbox_the_next_command_can_use(
    tmp_path: Path, spec_dir: Path
) -> None:
    """`apply` starts the sandbox and is SIGKILLed mid-run: `plan` right after it reuses that
    sandbox or replaces it, and sees what the killed run made."""
    folder = tmp_path / "sb"
    env = _env(folder)
    log = tmp_path / "apply.log"
    made = '"event": "step_done", "step": "build.network"'
    with log.open("wb") as err:
        apply = spawn(
            spec_dir, env, err, "apply", "--yes", "quickstart.yaml", "--log-format", "json"
        )
    _within(60, lambda: made in log.read_text() or apply.poll() is not None)
    assert apply.poll() is None, log.read_text()
    os.kill(apply.pid, signal.SIGKILL)
    apply.wait()

    plan = cli(spec_dir, env, "plan", "quickstart.yaml")
    text = plan.stdout + plan.stderr
    assert plan.returncode == 2, text  # the rest of the run is still to do
    for wrong in ("Traceback", "error", "FAIL", "another process", "deleted outside"):
        assert wrong not in text, text
    assert re.search(r"= no-op\s+build\.network\s+up to date", plan.stdout), plan.stdout


def test_a_sandbox_lives_while_any_command_that_joined_it_runs(tmp_path: Path) -> None:
    """The command that started the sandbox ends; the one that joined it meanwhile keeps it;
    once that one is gone too (SIGKILL), the sandbox stops."""
    folder = tmp_path / "sb"
    env = _env(folder)

    def join() -> tuple[subprocess.Popen[str], int]:
        proc = subprocess.Popen(
            [sys.executable, "-c", JOINER, str(folder)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stdout is not None
        word, pid = proc.stdout.readline().split()
        assert word == "up"
        return proc, int(pid)

    starter, served = join()
    joiner, same = join()
    assert same == served  # joined, not started again
    conn = read_connection(folder)
    assert conn is not None
    admin = SandboxAdmin(conn)
    assert admin.owners()["owners"] == sorted([starter.pid, joiner.pid])

    assert starter.stdin is not None
    starter.stdin.close()  # the starter ends normally: the sandbox stays for the joiner
    assert starter.wait(timeout=30) == 0
    assert admin.owners() == {"tied": True, "stopping": False, "owners": [joiner.pid]}
    assert healthy(conn) and alive(served)

    joiner.kill()  # no exit handler runs: the sandbox sees it gone
    joiner.wait()
    _within(20, lambda: not alive(served))


def test_a_command_that_joined_a_sandbox_gone_with_its_folder_ends_quietly(
    tmp_path: Path,
) -> None:
    """The sandbox a command joined is stopped and its folder removed (as a benchmark or a
    test cleans up): the command's exit handler has nobody to tell, and says nothing."""
    folder = tmp_path / "sb"
    env = _env(folder)
    procs = []
    for _ in range(2):
        proc = subprocess.Popen(
            [sys.executable, "-c", JOINER, str(folder)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stdout is not None
        word, pid = proc.stdout.readline().split()
        assert word == "up"
        procs.append(proc)
    starter, joiner = procs
    starter.kill()
    starter.wait()
    os.kill(int(pid), signal.SIGKILL)  # the sandbox itself
    _within(20, lambda: not alive(int(pid)))
    shutil.rmtree(folder)

    _, err = joiner.communicate("", timeout=60)
    assert joiner.returncode == 0, err
    assert "Traceback" not in err and "Exception ignored" not in err, err


def test_a_stopping_sandbox_is_waited_for_then_replaced(tmp_path: Path, spec_dir: Path) -> None:
    """The folder is still held by a sandbox that is stopping: the next command waits for it
    (saying so) and starts its own; one that never lets go is named in the error."""
    folder = tmp_path / "sb"
    env = _env(folder)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(SandboxError, match=f"held by process {holder.pid}, which neither"):
            ensure_running(folder, timeout=0.5)

        plan = start(spec_dir, env, "plan", "quickstart.yaml")
        assert plan.stderr is not None
        first = plan.stderr.readline()
        stamp, _, said = first.partition(" ")  # a pipe's lines start with the time (HH:MM:SS)
        assert re.fullmatch(r"\d\d:\d\d:\d\d", stamp), first
        assert said.startswith(f"waiting for the sandbox in {folder} (process {holder.pid})")
        assert holder.stdin is not None
        holder.stdin.close()  # the old sandbox has stopped
        out, rest = plan.communicate(timeout=120)
    finally:
        holder.kill()
        holder.wait()
    assert plan.returncode == 2, out + rest  # a fresh world: everything to create
    assert rest.partition(" ")[2].startswith(f"{STARTING}{folder}"), rest  # after the time
    assert "another process" not in out + rest
