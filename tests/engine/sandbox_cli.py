"""Run `batchimage` as a real subprocess against a sandbox folder, in a CI-like
environment that does not depend on the developer's: a global REQUESTS_CA_BUNDLE /
SSL_CERT_FILE that does not trust the sandbox's CA (as CI machines set), and no
BATCHIMAGE_* settings but the sandbox folder."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import certifi

from tests import forkserver
from tests.engine.procs import child_env
from tests.forkserver import Forked


def ci_env(sandbox_folder: Path) -> dict[str, str]:
    """The environment for a CLI child talking to the sandbox in `sandbox_folder`."""
    env = {k: v for k, v in child_env().items() if not k.startswith("BATCHIMAGE_")}
    env.update(
        BATCHIMAGE_SANDBOX_DIR=str(sandbox_folder),
        REQUESTS_CA_BUNDLE=certifi.where(),
        SSL_CERT_FILE=certifi.where(),
    )
    return env


def cli(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`batchimage args...` run to completion as its own process (stdin closed, output
    captured), forked from the worker's warm interpreter (`tests.forkserver`)."""
    return forkserver.run(list(args), cwd=cwd, env=env, timeout=120)


def spawn(cwd: Path, env: dict[str, str], stderr: IO[bytes], *args: str) -> Forked:
    """`batchimage args...` started in the background as its own process (stdout dropped,
    stderr to a file), forked as `cli`'s."""
    return forkserver.forked(list(args), cwd=cwd, env=env, stderr=stderr)


def events(log: Path) -> list[dict[str, Any]]:
    """The JSON progress events a run wrote before it ended (a torn last line is dropped)."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def blob_state(account: str, **settings: Any) -> Callable[[dict[str, Any]], None]:
    """A spec edit that keeps the state in a blob of `account` (container `pipelines`)."""

    def edit(data: dict[str, Any]) -> None:
        data["state"] = {
            "backend": "azure_blob",
            "storage_account": account,
            "container": "pipelines",
            **settings,
        }

    return edit


def start_json(cwd: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """`batchimage args... --log-format json` in the background, its output piped (text)."""
    return start(cwd, env, *args, "--log-format", "json")


def start(cwd: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """`batchimage args...` in the background, stdin closed, its output piped (text)."""
    return subprocess.Popen(
        [sys.executable, "-m", "batchimage", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
