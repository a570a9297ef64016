"""Local state backend: atomic 0600 writes, backups, refusal of bad files, the flock lock."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from batchimage.core.errors import StateError, StateLockedError
from batchimage.core.redact import register_secret
from batchimage.core.refs import ResourceRef
from batchimage.state import (
    SCHEMA_VERSION,
    Journal,
    LockHolder,
    RunRecord,
    State,
    StepRecord,
    StepStatus,
    dump_state,
    utcnow,
)
from batchimage.state.local import LocalStateStore
from tests.engine.procs import start_ready

HOLDER = Path(__file__).with_name("lock_holder.py")


def sample_state(pipeline: str = "demo") -> State:
    return State(
        pipeline=pipeline,
        spec_hash="abc",
        steps={
            "rg": StepRecord(
                kind="create_group",
                status=StepStatus.DONE,
                fingerprint="f1",
                outputs={"id": "/subscriptions/s/resourceGroups/demo"},
                created=[
                    ResourceRef(
                        id="/subscriptions/s/resourceGroups/demo",
                        kind="Microsoft.Resources/resourceGroups",
                        created_by_run="r1",
                    )
                ],
            )
        },
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalStateStore]:
    s = LocalStateStore(tmp_path / ".batchimage" / "state" / "demo.json")
    yield s
    s.unlock()


def test_write_then_read_round_trips_with_mode_0600(store: LocalStateStore) -> None:
    store.lock(LockHolder(command="apply"))
    store.write(sample_state())
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    again = LocalStateStore(store.path).read()
    assert again == sample_state()
    assert json.loads(store.path.read_text())["schema_version"] == SCHEMA_VERSION


def test_no_temp_files_left_and_backup_is_the_pre_run_copy(store: LocalStateStore) -> None:
    store.lock(LockHolder(command="apply"))
    store.write(sample_state())
    store.unlock()
    first = store.path.read_bytes()

    second = LocalStateStore(store.path)
    second.lock(LockHolder(command="apply"))
    state = second.read()
    assert state is not None
    state.spec_hash = "changed"
    second.write(state)
    state.spec_hash = "changed again"
    second.write(state)
    second.unlock()
    # .bak holds the document as it was before this session's first write.
    assert store.backup.read_bytes() == first
    assert stat.S_IMODE(store.backup.stat().st_mode) == 0o600
    leftovers = [p.name for p in store.path.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_write_is_atomic_rename_never_partial(store: LocalStateStore, monkeypatch) -> None:
    store.lock(LockHolder(command="apply"))
    store.write(sample_state())
    before = store.path.read_bytes()

    def failing_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    state = sample_state()
    state.spec_hash = "new"
    with pytest.raises(StateError, match="No space left on device"):
        store.write(state)
    assert store.path.read_bytes() == before
    assert [p for p in store.path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_unchanged_state_is_not_rewritten(store: LocalStateStore) -> None:
    store.lock(LockHolder(command="apply"))
    store.write(sample_state())
    mtime = store.path.stat().st_mtime_ns
    inode = store.path.stat().st_ino
    store.write(sample_state())
    assert (store.path.stat().st_mtime_ns, store.path.stat().st_ino) == (mtime, inode)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b'{"schema_version": 1, "pipeline": "demo", "steps": {"rg": {"kind"', "not valid JSON"),
        (b"\x00\xff garbage \x13", "not valid JSON"),
        (b'["a list"]', "not a batchimage state document"),
        (b'{"schema_version": 1, "steps": {}}', "pipeline"),
    ],
    ids=["empty", "truncated", "garbage", "foreign", "invalid"],
)
def test_unusable_file_refused_with_recovery_and_left_untouched(
    store: LocalStateStore, content: bytes, message: str
) -> None:
    store.path.parent.mkdir(parents=True)
    store.path.write_bytes(content)
    with pytest.raises(StateError, match=message) as info:
        store.read()
    assert ".bak" in str(info.value) and "did not change the file" in str(info.value)
    assert store.path.read_bytes() == content


def test_truncated_real_state_refused(store: LocalStateStore) -> None:
    data = dump_state(sample_state())
    store.path.parent.mkdir(parents=True)
    store.path.write_bytes(data[: len(data) // 2])
    with pytest.raises(StateError, match="unreadable"):
        store.read()
    assert store.path.read_bytes() == data[: len(data) // 2]


def test_newer_version_refused_with_upgrade_message(store: LocalStateStore) -> None:
    store.path.parent.mkdir(parents=True)
    doc = json.loads(dump_state(sample_state()))
    doc["schema_version"] = SCHEMA_VERSION + 1
    raw = json.dumps(doc).encode()
    store.path.write_bytes(raw)
    with pytest.raises(StateError, match="newer batchimage") as info:
        store.read()
    assert "Upgrade batchimage" in str(info.value)
    assert store.path.read_bytes() == raw


def test_secret_in_outputs_is_refused(store: LocalStateStore) -> None:
    state = sample_state()
    state.steps["rg"].outputs = {"url": "https://a.blob.core.windows.net/c/x.vhd?sv=1&sig=abc%3D"}
    store.lock(LockHolder(command="apply"))
    with pytest.raises(StateError, match="SAS signature"):
        store.write(state)
    assert not store.path.exists()


def test_each_save_scans_what_changed_and_what_a_new_secret_touches(
    store: LocalStateStore,
) -> None:
    # Saves skip lines already found clean: a secret in a changed line is still refused,
    # and a value registered as secret later is found in a line that was clean before.
    state = sample_state()
    store.lock(LockHolder(command="apply"))
    state.steps["rg"].outputs = {"name": "group-one-of-a-kind"}
    store.write(state)
    state.steps["rg"].outputs = {"name": "group-one-of-a-kind", "url": "x?sig=abc%3D"}
    with pytest.raises(StateError, match="SAS signature"):
        store.write(state)
    state.steps["rg"].outputs = {"name": "group-one-of-a-kind"}
    store.write(state)
    register_secret("one-of-a-kind")
    with pytest.raises(StateError, match="registered secret"):
        store.write(state)


def test_second_lock_in_process_fails_naming_holder(store: LocalStateStore) -> None:
    store.lock(LockHolder(command="apply", run_id="r1"))
    other = LocalStateStore(store.path)
    with pytest.raises(StateLockedError) as info:
        other.lock(LockHolder(command="apply"))
    assert f"pid {os.getpid()}" in str(info.value)
    assert "`batchimage apply`" in str(info.value)


def _start_holder(path: Path, seconds: float) -> subprocess.Popen[str]:
    return start_ready(HOLDER, str(path), str(seconds))


def test_lock_held_by_other_process_fails_fast_naming_pid(store: LocalStateStore) -> None:
    proc = _start_holder(store.path, 30)
    try:
        with pytest.raises(StateLockedError) as info:
            store.lock(LockHolder(command="apply"))
        assert f"pid {proc.pid}" in str(info.value)
    finally:
        proc.kill()
        proc.wait()


def test_force_unlock_names_live_holder_without_breaking(store: LocalStateStore) -> None:
    proc = _start_holder(store.path, 30)
    try:
        with pytest.raises(StateLockedError, match=f"pid {proc.pid}"):
            store.force_unlock()
    finally:
        proc.kill()
        proc.wait()


def test_stale_lock_of_killed_process_is_taken_over(store: LocalStateStore) -> None:
    proc = _start_holder(store.path, 30)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert store.lock_path.read_text()  # the dead holder's record is still there
    stale = store.lock(LockHolder(command="apply"))
    assert stale is not None and stale.pid == proc.pid and stale.run_id == "holder-run"
    record = json.loads(store.lock_path.read_text())
    assert record["pid"] == os.getpid()


def test_force_unlock_clears_dead_holder_record(store: LocalStateStore) -> None:
    proc = _start_holder(store.path, 30)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    message = store.force_unlock()
    assert f"pid {proc.pid}" in message and "no longer running" in message
    assert store.lock_path.read_text() == ""
    assert store.force_unlock().startswith("no lock")


def test_unlock_releases_for_the_next_run(store: LocalStateStore) -> None:
    store.lock(LockHolder(command="apply"))
    store.unlock()
    other = LocalStateStore(store.path)
    assert other.lock(LockHolder(command="apply")) is None  # clean release: nothing stale
    other.unlock()


def test_removing_the_lock_file_does_not_free_a_held_lock(store: LocalStateStore) -> None:
    proc = _start_holder(store.path, 30)
    try:
        store.lock_path.unlink()  # what a person "unsticking" the state might do
        with pytest.raises(StateLockedError) as info:
            store.lock(LockHolder(command="apply"))
        message = str(info.value)
        assert f"pid {proc.pid}" in message and "`batchimage apply`" in message
        assert "lock file" in message and "was removed" in message
        holder = store.holder()  # status still names it
        assert holder is not None and holder.pid == proc.pid
        with pytest.raises(StateLockedError, match=f"pid {proc.pid}"):
            store.force_unlock()
    finally:
        proc.kill()
        proc.wait()
    # Its process gone, the kernel freed the name: the next run locks at once.
    assert store.lock(LockHolder(command="apply")) is None


def test_a_state_recording_a_live_run_is_refused_even_with_its_lock_free(
    store: LocalStateStore,
) -> None:
    """The holder's pid is checked too: a run the state records as running, whose process
    still runs on this host, keeps the state even if no lock is held (another mount of the
    folder, a lock file removed on a system without the name lock)."""
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        run = RunRecord(run_id="r-live", command="apply", pid=sleeper.pid, started_at=utcnow())
        store.lock(LockHolder(command="seed"))
        store.write(State(pipeline="demo", runs=[run]))
        store.unlock()
        with pytest.raises(StateLockedError) as info:
            Journal.open(store, "demo", lock=LockHolder(command="apply"))
        assert f"pid {sleeper.pid}" in str(info.value) and "run r-live" in str(info.value)
        assert store.holder() is None  # the refused run let go of the lock it had taken
        # A record whose pid now belongs to a younger process is not that run (reused pid).
        older = run.model_copy(update={"started_at": utcnow() - timedelta(hours=1)})
        store.lock(LockHolder(command="seed"))
        store.write(State(pipeline="demo", runs=[older]))
        store.unlock()
        Journal.open(store, "demo", lock=LockHolder(command="apply")).close()
    finally:
        sleeper.kill()
        sleeper.wait()
    # The process gone, the record is a dead run's: the next apply goes ahead.
    store.lock(LockHolder(command="seed"))
    store.write(State(pipeline="demo", runs=[run]))
    store.unlock()
    Journal.open(store, "demo", lock=LockHolder(command="apply")).close()
