"""Find, install and run Azurite (Microsoft's storage emulator, npm `azurite`) for blobs.

Azurite is found, in order, at `$BATCHIMAGE_AZURITE` (path to `azurite-blob`), on PATH, or
in the cache folder (`$BATCHIMAGE_CACHE`, default `~/.cache/batchimage/azurite`), where it
is installed with npm when missing: in the foreground, saying so on stderr, within its own
time limit. It needs Node.js (and npm to install it); without them the error says so.

It runs under `azurite_runner.js` (node + Azurite's own blob server), which takes a new
set of accounts without a restart and exits when its owner (this process) is gone, even
if the owner was killed. An `azurite-blob` whose package cannot be found (e.g. a wrapper
script) runs as is: account changes restart it, and it outlives a killed owner.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import filelock

from batchimage.sandbox.errors import SandboxError

AZURITE_VERSION = "3.37.0"
NODE_MAJOR = 22  # Azurite 3.37.0's package.json: "engines": {"node": ">=22.0.0"}
INSTALL_TIMEOUT = 600.0  # seconds npm may take to install Azurite (its own limit)
RUNNER = Path(__file__).with_name("azurite_runner.js")
_SAYS = "batchimage-azurite "
_BLOB_MAIN = Path("azurite", "dist", "src", "blob", "main.js")


def cache_dir() -> Path:
    """Folder where batchimage keeps downloaded tools."""
    base = os.environ.get("BATCHIMAGE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "batchimage"
    )
    return Path(base) / "azurite"


def install_command(target: Path) -> list[str]:
    """The npm command that installs Azurite into `target`."""
    return [
        "npm",
        "install",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
        "--prefix",
        str(target),
        f"azurite@{AZURITE_VERSION}",
    ]


def find_azurite(install: bool = True, timeout: float = INSTALL_TIMEOUT) -> Path:
    """Path of the `azurite-blob` executable; installs it with npm into the cache if allowed.

    The install runs in the foreground (npm's messages on stderr, a line before and after)
    and has its own time limit, `timeout` seconds. Without Node.js (or npm, when Azurite must
    be installed) the SandboxError says what to install and where to get it.
    """
    explicit = os.environ.get("BATCHIMAGE_AZURITE")
    if explicit:
        if Path(explicit).exists():
            return Path(explicit)
        raise SandboxError(f"BATCHIMAGE_AZURITE points at {explicit}, which does not exist")
    target = cache_dir()
    cached = target / "node_modules" / ".bin" / "azurite-blob"
    found = shutil.which("azurite-blob") or (str(cached) if cached.exists() else None)
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if found:
        if "node" in missing:
            raise SandboxError(
                node_needed(f"Azurite is installed ({found}) but `node` is not on PATH")
            )
        return Path(found)
    cmd = install_command(target)
    if missing:
        raise SandboxError(
            node_needed(f"{' and '.join(f'`{t}`' for t in missing)} {_is(missing)} not on PATH")
            + f"\nbatchimage then installs Azurite by itself, with: {' '.join(cmd)}"
        )
    if not install:
        raise SandboxError(
            "Azurite (the storage emulator) is not installed; install it with:\n  " + " ".join(cmd)
        )
    return _install(target, cached, timeout)


def _is(names: list[str]) -> str:
    return "are" if len(names) > 1 else "is"


def node_needed(what: str) -> str:
    """The message for a machine without Node.js or npm: what is needed, and where to get it."""
    return (
        f"the sandbox needs Node.js {NODE_MAJOR} or later, with npm, to run Azurite (Microsoft's "
        f"storage emulator for blobs), and {what}.\n"
        "Install Node.js (npm comes with it): https://nodejs.org/en/download "
        "(or your package manager's `nodejs` and `npm` packages, if they are that recent), "
        "then run the command again."
    )


def _install(target: Path, cached: Path, timeout: float) -> Path:
    """`npm install` Azurite into `target` in the foreground, one process at a time."""
    cmd = install_command(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(str(target.parent / "azurite.install.lock")):
        if cached.exists():  # another process installed it meanwhile
            return cached
        print(
            f"installing Azurite {AZURITE_VERSION} (the sandbox's blob storage) into {target} "
            "with npm; one time, about a minute...",
            file=sys.stderr,
            flush=True,
        )
        target.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        # npm's own output goes to stderr (fd 2): stdout stays the command's (e.g. its JSON)
        npm = subprocess.Popen(cmd, stdout=2, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            code = npm.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SandboxError(
                f"installing Azurite with npm did not finish within {timeout:g} s (a slow or "
                f"offline network?); run it yourself, then the command again: {' '.join(cmd)}"
            ) from None
        finally:
            _stop_group(npm)
        if code != 0 or not cached.exists():
            raise SandboxError(
                f"installing Azurite with npm failed (exit {code}; npm's messages are above); "
                f"run it yourself to see why: {' '.join(cmd)}"
            )
        took = time.monotonic() - started
        print(f"Azurite {AZURITE_VERSION} installed in {took:.0f} s", file=sys.stderr, flush=True)
        return cached


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill what is left of `proc`'s process group (npm's children, after a timeout or Ctrl-C)."""
    with contextlib.suppress(OSError):
        if sys.platform == "win32":
            proc.kill()
        else:
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def node_version_note() -> str:
    """` (node vX is older than Azurite needs)` when it is, else ""; for failure messages."""
    node = shutil.which("node")
    if node is None:
        return ""
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10)
        major = int(out.stdout.strip().lstrip("v").split(".")[0])
    except (OSError, ValueError, subprocess.SubprocessError):
        return ""
    if major >= NODE_MAJOR:
        return ""
    return (
        f" (node {out.stdout.strip()} is older than Azurite {AZURITE_VERSION} asks for: "
        f"Node.js {NODE_MAJOR} or later)"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def blob_main(binary: Path) -> Path | None:
    """Azurite's `dist/src/blob/main.js` behind an `azurite-blob` executable (an npm bin link,
    or a `.cmd` shim next to `node_modules`), or None when it cannot be found."""
    for candidate in (
        binary.resolve(),
        binary.parent.parent / _BLOB_MAIN,
        binary.parent / "node_modules" / _BLOB_MAIN,
    ):
        if candidate.name == "main.js" and (candidate.parent / "BlobServerFactory.js").exists():
            return candidate
    return None


@dataclass
class Azurite:
    """A running Azurite blob service: HTTPS on 127.0.0.1, accounts from `accounts`.

    `accounts` maps account name -> key, or -> "key1:key2" for an account with two keys.
    """

    location: Path
    accounts: dict[str, str]
    cert: Path
    key: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    live: bool = field(default=False, repr=False)  # takes new accounts without a restart
    _said: queue.Queue[str] = field(default_factory=queue.Queue, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _seq: int = field(default=0, repr=False)

    @property
    def endpoint_root(self) -> str:
        """`https://127.0.0.1:<port>`; an account's blob endpoint is this plus `/<account>/`."""
        return f"https://127.0.0.1:{self.port}"

    def blob_endpoint(self, account: str) -> str:
        """The primary blob endpoint Azurite serves for `account` (path style)."""
        return f"{self.endpoint_root}/{account}/"

    def _options(self) -> list[str]:
        return [
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(self.port),
            "--location",
            str(self.location),
            "--cert",
            str(self.cert),
            "--key",
            str(self.key),
            "--oauth",
            "basic",
            "--skipApiVersionCheck",
            "--loose",
            "--silent",
            "--disableTelemetry",
            "--disableProductStyleUrl",
        ]

    def start(self, timeout: float = 30.0) -> None:
        """Start Azurite and wait until it accepts connections."""
        binary = find_azurite()
        self.location.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        env = dict(os.environ)
        env["AZURITE_ACCOUNTS"] = _accounts_value(self.accounts)
        ca = self.cert.parent / "ca.pem"
        if ca.exists():  # copy-from-URL (e.g. of a disk export SAS) makes Azurite call itself
            env["NODE_EXTRA_CA_CERTS"] = str(ca)
        main, node = blob_main(binary), shutil.which("node")
        owned = main is not None and node is not None
        if owned:
            env["BATCHIMAGE_AZURITE_BLOB_MAIN"] = str(main)
            cmd = [str(node), str(RUNNER), *self._options()]
        else:
            cmd = [str(binary), *self._options()]
        log = open(self.location / "azurite.log", "ab")  # noqa: SIM115 - owned by the child
        self._said = queue.Queue()
        self.process = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE if owned else log,
            stderr=log,
            stdin=subprocess.PIPE if owned else subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # a Ctrl-C meant for the owner does not reach it
        )
        log.close()
        if owned:
            threading.Thread(target=_listen, args=(self.process, self._said), daemon=True).start()
            said = self._expect("ready", timeout)
            self.live = said == "ready live"
            return
        self.live = False
        self._wait_listening(timeout)

    def _expect(self, what: str, timeout: float) -> str:
        """The runner's next line starting with `what`; a SandboxError if it exits first."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                said = self._said.get(timeout=max(0.0, left))
            except queue.Empty:
                self.stop()
                raise SandboxError(
                    f"Azurite did not answer ({what}) on port {self.port} within {timeout:.0f} s"
                ) from None
            if said.startswith(what):
                return said
            if not said:
                self.stop()
                tail = (self.location / "azurite.log").read_text(errors="replace")[-800:]
                raise SandboxError(f"Azurite exited{node_version_note()}: {tail}")

    def _wait_listening(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = (self.location / "azurite.log").read_text(errors="replace")[-800:]
                code = self.process.returncode
                raise SandboxError(f"Azurite exited with {code}{node_version_note()}: {tail}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise SandboxError(f"Azurite did not listen on port {self.port} within {timeout:.0f} s")

    def set_accounts(self, accounts: dict[str, str]) -> None:
        """Serve exactly `accounts` from the next request on (told to the running Azurite;
        restarted only if it cannot take them live)."""
        accounts = dict(accounts)
        if accounts == self.accounts:
            return
        with self._lock:
            process = self.process
            if self.live and process is not None and process.stdin is not None:
                self._seq += 1
                line = json.dumps({"seq": self._seq, "accounts": _accounts_value(accounts)})
                try:
                    process.stdin.write(line.encode() + b"\n")
                    process.stdin.flush()
                    self._expect(f"accounts {self._seq}", 10.0)
                except (OSError, SandboxError):
                    pass  # the runner is gone or stuck: a restart brings it back
                else:
                    self.accounts = accounts
                    return
        self.restart(accounts)

    def restart(self, accounts: dict[str, str]) -> None:
        """Restart on the same port and data folder with a new set of accounts."""
        self.stop()
        self.accounts = dict(accounts)
        self.start()

    def stop(self) -> None:
        """Stop Azurite (data stays in `location`)."""
        proc, self.process = self.process, None
        if proc is None:
            return
        if proc.stdin is not None:  # EOF: the runner closes the server and exits
            with contextlib.suppress(OSError):
                proc.stdin.close()
        elif proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _listen(process: subprocess.Popen[bytes], said: queue.Queue[str]) -> None:
    """Queue what the runner says (on its stdout) until it exits; "" marks the end."""
    assert process.stdout is not None
    for raw in process.stdout:
        line = raw.decode(errors="replace").strip()
        if line.startswith(_SAYS):
            said.put(line[len(_SAYS) :])
    process.stdout.close()
    said.put("")


def _accounts_value(accounts: dict[str, str]) -> str:
    """AZURITE_ACCOUNTS: `name:key1[:key2]` joined by `;`."""
    return ";".join(f"{name}:{keys}" for name, keys in accounts.items())
