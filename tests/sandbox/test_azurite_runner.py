"""Azurite under its runner: new accounts are served at once by the same process, and
Azurite exits when its owner dies, even by SIGKILL (a killed test run or sandbox leaves no
Azurite behind)."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from batchimage.sandbox.azurite import Azurite, blob_main, find_azurite
from batchimage.sandbox.runtime import start
from tests.engine.procs import command_lines

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and ps are POSIX")

OWNER = """
import sys, time
from pathlib import Path
from batchimage.sandbox.azurite import Azurite, blob_main, find_azurite
tls = Path(sys.argv[2])
azurite = Azurite(location=Path(sys.argv[1]), accounts={"owned": sys.argv[3]},
                  cert=tls / "cert.pem", key=tls / "key.pem")
azurite.start()
print(azurite.process.pid, azurite.port, flush=True)
time.sleep(600)
"""


def _key() -> str:
    return base64.b64encode(os.urandom(64)).decode()


def _alive(pid: int) -> bool:
    """Whether `pid` runs: a zombie nobody reaped yet does not, unless some of its threads
    still do ("Zl" while the process exits)."""
    ps = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True)
    state = ps.stdout.strip()
    return bool(state) and not (state.startswith("Z") and "l" not in state)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _within(seconds: float, done: Callable[[], bool]) -> float:
    """Seconds until `done()` held; fails the test after `seconds`."""
    started = time.monotonic()
    while not done():
        if time.monotonic() - started > seconds:
            pytest.fail(f"still not done after {seconds} s")
        time.sleep(0.05)
    return time.monotonic() - started


def _children(pid: int) -> list[tuple[int, str]]:
    """The child processes of `pid` with their whole command lines (however long the path)."""
    return [(child, args) for child, (parent, args) in command_lines().items() if parent == pid]


def _started(tmp_path: Path, tls_dir: Path) -> Azurite:
    service = Azurite(
        location=tmp_path / "azurite",
        accounts={"first": _key()},
        cert=tls_dir / "cert.pem",
        key=tls_dir / "key.pem",
    )
    service.start()
    return service


@pytest.fixture
def azurite(tmp_path: Path, tls_dir: Path) -> Iterator[Azurite]:
    service = _started(tmp_path, tls_dir)
    yield service
    service.stop()


def _container(azurite: Azurite, account: str, tls_dir: Path) -> BlobServiceClient:
    return BlobServiceClient(
        azurite.blob_endpoint(account),
        credential={"account_name": account, "account_key": azurite.accounts[account]},
        connection_verify=str(tls_dir / "ca.pem"),
        retry_total=0,
    )


def test_new_accounts_are_served_by_the_same_process_at_once(
    azurite: Azurite, tls_dir: Path
) -> None:
    assert azurite.live and azurite.process is not None
    pid = azurite.process.pid
    first = _container(azurite, "first", tls_dir)
    first.create_container("kept").upload_blob("a.txt", b"first")
    azurite.set_accounts({"second": _key()})
    assert azurite.process.pid == pid  # not restarted
    second = _container(azurite, "second", tls_dir)
    second.create_container("new").upload_blob("b.txt", b"second")
    assert second.get_container_client("new").download_blob("b.txt").readall() == b"second"
    with pytest.raises(ResourceNotFoundError):  # an account no longer served
        first.get_container_client("kept").download_blob("a.txt")
    azurite.set_accounts({"first": first.credential.account_key, "second": _key()})
    assert first.get_container_client("kept").download_blob("a.txt").readall() == b"first"


def test_azurite_without_its_package_restarts_for_new_accounts(
    tmp_path: Path, tls_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An `azurite-blob` that is a wrapper script runs as is; new accounts restart it."""
    main = blob_main(find_azurite())
    assert main is not None
    wrapper = tmp_path / "bin" / "azurite-blob"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec node "{main}" "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("BATCHIMAGE_AZURITE", str(wrapper))
    service = _started(tmp_path, tls_dir)
    try:
        assert not service.live and service.process is not None
        pid = service.process.pid
        service.set_accounts({"second": _key()})
        assert service.process.pid != pid
        _container(service, "second", tls_dir).create_container("works")
    finally:
        service.stop()


def test_azurite_exits_when_its_owner_is_killed(tmp_path: Path, tls_dir: Path) -> None:
    """A test run (or any process) that started Azurite is SIGKILLed: Azurite goes too."""
    root = str(Path(__file__).resolve().parents[2])
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(tmp_path / "azurite"), str(tls_dir), _key()],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": root},
        text=True,
    )
    try:
        assert owner.stdout is not None
        pid, port = (int(v) for v in owner.stdout.readline().split())
        assert _alive(pid) and _listening(port)
    finally:
        owner.kill()
        owner.wait()
    _within(5.0, lambda: not _alive(pid) and not _listening(port))


def test_sandbox_killed_takes_its_azurite_along(tmp_path: Path) -> None:
    """`batchimage sandbox serve` is SIGKILLed: its Azurite exits within a few seconds."""
    sandbox = start(tmp_path / "sb", env={"BATCHIMAGE_SANDBOX_TIME_SCALE": "0.001"})
    try:
        serve = sandbox.process.pid
        runners = [pid for pid, args in _children(serve) if "azurite_runner.js" in args]
        assert len(runners) == 1
        port = sandbox.connection.azurite_port
        assert _listening(port)
    finally:
        os.kill(sandbox.process.pid, signal.SIGKILL)
        sandbox.process.wait()
    _within(5.0, lambda: not _alive(runners[0]) and not _listening(port))
