"""A harness for image pipeline tests: example specs rewritten with unique names into a
temporary folder, run in-process through the real engine and SDK clients against the
sandbox, plus white-box reads of what the sandbox holds (the OS disk manifest of an image).

    spec = pipeline.spec("quickstart.yaml")            # a Path; names made unique
    result = pipeline.apply(spec)                      # RunResult; raises on failure
    writes = pipeline.writes(lambda: pipeline.apply(spec))   # ARM writes the call made
    content = pipeline.image_content(version_id)       # manifest, deprovisioned, extensions
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from batchimage.azure.clients import AzureClients
from batchimage.azure.cloud import CloudProfile
from batchimage.azure.errors import AZURE, SDK_RETRY
from batchimage.core.retry import RetryPolicy
from batchimage.engine.coordinator import Engine
from batchimage.engine.result import Change, RunResult, new_run_id
from batchimage.sandbox.admin import SandboxAdmin
from batchimage.sandbox.connection import Connection
from batchimage.spec import load_spec
from batchimage.state import Journal, LockHolder, State
from batchimage.state.local import LocalStateStore
from batchimage.steps.base import RunContext
from batchimage.steps.pipeline import IMAGE_STAGES, STAGES, build_steps
from batchimage.ui import CollectSink

REPO = Path(__file__).resolve().parents[2]
SPECS = REPO / "specs"
FAST_RETRY = RetryPolicy(max_attempts=4, initial_delay_s=0.05, max_delay_s=0.2)
# A fault rule that makes the sandbox a cloud without managed run commands.
NO_MANAGED_RUN_COMMANDS = {
    "kind": "status",
    "method": "PUT",
    "path": "/runCommands/",
    "status": 400,
    "code": "InvalidResourceType",
    "message": "The resource type 'virtualMachines/runCommands' could not be found.",
}
_counter = itertools.count(1)


class Harness:
    """Specs, runs and sandbox reads for one test."""

    def __init__(self, tmp: Path, cloud: CloudProfile, admin: SandboxAdmin, conn: Connection):
        self.tmp = tmp
        self.cloud = cloud
        self.admin = admin
        self.conn = conn
        self.events = CollectSink()
        shutil.copytree(SPECS / "files", tmp / "files")
        self.clients = AzureClients(cloud, **SDK_RETRY)

    # -- specs ---------------------------------------------------------------------------

    def spec(
        self,
        example: str,
        edit: Callable[[dict[str, Any]], None] | None = None,
        *,
        name: str | None = None,
    ) -> Path:
        """`specs/<example>` with a unique pipeline name and gallery, edited by `edit`."""
        data = yaml.safe_load((SPECS / example).read_text())
        data = {k: v for k, v in data.items() if not k.startswith("x-")}
        n = next(_counter)
        data["name"] = name or f"{data['name'][:24]}-t{n}"
        data["image"]["capture"]["gallery"]["gallery"] = f"g_{data['name'].replace('-', '_')}"
        data["state"] = {"path": str(self.tmp / "state" / f"{data['name']}.json")}
        if edit is not None:
            edit(data)
        path = self.tmp / f"{data['name']}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    # -- runs ----------------------------------------------------------------------------

    def _engine(
        self, path: Path, journal: Journal, *, all_stages: bool = False, refresh: bool = False
    ) -> Engine:
        """The engine over the spec's image stages (`all_stages`: every stage); `refresh`:
        as `--refresh-base` (resolve a Marketplace `latest` afresh)."""
        spec = load_spec(path)
        steps = build_steps(spec, STAGES if all_stages else IMAGE_STAGES)
        ctx = RunContext(
            pipeline=spec.name,
            run_id=new_run_id(),
            events=self.events,
            state=journal.state,
            clients_factory=lambda: AzureClients(self.cloud, spec.subscription, **SDK_RETRY),
            refresh_base=refresh,
        )
        return Engine(steps, ctx, journal, retry=FAST_RETRY, failures=AZURE)

    def store(self, path: Path) -> LocalStateStore:
        spec = load_spec(path)
        return LocalStateStore(Path(spec.state.path))

    def apply(self, path: Path, *, target: str | None = None, refresh: bool = False) -> RunResult:
        """Apply the image stages of the spec at `path` (raises BatchImageError on failure);
        `refresh`: as `apply --refresh-base`."""
        spec = load_spec(path)
        journal = Journal.open(self.store(path), spec.name, lock=LockHolder(command="apply"))
        try:
            return self._engine(path, journal, refresh=refresh).apply(target=target)
        finally:
            journal.close()

    def plan(self, path: Path, *, refresh: bool = False) -> list[Change]:
        """What apply would do (read-only); `refresh`: as `plan --refresh-base`."""
        return self.planner(path, refresh=refresh).plan()

    def planner(self, path: Path, *, refresh: bool = False) -> Engine:
        """An engine for a read-only plan of the spec at `path` (its steps can be asked
        what they saw after `plan()`)."""
        spec = load_spec(path)
        journal = Journal.open(self.store(path), spec.name, lock=None)
        return self._engine(path, journal, refresh=refresh)

    def destroy(self, path: Path) -> RunResult:
        spec = load_spec(path)
        journal = Journal.open(self.store(path), spec.name, lock=LockHolder(command="destroy"))
        try:
            return self._engine(path, journal).destroy()
        finally:
            journal.close()

    def state(self, path: Path) -> State:
        found = self.store(path).read()
        assert found is not None
        return found

    def outputs(self, path: Path, key: str) -> dict[str, Any]:
        record = self.state(path).steps[key]
        assert record.outputs is not None, f"{key} has no outputs"
        return record.outputs

    def writes(self, action: Callable[[], Any]) -> int:
        """How many ARM/Batch write calls `action()` made (the sandbox's counters)."""
        self.admin.reset_counters()
        action()
        return int(self.admin.counters()["writes"])

    # -- the sandbox's side --------------------------------------------------------------

    def tables(self) -> dict[str, Any]:
        tables: dict[str, Any] = self.admin.state()["tables"]
        return tables

    def resource(self, resource_id: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self.tables()["resources"].get(resource_id.lower())
        return found

    def image_content(self, resource_id: str) -> dict[str, Any]:
        """What is on an image's disk (white-box): manifest, deprovisioned, extensions."""
        tables = self.tables()
        record = tables["resources"][resource_id.lower()]
        content: dict[str, Any] = tables["compute_content"][record["_content"]]
        return content

    def build_resources(self, group: str, pipeline: str) -> list[str]:
        """Names of resources in `group` named like `pipeline`'s build (`<pipeline>-<hash>-*`)."""
        items = self.clients.resource.resources.list_by_resource_group(group)
        return sorted(str(i.name) for i in items if str(i.name).startswith(f"{pipeline}-"))

    def blob_exists(self, url: str) -> bool:
        """Whether the blob at `url` (an account the sandbox serves) exists."""
        from batchimage.azure.blobs import account_for_url, blob_service, split_blob_url

        account = account_for_url(self.clients, url)
        if account is None:
            return False
        container, name = split_blob_url(account, url)
        return bool(blob_service(self.clients, account).get_blob_client(container, name).exists())


def preflight_command(spec: Path, sandbox_folder: Path) -> subprocess.CompletedProcess[str]:
    """`batchimage preflight SPEC` as a subprocess against the sandbox in `sandbox_folder`."""
    from tests import forkserver
    from tests.engine.procs import child_env

    env = child_env(BATCHIMAGE_SANDBOX_DIR=str(sandbox_folder))
    return forkserver.run(["preflight", str(spec)], cwd=REPO, env=env, timeout=120)
