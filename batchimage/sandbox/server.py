"""Run a sandbox: TLS, identity, store, services, Azurite and the HTTPS server, and the
connection file that tells clients where it all is.

`SandboxServer(folder).run()` serves in the foreground (what `batchimage sandbox serve`
does); `start_in_thread()` / `stop()` run it in a background thread (benchmarks, tools).
"""

from __future__ import annotations

import importlib
import json
import os
import secrets
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from batchimage.sandbox import lro, seed
from batchimage.sandbox.app import SandboxApp, build_router
from batchimage.sandbox.azurite import Azurite, free_port
from batchimage.sandbox.clock import Clock
from batchimage.sandbox.config import SandboxConfig, load_config
from batchimage.sandbox.connection import Connection, read_connection, write_connection
from batchimage.sandbox.context import Identity, World
from batchimage.sandbox.errors import SandboxError
from batchimage.sandbox.faults import FaultInjector
from batchimage.sandbox.owners import Owners
from batchimage.sandbox.requestlog import RequestLog
from batchimage.sandbox.store import Store
from batchimage.sandbox.tls import ensure_tls

# Azurite needs one account to start; a fresh world's storage accounts replace it.
PLACEHOLDER_ACCOUNT = {
    "devstoreaccount1": "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/"
    "K1SZFPTOtr/KBHBeksoGMGw=="
}


def blob_accounts(world: World) -> dict[str, str]:
    """Storage accounts Azurite must serve: name -> "key1:key2" (kept by the storage service)."""
    return dict(world.store.table("blob_accounts"))


