"""`batchimage sandbox serve | status | env | reset` as real subprocesses, and the plain
script of docs/sandbox.md run against `sandbox env` exports."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from batchimage.azure.clients import AzureClients
from batchimage.azure.cloud import sandbox as sandbox_profile
from batchimage.sandbox.connection import read_connection

DOC = Path(__file__).resolve().parents[2] / "docs" / "sandbox.md"


def cli(*args: str, folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batchimage", "sandbox", *args, "--folder", str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def doc_script() -> str:
    text = DOC.read_text()
    marker = text.index("<!-- example: plain-script -->")
    block = re.search(r"```python\n(.*?)```", text[marker:], re.S)
    assert block is not None
    return block.group(1)


@pytest.fixture
def served(tmp_path: Path) -> object:
    folder = tmp_path / "sb"
    env = {**os.environ, "BATCHIMAGE_SANDBOX_TIME_SCALE": "0.001"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "batchimage", "sandbox", "serve", "--folder", str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first.startswith("sandbox serving at https://127.0.0.1:"), first
    yield folder, proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_not_running(tmp_path: Path) -> None:
    status = cli("status", folder=tmp_path)
    assert status.returncode == 1 and "not running" in status.stdout
    env = cli("env", folder=tmp_path)
    assert env.returncode == 1 and env.stderr.startswith("error: the sandbox is not running")


def test_serve_status_env_reset(served: tuple[Path, subprocess.Popen[str]], tmp_path: Path) -> None:
    folder, proc = served
    again = cli("serve", folder=folder)
    assert again.returncode == 75 and "already serves" in again.stderr
    alone = subprocess.run(  # the sandbox's own entry point, without the tool, says the same
        [sys.executable, "-m", "batchimage.sandbox", "--folder", str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert alone.returncode == 75 and "already serves" in alone.stderr

    status = cli("status", folder=folder)
    assert status.returncode == 0 and status.stdout.startswith(f"running: pid {proc.pid}")
    as_json = json.loads(cli("status", "--json", folder=folder).stdout)
    assert as_json["running"] is True and "client_secret" not in as_json

    exports = cli("env", folder=folder)
    assert exports.returncode == 0
    names = re.findall(r"^export (\w+)=", exports.stdout, re.M)
    assert {
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_AUTHORITY_HOST",
        "AZURE_SUBSCRIPTION_ID",
        "BATCHIMAGE_ARM_ENDPOINT",
        "REQUESTS_CA_BUNDLE",
        "SSL_CERT_FILE",
    } <= set(names)

    script = tmp_path / "example.py"
    script.write_text(doc_script())
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "REQUESTS_", "SSL_"))
    }
    exports_cmd = f"{sys.executable} -m batchimage sandbox env --folder {folder}"
    shell = f'eval "$({exports_cmd})" && {sys.executable} {script}'
    ran = subprocess.run(
        ["bash", "-c", shell], capture_output=True, text=True, env=clean, timeout=120, check=False
    )
    assert ran.returncode == 0, ran.stderr
    conn = read_connection(folder)
    assert conn is not None
    assert "group sandbox-rg eastus" in ran.stdout
    assert "blob hello from the sandbox" in ran.stdout
    assert f"batch {conn.batch_endpoint('sandboxbatch')} user subscription mode: True" in ran.stdout

    clients = AzureClients(sandbox_profile(conn))
    clients.resource.resource_groups.create_or_update("before-reset", {"location": "eastus"})
    reset = cli("reset", folder=folder)
    assert reset.returncode == 0 and "sandbox reset (still serving" in reset.stdout
    assert clients.resource.resource_groups.check_existence("before-reset") is False
    assert clients.resource.resource_groups.check_existence("sandbox-rg") is True
    key = (
        clients.storage.storage_accounts.list_keys("sandbox-rg", "sandboxstore")
        .keys_property[0]
        .value
    )
    blobs = clients.blob_service(
        conn.blob_endpoint("sandboxstore"), {"account_name": "sandboxstore", "account_key": key}
    )
    assert [c.name for c in blobs.list_containers()] == []  # reset wiped the blobs too

    proc.send_signal(signal.SIGINT)  # Ctrl-C
    assert proc.wait(timeout=30) == 0
    assert cli("status", folder=folder).returncode == 1
    offline = cli("reset", folder=folder)
    assert offline.returncode == 0 and not (folder / "state.json").exists()


def test_serve_refuses_a_config_value_of_the_wrong_kind(tmp_path: Path) -> None:
    """A config file's bad value: exit 1 naming the file and the setting, no traceback,
    nothing started (the good part of the same mapping parses: retry_after's null)."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"retry_after": {"vm.create": [10, None], "vm.delete": ["x"]}}))
    done = cli("serve", folder=tmp_path)
    assert done.returncode == 1
    assert f"{config}: retry_after: could not convert string to float: 'x'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "connection.json").exists()


def test_config_retry_after_takes_seconds_and_nulls(tmp_path: Path) -> None:
    from batchimage.sandbox.config import load_config

    (tmp_path / "config.json").write_text(json.dumps({"retry_after": {"vm.create": [10, None]}}))
    config = load_config(tmp_path, env={})
    assert config.retry_after_of("vm.create") == [10.0, None]
    assert config.retry_after_of("network.create") == [3.0, 10.0]  # the recorded default
    assert config.retry_after_of("vm.start") == [None]  # nothing recorded: no header
