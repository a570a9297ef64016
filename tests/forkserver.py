"""`batchimage` commands as forks of one warm interpreter (one per test worker).

Each command is still its own process: its own pid, argv, environment, working folder,
standard streams, exit code and signals (a SIGKILL kills it alone). What it skips is
starting an interpreter and importing the tool and the Azure SDK, about 0.6 s of CPU per
command, which the suite's hundreds of commands paid on a 2-core machine. The server is
single-threaded when it forks (nothing of the test worker's threads or connections is
inherited). Tests of start-up itself (`--help`, the README's commands) and those on a
terminal start `python -m batchimage` as a fresh interpreter instead.

    proc = forked(["apply", "--yes", "spec.yaml"], cwd=folder, env=env, stderr=log)
    proc.wait(timeout=60)            # the exit code; negative: killed by that signal
    done = run(["plan", "spec.yaml"], cwd=folder, env=env, timeout=120)  # CompletedProcess
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parents[1]

# The server: warm up, then fork one child per request and report each child's end.
SERVER = r"""
import json, os, select, signal, socket, sys, traceback
sock = socket.socket(fileno=int(sys.argv[1]))
import runpy
import batchimage.cli, batchimage.commands.apply, batchimage.commands.destroy
import batchimage.commands.plan, batchimage.commands.status, batchimage.commands.output
import batchimage.commands.session, batchimage.steps.pipeline, batchimage.azure.clients
import batchimage.spec, batchimage.ui, batchimage.engine.coordinator, batchimage.sandbox_client
import azure.identity, azure.mgmt.compute, azure.mgmt.network, azure.mgmt.storage
import azure.mgmt.batch, azure.mgmt.resource.resources, azure.mgmt.authorization
import azure.storage.blob, azure.batch

def child(request, fds):
    sock.close()
    signal.set_wakeup_fd(-1)
    os.close(wake_r)
    os.close(wake_w)
    for sig in (signal.SIGCHLD, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = ["batchimage", *request["args"]]
    code = 0
    try:
        runpy.run_module("batchimage", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        code = 130
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)

def reap():
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        sock.send(json.dumps({"exit": pid, "code": os.waitstatus_to_exitcode(status)}).encode())

wake_r, wake_w = os.pipe()
os.set_blocking(wake_w, False)
signal.set_wakeup_fd(wake_w)
signal.signal(signal.SIGCHLD, lambda *_: None)
sock.send(b'{"ready": true}')
while True:
    try:
        readable, _, _ = select.select([sock, wake_r], [], [])
    except InterruptedError:
        continue
    if wake_r in readable:
        os.read(wake_r, 4096)
    if sock in readable:
        data, fds, _, _ = socket.recv_fds(sock, 1 << 20, 3)
        if not data:
            break
        pid = os.fork()
        if pid == 0:
            child(json.loads(data), fds)
        for fd in fds:
            os.close(fd)
        sock.send(json.dumps({"pid": pid}).encode())
    reap()
"""


class Server:
    """The warm interpreter of this process, and the ends of its commands."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
        env = {**os.environ, "PYTHONPATH": path}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self.sock = ours
        self.lock = threading.Lock()
        self.pids: queue.Queue[int] = queue.Queue()
        self.ended: dict[int, int] = {}
        self.changed = threading.Condition()
        ready = json.loads(self.sock.recv(1 << 16))
        assert ready == {"ready": True}, ready
        threading.Thread(target=self._read, name="forkserver", daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except OSError:
                return
            if not data:
                return
            message = json.loads(data)
            if "pid" in message:
                self.pids.put(message["pid"])
            else:
                with self.changed:
                    self.ended[message["exit"]] = message["code"]
                    self.changed.notify_all()

    def fork(self, args: list[str], cwd: Path, env: dict[str, str], fds: list[int]) -> int:
        """Start `batchimage args...` with `fds` as its stdin, stdout and stderr: its pid."""
        request = json.dumps({"args": args, "cwd": str(cwd), "env": env}).encode()
        with self.lock:
            socket.send_fds(self.sock, [request], fds)
            return self.pids.get(timeout=60)

    def close(self) -> None:
        """End the server (its commands run on): shut the socket down first, which wakes
        the reader thread blocked on it (a bare close would leave the server waiting)."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.proc.wait(timeout=30)


_server: Server | None = None
_server_lock = threading.Lock()


def server() -> Server:
    """This process's server, started on first use."""
    global _server
    with _server_lock:
        if _server is None or _server.proc.poll() is not None:
            _server = Server()
            atexit.register(_server.close)
        return _server


class Forked:
    """A forked command: the part of `subprocess.Popen` the tests use."""

    def __init__(self, owner: Server, pid: int) -> None:
        self.owner = owner
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """The exit code, once the server has reported the command's end; else None."""
        with self.owner.changed:  # an RLock: `wait` holds it while it polls
            if self.returncode is None:
                self.returncode = self.owner.ended.pop(self.pid, None)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.owner.changed:
            while (code := self.poll()) is None:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise subprocess.TimeoutExpired(["batchimage"], timeout or 0.0)
                self.owner.changed.wait(left)
        return code

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # ended since
                os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def forked(
    args: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    stdout: IO[Any] | None = None,
    stderr: IO[Any] | None = None,
) -> Forked:
    """`batchimage args...` started (stdin closed; stdout and stderr to the given files, or
    dropped)."""
    owner = server()
    with open(os.devnull, "rb") as null_in, open(os.devnull, "wb") as null_out:
        fds = [
            null_in.fileno(),
            (stdout or null_out).fileno(),
            (stderr or null_out).fileno(),
        ]
        return Forked(owner, owner.fork(args, cwd, env, fds))


def run(
    args: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`batchimage args...` to its end, its output captured as text (as `subprocess.run`)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = forked(args, cwd=cwd, env=env, stdout=out, stderr=err)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
            raise
        return subprocess.CompletedProcess(["batchimage", *args], code, _text(out), _text(err))


def _text(file: IO[bytes]) -> str:
    """What the command wrote to `file`, as `subprocess.run(text=True)` reads it."""
    file.seek(0)
    return file.read().decode(errors="replace").replace("\r\n", "\n").replace("\r", "\n")
