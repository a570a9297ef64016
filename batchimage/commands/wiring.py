"""Where a command's state and Azure clients come from: the spec's state backend (local
file, or the blob through the Azure edge), `--sandbox`'s separate state, and the clients
for the spec's cloud (or the local Azure)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from batchimage.commands.options import Options, state_option_path

if TYPE_CHECKING:
    from batchimage.state import StateStore


CLOUD_NAMES = {
    "AzurePublicCloud": "public",
    "AzureUSGovernment": "usgov",
    "AzureChinaCloud": "china",
    "sandbox": "sandbox",
}


def make_store(spec: Any, opts: Options, clients: Callable[[], Any]) -> StateStore:
    """The state store: --state, else the spec's backend; --sandbox keeps a separate one."""
    from batchimage.state.local import LocalStateStore

    if opts.state_path:
        return LocalStateStore(state_option_path(opts.state_path))
    backend = getattr(spec.state, "backend", "local")
    if backend == "local":
        path = Path(spec.state.path)
        return LocalStateStore(sandboxed(path) if opts.sandbox else path)
    return _blob_store(spec, opts, clients)


def sandboxed(path: Path) -> Path:
    """`x/name.json` -> `x/name.sandbox.json`: a rehearsal's state beside the real one."""
    return path.with_name(f"{path.stem}.sandbox{path.suffix or '.json'}")


def _blob_store(spec: Any, opts: Options, clients: Callable[[], Any]) -> StateStore:
    """The blob backend: the Azure edge finds the spec's storage account and opens the
    blob (`batchimage.azure.state_store`); --sandbox keeps a separate blob."""
    from batchimage.azure.state_store import blob_in_account
    from batchimage.state.blob import BlobStateStore

    cfg = spec.state
    blob = cfg.blob or f"{spec.name}.json"
    if opts.sandbox:
        blob = sandboxed(Path(blob)).as_posix()
    found = blob_in_account(
        clients(),
        account=cfg.storage_account,
        group=cfg.resource_group or spec.resource_group,
        container=cfg.container,
        blob=blob,
        auth=cfg.auth,
    )
    return BlobStateStore(found, lease_s=cfg.lease_s)


def make_clients(
    spec: Any,
    sandbox: bool,
    say: Callable[[str], None] | None = None,
    hook: Callable[[Any], None] | None = None,
    snapshot: bool = False,
) -> Any:
    """The Azure clients for the spec's cloud (or, rehearsing, the sandbox with the spec's
    existing prerequisites made there), with bounded SDK retry; `say` hears what takes
    time meanwhile (starting the local Azure); `hook` sees every request before it leaves
    (a `CallGate`'s); `snapshot`: each URL read once (`batchimage.azure.snapshot`: for a
    command that writes nothing; not when rehearsing, which makes prerequisites)."""
    from batchimage.azure.clients import AzureClients
    from batchimage.azure.errors import SDK_RETRY
    from batchimage.core.redact import register_secret

    kwargs = {**SDK_RETRY, **({"raw_request_hook": hook} if hook is not None else {})}
    if sandbox:
        from batchimage.rehearsal import rehearsal_clients

        return rehearsal_clients(spec, say=say, **kwargs)
    profile = cloud_profile(spec, sandbox, say)
    register_secret(profile.client_secret)
    from batchimage.azure.snapshot import Snapshot

    reads = Snapshot() if snapshot else None
    return AzureClients(profile, spec.subscription, snapshot=reads, **kwargs)


def cloud_profile(spec: Any, sandbox: bool, say: Callable[[str], None] | None = None) -> Any:
    """The cloud profile for `spec.cloud`, or the sandbox's for --sandbox."""
    from batchimage.azure import cloud

    name = spec.cloud
    if sandbox or name == "sandbox":
        from batchimage.sandbox_client import ensure_running

        return cloud.sandbox(ensure_running(say=say))
    if isinstance(name, str):
        return cloud.resolve(CLOUD_NAMES.get(name, name))
    return cloud.custom(
        str(name.arm_endpoint),
        str(name.authority_host or cloud.PUBLIC.authority_host),
        audience=name.arm_audience,
        ca_bundle=str(name.ca_bundle) if name.ca_bundle else None,
        storage_suffix=name.storage_suffix or "core.windows.net",
        batch_scope=f"{name.batch_resource.rstrip('/')}//.default"
        if name.batch_resource
        else cloud.BATCH_SCOPE,
    )