def load_identity(folder: Path) -> Identity:
    """The sandbox's tenant, subscription and service principal (made on first start)."""
    path = folder / "identity.json"
    if path.exists():
        data = json.loads(path.read_text())
    else:
        data = {
            "tenant_id": seed.TENANT_ID,
            "subscription_id": seed.SUBSCRIPTION_ID,
            "client_id": seed.CLIENT_ID,
            "client_secret": secrets.token_urlsafe(32),
            "signing_key": secrets.token_urlsafe(32),
            "location": seed.LOCATION,
        }
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=2)
    return Identity(**data)


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        if not port:
            raise
        sock.bind(("127.0.0.1", 0))
    # accepted sockets inherit TCP_NODELAY; without it every answer waits ~40 ms for the
    # client's delayed ACK (headers and body are separate writes)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _port_free(port: int) -> bool:
    if not port:
        return False
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class SandboxServer:
    """One sandbox serving `folder` (state, TLS, identity, Azurite data, connection file)."""

    def __init__(
        self, folder: Path, port: int = 0, config: SandboxConfig | None = None, azurite: bool = True
    ) -> None:
        self.folder = folder.resolve()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config = config or load_config(self.folder)
        self.use_azurite = azurite
        previous = read_connection(self.folder) if port == 0 else None
        self.port = port or (previous.port if previous else 0)  # _bind falls back to any port
        prev_az = previous.azurite_port if previous else 0
        self.azurite_port = prev_az if _port_free(prev_az) else 0
        self.tls = ensure_tls(self.folder)
        self.identity = load_identity(self.folder)
        self.store = Store(self.folder / "state.json")
        offset = float(self.store.meta().get("clock_offset", 0.0))
        self.world = World(
            store=self.store,
            clock=Clock(self.config.time_scale, offset),
            config=self.config,
            identity=self.identity,
            faults=FaultInjector(self.config.faults, self.config.seed),
            log=RequestLog(),
        )
        self.azurite: Azurite | None = None
        self.server: Any = None
        self.thread: threading.Thread | None = None
        self.connection: Connection | None = None
        self.on_ready: Callable[[Connection], None] | None = None
        self.failure: SandboxError | None = None  # why Azurite could not start (run() raises it)

    # -- parts -------------------------------------------------------------------------

    def _start_azurite(self) -> None:
        if not self.use_azurite:
            return
        port = self.azurite_port or free_port()
        self.azurite = Azurite(
            location=self.folder / "azurite",
            accounts=blob_accounts(self.world) or dict(PLACEHOLDER_ACCOUNT),
            cert=self.tls.cert,
            key=self.tls.key,
            port=port,
        )
        # While Azurite starts: the blob client a guest's download uses, so the first one
        # (a run command's end) does not pay for the import on the operation's time.
        threading.Thread(
            target=importlib.import_module, args=("azure.storage.blob",), daemon=True
        ).start()
        self.azurite.start()

    def _sync_azurite(self, world: World) -> None:
        """Give Azurite the storage accounts (and keys) the world has now; this runs inside
        the request that changed them, so the change is served before that call returns."""
        wanted = blob_accounts(world)
        if self.azurite is None or not wanted:
            return
        for name in self.azurite.accounts.keys() - wanted.keys() - PLACEHOLDER_ACCOUNT.keys():
            self._empty_account(name)
        self.azurite.set_accounts(wanted)

    def _empty_account(self, name: str) -> None:
        """Delete the containers of a deleted storage account, as Azure deletes its data (a
        new account of the same name starts empty)."""
        from azure.core.exceptions import AzureError
        from azure.storage.blob import BlobServiceClient

        assert self.azurite is not None
        key = self.azurite.accounts[name].split(":")[0]
        service = BlobServiceClient(
            self.azurite.blob_endpoint(name),
            credential={"account_name": name, "account_key": key},
            connection_verify=str(self.tls.ca),
            retry_total=1,
        )
        try:
            for container in service.list_containers():
                service.delete_container(container.name)
        except AzureError as exc:  # the account is deleted anyway; its old blobs linger
            print(f"sandbox: emptying deleted account {name} in Azurite: {exc}", file=sys.stderr)

    def _wipe_azurite(self, world: World) -> None:
        """On reset: Azurite starts again with an empty data folder and the seeded accounts."""
        if self.azurite is None:
            return
        self.azurite.stop()
        shutil.rmtree(self.azurite.location, ignore_errors=True)
        self.azurite.accounts = blob_accounts(world) or dict(PLACEHOLDER_ACCOUNT)
        self.azurite.start()

    def _prepare(self) -> SandboxApp:
        from batchimage.sandbox.services import load_services

        self.sock = _bind(self.port)
        self.port = self.sock.getsockname()[1]
        self.world.base_url = f"https://127.0.0.1:{self.port}"
        if self.use_azurite:
            self.azurite_port = self.azurite_port or free_port()
        self.world.blob_root = f"https://127.0.0.1:{self.azurite_port}"
        for service in load_services():
            if service.start is not None:
                service.start(self.world)
        with self.store.transaction():
            if not self.store.meta().get("seeded"):
                seed.seed_world(self.world)
        self.world.on_change.append(self._sync_azurite)
        self.world.on_reset.append(self._wipe_azurite)
        return SandboxApp(self.world, build_router())

    def _connection(self) -> Connection:
        base = self.world.base_url
        return Connection(
            folder=str(self.folder),
            pid=os.getpid(),
            port=self.port,
            arm_endpoint=base,
            authority_host=base,
            token_endpoint=f"{base}/{self.identity.tenant_id}/oauth2/v2.0/token",
            tenant_id=self.identity.tenant_id,
            client_id=self.identity.client_id,
            client_secret=self.identity.client_secret,
            subscription_id=self.identity.subscription_id,
            location=self.identity.location,
            resource_group=seed.RESOURCE_GROUP,
            storage_account=seed.STORAGE_ACCOUNT,
            batch_account=seed.BATCH_ACCOUNT,
            ca_bundle=str(self.tls.ca),
            blob_endpoint_root=self.world.blob_root,
            batch_endpoint_root=f"127.0.0.1:{self.port}/batch",
            azurite_port=self.azurite_port,
            polling_interval=min(
                1.0, max(lro.MIN_REAL_INTERVAL, self.world.clock.real(self.config.poll_interval))
            ),
            cloud=self.config.cloud,
            time_scale=self.config.time_scale,
        )

    def _uvicorn(self, app: SandboxApp) -> Any:
        import uvicorn

        class Server(uvicorn.Server):
            def handle_exit(self, sig: int, frame: Any) -> None:
                """Stop serving on SIGINT/SIGTERM without re-raising the signal afterwards
                (uvicorn's default), so `run()` can still stop Azurite and save state."""
                if self.should_exit and sig == signal.SIGINT:
                    self.force_exit = True
                self.should_exit = True

        config = uvicorn.Config(
            app,
            ssl_certfile=str(self.tls.cert),
            ssl_keyfile=str(self.tls.key),
            log_level="critical",
            lifespan="off",
            access_log=False,
            timeout_keep_alive=30,
            timeout_graceful_shutdown=1,
        )
        return Server(config)

    # -- lifecycle ---------------------------------------------------------------------

    def run(self, exit_with: int = 0) -> None:
        """Serve in the foreground until interrupted (SIGINT/SIGTERM), or, started for a
        caller (`exit_with`: its pid), until neither it nor any process that reused the
        sandbox runs (even if killed). Raises SandboxError when Azurite could not start."""
        app = self._prepare()
        azurite = threading.Thread(target=self._start_azurite_noting, daemon=True)
        azurite.start()
        self.server = self._uvicorn(app)
        announcer = threading.Thread(target=self._announce, args=(azurite,), daemon=True)
        announcer.start()
        if exit_with:
            self.world.owners = Owners(exit_with)
            threading.Thread(target=self._watch, args=(self.world.owners,), daemon=True).start()
        try:
            self.server.run(sockets=[self.sock])
        finally:
            self._shutdown()
        if self.failure is not None:
            raise self.failure

    def _start_azurite_noting(self) -> None:
        """Start Azurite; a failure is kept in `failure` (the server then stops)."""
        try:
            self._start_azurite()
        except (SandboxError, OSError) as exc:
            failure = exc if isinstance(exc, SandboxError) else None
            self.failure = failure or SandboxError(f"Azurite could not start: {exc}")

    def _watch(self, owners: Owners) -> None:
        """Stop serving once no owner runs any more."""
        while not self.server.should_exit:
            if not owners.keep():
                self.server.should_exit = True
                return
            owners.wait(0.5)

    def _announce(self, azurite: threading.Thread) -> None:
        """Write the connection file once the server listens and Azurite is up."""
        while not self.server.started and not self.server.should_exit:
            time.sleep(0.01)
        azurite.join()
        if self.failure is not None or (
            self.use_azurite and (self.azurite is None or self.azurite.process is None)
        ):
            self.server.should_exit = True
            return
        self.connection = self._connection()
        write_connection(self.folder, self.connection)
        if self.on_ready is not None:
            self.on_ready(self.connection)

    def start_in_thread(self, timeout: float = 30.0) -> Connection:
        """Serve from a background thread; returns once the connection file is written."""
        app = self._prepare()
        self._start_azurite()
        self.server = self._uvicorn(app)
        self.server.install_signal_handlers = lambda: None
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                self.stop()
                raise SandboxError("the sandbox server did not start")
            time.sleep(0.01)
        self.connection = self._connection()
        write_connection(self.folder, self.connection)
        return self.connection

    def stop(self) -> None:
        """Stop the server thread (if any) and Azurite; mark the connection stopped."""
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)
        self._shutdown()

    def _shutdown(self) -> None:
        if self.azurite is not None:
            self.azurite.stop()
            self.azurite = None
        if self.store._dirty:
            self.store.save()
        current = read_connection(self.folder)
        if current is not None and current.pid == os.getpid():
            write_connection(self.folder, replace(current, pid=0))
