"""The blob state backend through the real commands: ARM listKeys -> Azurite, via the sandbox."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from batchimage.commands.options import Options
from batchimage.commands.wiring import make_clients, make_store
from batchimage.core.errors import StateError
from batchimage.sandbox.connection import Connection
from batchimage.spec import load_spec
from batchimage.state import LockHolder, State
from batchimage.state.blob import BlobStateStore
from tests import forkserver
from tests.engine.procs import REPO, child_env

pytestmark = pytest.mark.long  # 20 s or more: scheduled first

STATE_BLOCK = """
state:
  backend: azure_blob
  storage_account: {account}
  container: pipelines
"""


@pytest.fixture
def spec(tmp_path: Path, sandbox: Connection) -> Path:
    folder = tmp_path / "specs"
    shutil.copytree(REPO / "specs", folder)
    path = folder / "blobstate.yaml"
    text = (folder / "quickstart.yaml").read_text().replace("name: quickstart", "name: blobstate")
    path.write_text(text + STATE_BLOCK.format(account=sandbox.storage_account))
    return path


def cli(sandbox_folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = child_env(BATCHIMAGE_SANDBOX_DIR=str(sandbox_folder))
    return forkserver.run(list(args), cwd=REPO, env=env, timeout=120)


def test_apply_and_status_keep_state_in_the_blob(spec: Path, sandbox_folder: Path) -> None:
    applied = cli(sandbox_folder, "apply", str(spec), "--yes")
    assert applied.returncode == 0, applied.stderr
    status = cli(sandbox_folder, "status", str(spec), "--format", "json")
    doc = json.loads(status.stdout)
    assert doc["state"].endswith("/pipelines/blobstate.json")
    assert [r["result"] for r in doc["runs"]] == ["ok"] and doc["locked_by"] is None

    rehearsal = json.loads(
        cli(sandbox_folder, "status", str(spec), "--sandbox", "--format", "json").stdout
    )
    assert rehearsal["state"].endswith("/pipelines/blobstate.sandbox.json")
    assert rehearsal["runs"] == []


def test_a_held_lease_locks_out_apply_until_force_unlock(
    spec: Path,
    sandbox_folder: Path,
) -> None:
    os.environ["BATCHIMAGE_SANDBOX_DIR"] = str(sandbox_folder)
    try:
        loaded = load_spec(spec)
        opts = Options(spec_file=str(spec))
        store = make_store(loaded, opts, lambda: make_clients(loaded, False))
    finally:
        del os.environ["BATCHIMAGE_SANDBOX_DIR"]
    assert isinstance(store, BlobStateStore)
    store.lock(LockHolder(command="apply", run_id="holder"))
    store.write(State(pipeline="blobstate"))

    locked = cli(sandbox_folder, "apply", str(spec), "--yes")
    assert locked.returncode == 3
    assert f"locked by `batchimage apply` (pid {os.getpid()}" in locked.stderr

    status = cli(sandbox_folder, "status", str(spec))
    assert f"locked by `batchimage apply` (pid {os.getpid()}" in status.stdout
    # The holder (this process) is alive: force-unlock refuses unless forced.
    refused = cli(sandbox_folder, "force-unlock", str(spec), "--yes")
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert "still running" in refused.stderr
    broke = cli(sandbox_folder, "force-unlock", str(spec), "--yes", "--force")
    assert broke.returncode == 0, broke.stderr
    assert "broke the lease" in broke.stdout
    assert "warning: breaking the lock" in broke.stderr

    again = cli(sandbox_folder, "apply", str(spec), "--yes")
    assert again.returncode == 0, again.stderr
    with pytest.raises(StateError, match=r"another run took the lock|could not save"):
        store.write(State(pipeline="blobstate", spec_hash="late"))
    store.unlock()


def test_verbose_request_log_redacts_keys_and_tokens(
    spec: Path,
    sandbox_folder: Path,
    sandbox: Connection,
) -> None:
    from batchimage.azure.clients import AzureClients
    from batchimage.azure.cloud import sandbox as sandbox_profile

    clients = AzureClients(sandbox_profile(sandbox))
    group, account = sandbox.resource_group, sandbox.storage_account
    keys = clients.storage.storage_accounts.list_keys(group, account).keys_property or []
    result = cli(sandbox_folder, "status", str(spec), "-v")
    assert result.returncode == 0, result.stderr
    assert "Request URL" in result.stderr  # the SDK's request log is on
    assert "listKeys" in result.stderr
    for secret in [k.value for k in keys] + [sandbox.client_secret]:
        assert secret and secret not in result.stderr
    assert "eyJ" not in result.stderr  # no bearer token (JWT) in any form
