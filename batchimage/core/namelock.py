"""A lock on a name that no file deletion can bypass: an abstract Unix socket (Linux).

    lock = NameLock("state:/home/ana/.batchimage/state/demo.json", holder_json)
    other = lock.acquire()     # None: held by us now; else the holder's record (JSON) or ""
    ...
    lock.release()

The socket lives in the kernel's abstract namespace, bound to a name derived from the
key: no file stands for it, so nothing on disk can be removed to free it, and the kernel
frees it when the holder dies (even by SIGKILL). While held, a thread answers whoever
connects with the holder's record (pid, host, user, command, start), so a second run can
name the first; the holder's pid is also read from the connection (SO_PEERCRED).

Abstract sockets exist only on Linux, and are shared by the processes of one network
namespace (one machine, or one container); elsewhere `acquire` always succeeds and the
state's own lock (a kernel flock, a blob lease) stands alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import struct
import sys
import threading

from batchimage.core import threads

SUPPORTED = sys.platform.startswith("linux")
_PREFIX = b"\0batchimage-lock/"
_ASK_TIMEOUT_S = 2.0


class NameLock:
    """A lock on `key`, held by this process between `acquire` and `release`."""

    def __init__(self, key: str, record: str = "") -> None:
        self.key = key
        self.record = record
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def acquire(self) -> str | None:
        """Take the lock: None when taken; else what the holder says about itself ("" if
        it does not answer) - see `ask`."""
        if self._sock is not None or not SUPPORTED:
            return None
        for _ in range(3):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.bind(address(self.key))
                break
            except OSError:
                sock.close()
            said = ask(self.key)
            if said is not None:
                return said
        else:  # freed and taken again in turn: someone holds it
            return ""
        sock.listen(8)
        self._sock = sock
        self._thread = threads.start(self._answer, args=(sock,), name="batchimage-name-lock")
        return None

    def release(self) -> None:
        """Free the name (idempotent)."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)  # wakes the answering thread's accept()
        sock.close()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None

    def _answer(self, sock: socket.socket) -> None:
        data = self.record.encode()
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return  # released
            with conn, contextlib.suppress(OSError):
                conn.settimeout(_ASK_TIMEOUT_S)
                conn.sendall(data)


def address(key: str) -> bytes:
    """The abstract socket name for `key` (a hash: keys may be long or hold any text)."""
    return _PREFIX + hashlib.sha256(key.encode()).hexdigest()[:48].encode()


def ask(key: str) -> str | None:
    """What the holder of `key` says about itself; None when nobody holds it. A holder that
    does not answer in time is named by its pid alone: `{"pid": N}`."""
    if not SUPPORTED:
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(_ASK_TIMEOUT_S)
    try:
        conn.connect(address(key))
    except (ConnectionRefusedError, FileNotFoundError):
        conn.close()
        return None
    except OSError:
        conn.close()
        return ""
    with conn:
        pid = _peer_pid(conn)
        chunks: list[bytes] = []
        with contextlib.suppress(OSError):
            while chunk := conn.recv(65536):
                chunks.append(chunk)
    said = b"".join(chunks).decode(errors="replace").strip()
    if said:
        return said
    return f'{{"pid": {pid}}}' if pid else ""


def _peer_pid(conn: socket.socket) -> int:
    try:
        raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except (OSError, AttributeError):
        return 0
    pid, _uid, _gid = struct.unpack("3i", raw)
    return int(pid)
