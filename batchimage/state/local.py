"""Local state backend: a JSON file written atomically, mode 0600, locked with flock.

Files beside the state (`<name>.json`):
- `<name>.json.bak`  the state as it was before this run's first write (previous good copy);
- `<name>.json.lock` holds a kernel `flock` while a run owns the state, and the holder's
  pid/host/user/start time as JSON so a second run can name it. The kernel drops the lock
  when the holder dies, so a dead run's lock is taken over at once (and reported); the
  file is never deleted (deleting a lock file races with a waiting opener).

A lock file can still be deleted by hand. So the holder also takes a name lock keyed on
the state's real path (`batchimage.core.namelock`: an abstract socket on Linux, which no file
stands for): a second run refused by it names the holder, whatever became of the file.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from batchimage.core.errors import StateError, StateLockedError
from batchimage.core.namelock import NameLock, ask
from batchimage.state import LockHolder, State, dump_state, parse_state


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically: temp file (0600), fsync, rename, fsync the folder."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


class NotRegularFile(OSError):
    """A state or lock path that is a named pipe, device, socket or folder."""


def open_regular(path: Path, flags: int, mode: int = 0o600) -> int:
    """A descriptor of `path`, opened without blocking (a named pipe would wait for a
    writer); NotRegularFile, the descriptor closed, unless it is a regular file."""
    fd = os.open(path, flags | os.O_NONBLOCK | os.O_NOCTTY, mode)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotRegularFile(errno.EINVAL, "not a regular file", str(path))
    return fd


def read_regular(path: Path) -> bytes:
    """The bytes of the regular file `path` (NotRegularFile for anything else)."""
    fd = open_regular(path, os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStateStore:
    """State in a local file; see the module docstring for the files it keeps."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.backup = self.path.with_name(self.path.name + ".bak")
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.where = str(self.path)
        self._lock_fd: int | None = None
        self._name_lock: NameLock | None = None
        self._loaded: bytes | None = None  # the bytes read (a known-good copy) for the backup
        self._backed_up = False
        self._last_written: bytes | None = None

    # -- lock ---------------------------------------------------------------------------

    def lock(self, holder: LockHolder) -> LockHolder | None:
        """Take the flock and the state's name lock, or raise StateLockedError naming the
        live holder."""
        if self._lock_fd is not None:
            return None
        self._ensure_folder()
        fd = self._flock()
        name_lock = NameLock(f"state:{os.path.realpath(self.path)}", holder.model_dump_json())
        said = name_lock.acquire()
        if said is not None:  # the lock file was removed under a live run: it still runs
            os.close(fd)
            current = _holder_from_text(said)
            raise StateLockedError(
                f"state {self.where} is in use by {_who(current)}, although its lock file "
                f"{self.lock_path} was removed. Wait for it to finish; if that process is "
                f"stuck, stop it (kill {current.pid if current else 'PID'}) and run apply again."
            )
        stale = _read_holder(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.model_dump_json().encode(), 0)
        os.fsync(fd)
        self._lock_fd = fd
        self._name_lock = name_lock
        return stale

    def _flock(self) -> int:
        """The lock file, opened and flocked (the file at the path once locked, should a
        deleter race with us); StateLockedError naming a live holder."""
        while True:
            try:
                fd = open_regular(self.lock_path, os.O_RDWR | os.O_CREAT)
            except NotRegularFile:
                raise self._not_regular(self.lock_path) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                current = _read_holder(fd)
                os.close(fd)
                raise StateLockedError(
                    f"state {self.where} is locked by {_who(current)}. Wait for it to finish; "
                    f"if that process is stuck, stop it (kill {current.pid if current else 'PID'}) "
                    "and run apply again."
                ) from None
            try:
                if os.stat(self.lock_path).st_ino == os.fstat(fd).st_ino:
                    return fd
            except FileNotFoundError:
                pass
            os.close(fd)  # removed or replaced while we locked it: lock the one there now

    def unlock(self) -> None:
        """Clear the holder record and drop the flock."""
        fd, self._lock_fd = self._lock_fd, None
        name_lock, self._name_lock = self._name_lock, None
        if name_lock is not None:
            name_lock.release()
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def force_unlock(self, *, force: bool = False) -> str:
        """Clear a lock record left by a dead run; a live holder is named, not broken (a
        kernel lock cannot be, `force` or not)."""
        if not self.lock_path.exists():
            return f"no lock on {self.where}"
        probe = LocalStateStore(self.path)
        try:
            stale = probe.lock(LockHolder(command="force-unlock"))
        finally:
            probe.unlock()
        if stale is None:
            return f"no lock on {self.where}"
        return f"cleared the lock left by {stale.describe()}, which is no longer running"

    def on_lost(self, callback: Callable[[str], None] | None) -> None:
        """A kernel lock is never lost while its process lives: nothing to call."""

    def holder(self) -> LockHolder | None:
        """The live holder of the lock, or None when it is free (a dead run's record is not);
        a run whose lock file was removed is still found (by the name lock)."""
        if self._lock_fd is not None:
            return _read_holder(self._lock_fd)
        try:
            fd = open_regular(self.lock_path, os.O_RDONLY)
        except FileNotFoundError:
            return self._name_holder()
        except NotRegularFile:
            raise self._not_regular(self.lock_path) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(fd)
        finally:
            os.close(fd)
        return self._name_holder()

    def _name_holder(self) -> LockHolder | None:
        said = ask(f"state:{os.path.realpath(self.path)}")
        if said is None:
            return None
        return _holder_from_text(said) or LockHolder(pid=0, user="unknown")

    # -- read / write -------------------------------------------------------------------

    def read(self) -> State | None:
        """The stored state, None if there is no file; StateError if it cannot be used."""
        try:
            data = read_regular(self.path)
        except FileNotFoundError:
            return None
        except NotRegularFile:
            raise self._not_regular(self.path) from None
        except OSError as exc:
            raise StateError(f"cannot read state {self.where}: {exc.strerror}") from exc
        state = parse_state(data, where=self.where, backup=str(self.backup))
        self._loaded = data
        self._last_written = data
        return state

    def write(self, state: State) -> None:
        """Write atomically (0600); before the first write of a session keep a `.bak` copy."""
        data = dump_state(state)
        if data == self._last_written:
            return
        self._ensure_folder()
        try:
            if not self._backed_up and self._loaded is not None:
                write_atomic(self.backup, self._loaded)
            self._backed_up = True
            write_atomic(self.path, data)
        except OSError as exc:
            raise StateError(
                f"cannot write state {self.where}: {exc.strerror}. The last good state is "
                "still in place; fix the problem (disk full? permissions?) and run apply again."
            ) from exc
        self._last_written = data

    def _not_regular(self, path: Path) -> StateError:
        return StateError(
            f"{path} is not a regular file (a named pipe, device, socket or folder): point "
            "state.path or --state at a regular file, or move it aside. batchimage did not "
            "change it."
        )

    def _ensure_folder(self) -> None:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(f"cannot create state folder {self.path.parent}: {exc}") from exc


def _read_holder(fd: int) -> LockHolder | None:
    return _holder_from_text(os.pread(fd, 65536, 0).decode(errors="replace"))


def _holder_from_text(data: str) -> LockHolder | None:
    """A holder record (JSON) as the lock file or the name lock gives it; None if unusable."""
    if not data.strip():
        return None
    with contextlib.suppress(ValidationError, ValueError):
        return LockHolder.model_validate_json(data)
    return None


def _who(holder: LockHolder | None) -> str:
    return holder.describe() if holder else "another process"
