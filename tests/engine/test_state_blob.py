"""Blob state backend against a real Azurite: lease lock, renewal, expiry, conditions."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import ContainerClient

from batchimage.azure.state_store import AzureBlob, AzureLease
from batchimage.core.errors import StateError, StateLockedError
from batchimage.state import LockHolder, State, StepRecord, StepStatus
from batchimage.state.blob import BlobStateStore
from tests.conftest import AzuriteAccount
from tests.engine.procs import start_ready

HOLDER = Path(__file__).with_name("blob_lock_holder.py")


@pytest.fixture
def container(azurite: AzuriteAccount) -> Iterator[ContainerClient]:
    client = ContainerClient(
        azurite.blob_endpoint,
        f"state-{uuid.uuid4().hex[:12]}",
        credential=azurite.credential,
        connection_verify=azurite.ca_bundle,
    )
    yield client
    client.delete_container()


def store_in(container: ContainerClient, blob: str, **lease: Any) -> BlobStateStore:
    """The blob backend over `blob` of `container` (as the commands build it)."""
    return BlobStateStore(AzureBlob(container, blob), **lease)


def state(spec_hash: str) -> State:
    return State(
        pipeline="demo",
        spec_hash=spec_hash,
        steps={"rg": StepRecord(kind="create_group", status=StepStatus.DONE, fingerprint="f")},
    )


def start_holder(
    azurite: AzuriteAccount, container: ContainerClient, blob: str, lease_s: int
) -> subprocess.Popen[str]:
    args = [azurite.blob_endpoint, azurite.name, azurite.key, azurite.ca_bundle]
    args += [container.container_name, blob, str(lease_s), "60"]
    return start_ready(HOLDER, *args)


def test_round_trip_and_backup(container: ContainerClient) -> None:
    store = store_in(container, "demo.json")
    assert store.lock(LockHolder(command="apply")) is None
    assert store.read() is None  # created empty on first lock
    store.write(state("one"))
    store.unlock()

    second = store_in(container, "demo.json")
    second.lock(LockHolder(command="apply"))
    loaded = second.read()
    assert loaded == state("one")
    second.write(state("two"))
    second.unlock()
    assert store_in(container, "demo.json").read() == state("two")
    backup = container.get_blob_client("demo.json.bak").download_blob().readall()
    assert State.model_validate_json(backup) == state("one")


def test_second_lock_fails_fast_naming_holder(container: ContainerClient) -> None:
    first = store_in(container, "demo.json")
    first.lock(LockHolder(command="apply", run_id="r1"))
    try:
        started = time.monotonic()
        with pytest.raises(StateLockedError) as info:
            store_in(container, "demo.json").lock(LockHolder(command="apply"))
        assert time.monotonic() - started < 30  # not the lease's 60 s
        assert f"pid {os.getpid()}" in str(info.value)
        assert "`batchimage apply`" in str(info.value)
    finally:
        first.unlock()
    # released cleanly: the next run takes it and sees no stale holder
    nxt = store_in(container, "demo.json")
    assert nxt.lock(LockHolder(command="apply")) is None
    nxt.unlock()


def test_write_without_lease_is_refused_by_the_service(container: ContainerClient) -> None:
    first = store_in(container, "demo.json")
    first.lock(LockHolder(command="apply"))
    first.write(state("mine"))
    # Someone breaks the lease and a second run takes the lock and writes.
    assert "broke the lease" in store_in(container, "demo.json").force_unlock(force=True)
    second = store_in(container, "demo.json")
    second.lock(LockHolder(command="apply"))
    second.read()
    second.write(state("theirs"))
    with pytest.raises(StateError, match="another run took the lock"):
        first.write(state("stale writer"))
    second.unlock()
    first.unlock()
    assert store_in(container, "demo.json").read() == state("theirs")


def test_write_conditioned_on_etag(container: ContainerClient) -> None:
    store = store_in(container, "demo.json")
    store.lock(LockHolder(command="apply"))
    store.write(state("one"))
    # The same lease id used behind the store's back changes the blob: ETag moves on.
    assert isinstance(store._lease, AzureLease)
    blob = container.get_blob_client("demo.json")
    blob.upload_blob(b"{}", overwrite=True, lease=store._lease.client)
    with pytest.raises(StateError, match="ConditionNotMet"):
        store.write(state("two"))
    store.unlock()


def test_force_unlock_breaks_a_crashed_runs_lease(
    azurite: AzuriteAccount, container: ContainerClient
) -> None:
    proc = start_holder(azurite, container, "demo.json", 60)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = store_in(container, "demo.json")
    with pytest.raises(StateLockedError, match=f"pid {proc.pid}"):
        store.lock(LockHolder(command="apply"))
    message = store.force_unlock()
    assert f"pid {proc.pid}" in message
    stale = store.lock(LockHolder(command="apply"))
    assert stale is not None and stale.run_id == "blob-holder-run"
    store.unlock()
    assert store_in(container, "demo.json").force_unlock().startswith("no lock")


def test_force_unlock_refuses_a_live_holder_unless_forced(
    azurite: AzuriteAccount, container: ContainerClient
) -> None:
    proc = start_holder(azurite, container, "demo.json", 60)
    try:
        store = store_in(container, "demo.json")
        with pytest.raises(StateLockedError, match=f"pid {proc.pid} .*which is still running"):
            store.force_unlock()
        blob = container.get_blob_client("demo.json")
        assert blob.get_blob_properties().lease.state == "leased"  # untouched
        message = store.force_unlock(force=True)
        assert message.startswith("broke the lease") and f"pid {proc.pid}" in message
        assert blob.get_blob_properties().lease.state == "broken"
    finally:
        proc.kill()
        proc.wait()


def held_then_broken(
    container: ContainerClient,
) -> tuple[BlobStateStore, list[str], threading.Event]:
    """A store holding the lock (renewing often, saying when it loses it), written once,
    whose lease is then broken: the store, what it was told, and when."""
    lost: list[str] = []
    told = threading.Event()
    holder = store_in(container, "demo.json", lease_s=15, renew_every_s=0.2)
    holder.on_lost(lambda message: (lost.append(message), told.set()))
    holder.lock(LockHolder(command="apply", run_id="holder"))
    holder.write(state("before"))
    store_in(container, "demo.json").force_unlock(force=True)
    return holder, lost, told


def test_a_lost_lease_is_told_at_once_and_the_last_write_saves_progress(
    container: ContainerClient,
) -> None:
    holder, lost, told = held_then_broken(container)
    assert told.wait(30), "the renewing thread never noticed the broken lease"
    assert "lost the lock on state" in lost[0] and "it was broken" in lost[0]
    # Nobody holds the state now: the stopped run's last write lands, on its ETag alone.
    holder.write(state("progress"))
    holder.unlock()
    assert store_in(container, "demo.json").read() == state("progress")


def test_a_lost_lease_taken_by_another_run_keeps_the_stopped_runs_write_out(
    container: ContainerClient,
) -> None:
    holder, lost, told = held_then_broken(container)
    taker = store_in(container, "demo.json")
    taker.lock(LockHolder(command="apply", run_id="taker"))
    assert told.wait(30)
    assert "lost the lock on state" in lost[0]  # broken, or held by the taker: as it was seen
    with pytest.raises(StateError, match="could not save its last progress"):
        holder.write(state("late"))
    holder.unlock()
    assert taker.read() == state("before")
    taker.unlock()


def test_lease_is_renewed_while_held_and_expires_after_a_crash(
    azurite: AzuriteAccount, container: ContainerClient
) -> None:
    alive = store_in(container, "alive.json", lease_s=15, renew_every_s=2)
    alive.lock(LockHolder(command="apply", run_id="alive"))
    crashed = start_holder(azurite, container, "crashed.json", 15)
    crashed.send_signal(signal.SIGKILL)
    crashed.wait()
    try:
        with pytest.raises(StateLockedError):
            store_in(container, "crashed.json").lock(LockHolder(command="apply"))
        time.sleep(17)
        # The live run renewed: its lock still holds past the lease duration.
        assert alive.renewals >= 5
        with pytest.raises(StateLockedError, match=f"pid {os.getpid()}"):
            store_in(container, "alive.json").lock(LockHolder(command="apply"))
        alive.write(state("still mine"))
        # The crashed run's lease expired by itself: the next run takes over.
        taker = store_in(container, "crashed.json")
        stale = taker.lock(LockHolder(command="apply"))
        assert stale is not None and stale.pid == crashed.pid
        taker.unlock()
    finally:
        alive.unlock()


def test_corrupt_blob_refused_and_untouched(container: ContainerClient) -> None:
    container.create_container()
    container.upload_blob("demo.json", b"{not json")
    store = store_in(container, "demo.json")
    store.lock(LockHolder(command="apply"))
    try:
        with pytest.raises(StateError, match="not valid JSON"):
            store.read()
    finally:
        store.unlock()
    assert container.get_blob_client("demo.json").download_blob().readall() == b"{not json"
