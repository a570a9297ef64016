"""Bytecode for batchimage, compiled once before the tests (so each of the suite's hundreds
of `batchimage` child processes loads it instead of compiling every module, as it would
under PYTHONDONTWRITEBYTECODE). Shared fixtures: a TLS certificate authority and a real
Azurite blob service; and, for every test, a temporary XDG_STATE_HOME, so a sandbox
started by the default folder rule never uses the developer's own
(~/.local/state/batchimage/sandbox).

Every sandbox the tests start (in this process or in a child) answers only the error codes
registered in docs/azure-behaviours.md (`batchimage.sandbox.register`).
"""

from __future__ import annotations

import base64
import compileall
import hashlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from batchimage.sandbox import register
from batchimage.sandbox.azurite import Azurite

REPO = Path(__file__).resolve().parents[1]
REGISTER = REPO / "docs" / "azure-behaviours.md"
os.environ.setdefault(register.ENV, str(REGISTER))


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the controller, before any worker starts
        compileall.compile_dir(REPO / "batchimage", quiet=1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files marked `long` first (in their order), so no worker starts one last."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


@dataclass(frozen=True)
class AzuriteAccount:
    """One storage account served by the test Azurite."""

    name: str
    key: str
    blob_endpoint: str
    ca_bundle: str

    @property
    def credential(self) -> dict[str, str]:
        return {"account_name": self.name, "account_key": self.key}


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """Workers for `-n auto`: two per core (at most 8). A worker spends about half its time
    waiting on child processes and the sandbox's clock, which a second worker per core fills."""
    return max(2, min(2 * (os.cpu_count() or 1), 8))


@pytest.fixture(autouse=True)
def no_poller_left() -> Iterator[None]:
    """A test leaves no SDK polling thread behind: one that polls an operation nobody waits
    for keeps a worker and its sandbox busy for the rest of the session. A poller whose
    operation has ended gets a moment to see it; one still polling after that fails the test."""
    before = set(threading.enumerate())
    yield
    left = [t for t in threading.enumerate() if t not in before and t.name.startswith("LROPoller")]
    for thread in left:
        thread.join(POLLER_GRACE_S)
    still = [t.name for t in left if t.is_alive()]
    assert not still, f"SDK pollers still polling after the test: {still}"


POLLER_GRACE_S = 30.0  # a poller that saw its operation end stops at its next poll


@pytest.fixture(scope="session", autouse=True)
def state_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """XDG_STATE_HOME for the session (children inherit it): the default sandbox folder is
    `<it>/batchimage/sandbox`."""
    home = tmp_path_factory.mktemp("state-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_STATE_HOME", str(home))
        yield home


@pytest.fixture(scope="session")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding ca.pem and a cert.pem/key.pem pair for 127.0.0.1, signed by that CA."""
    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    cert.private_key_pem.write_to_path(str(folder / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
    return folder


@pytest.fixture(scope="session")
def azurite_service(tmp_path_factory: pytest.TempPathFactory, tls_dir: Path) -> Iterator[Azurite]:
    """A real Azurite (HTTPS) with accounts `testacct1` and `testacct2`, for the session."""
    accounts = {
        name: base64.b64encode(hashlib.sha512(name.encode()).digest()).decode()
        for name in ("testacct1", "testacct2")
    }
    service = Azurite(
        location=tmp_path_factory.mktemp("azurite"),
        accounts=accounts,
        cert=tls_dir / "cert.pem",
        key=tls_dir / "key.pem",
    )
    service.start()
    yield service
    service.stop()


@pytest.fixture
def azurite(azurite_service: Azurite, tls_dir: Path) -> AzuriteAccount:
    """Account `testacct1` on the session's Azurite."""
    name = "testacct1"
    return AzuriteAccount(
        name=name,
        key=azurite_service.accounts[name],
        blob_endpoint=azurite_service.blob_endpoint(name),
        ca_bundle=str(tls_dir / "ca.pem"),
    )
