"""Find, install and run Azurite (Microsoft's storage emulator, npm `azurite`) for blobs.

Azurite is found, in order, at `$BATCHIMAGE_AZURITE` (path to `azurite-blob`), on PATH, or
in the cache folder (`$BATCHIMAGE_CACHE`, default `~/.cache/batchimage/azurite`), where it
is installed with npm when missing (saying so on stderr).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from batchimage.errors import SandboxError

AZURITE_VERSION = "3.37.0"


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


def find_azurite(install: bool = True) -> Path:
    """Path of the `azurite-blob` executable; installs it with npm into the cache if allowed."""
    explicit = os.environ.get("BATCHIMAGE_AZURITE")
    if explicit:
        if Path(explicit).exists():
            return Path(explicit)
        raise SandboxError(f"BATCHIMAGE_AZURITE points at {explicit}, which does not exist")
    on_path = shutil.which("azurite-blob")
    if on_path:
        return Path(on_path)
    target = cache_dir()
    cached = target / "node_modules" / ".bin" / "azurite-blob"
    if cached.exists():
        return cached
    cmd = install_command(target)
    if not install or shutil.which("npm") is None:
        raise SandboxError(
            "Azurite (the storage emulator) is not installed; install it with:\n  " + " ".join(cmd)
        )
    print(f"installing Azurite {AZURITE_VERSION} into {target} (one time)...", file=sys.stderr)
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not cached.exists():
        raise SandboxError(
            f"installing Azurite failed (exit {done.returncode}): {done.stderr.strip()[-800:]}\n"
            f"run it yourself: {' '.join(cmd)}"
        )
    return cached


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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

    @property
    def endpoint_root(self) -> str:
        """`https://127.0.0.1:<port>`; an account's blob endpoint is this plus `/<account>/`."""
        return f"https://127.0.0.1:{self.port}"

    def blob_endpoint(self, account: str) -> str:
        """The primary blob endpoint Azurite serves for `account` (path style)."""
        return f"{self.endpoint_root}/{account}/"

    def start(self, timeout: float = 30.0) -> None:
        """Start Azurite and wait until it accepts connections."""
        binary = find_azurite()
        self.location.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        env = dict(os.environ)
        env["AZURITE_ACCOUNTS"] = ";".join(f"{n}:{k}" for n, k in self.accounts.items())
        ca = self.cert.parent / "ca.pem"
        if ca.exists():  # copy-from-URL (e.g. of a disk export SAS) makes Azurite call itself
            env["NODE_EXTRA_CA_CERTS"] = str(ca)
        cmd = [
            str(binary),
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
        log = open(self.location / "azurite.log", "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = (self.location / "azurite.log").read_text(errors="replace")[-800:]
                raise SandboxError(f"Azurite exited with {self.process.returncode}: {tail}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise SandboxError(f"Azurite did not listen on port {self.port} within {timeout:.0f} s")

    def restart(self, accounts: dict[str, str]) -> None:
        """Restart on the same port and data folder with a new set of accounts."""
        self.stop()
        self.accounts = dict(accounts)
        self.start()

    def stop(self) -> None:
        """Stop Azurite (data stays in `location`)."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
