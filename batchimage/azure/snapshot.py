"""One read of each URL per `plan`: a transport that answers a GET or HEAD it has seen
before (same URL, same Authorization header) with the answer it got then, so every spec
of a `plan` command, and every step and preflight check within a spec, reads one
consistent snapshot of Azure instead of asking again (a Batch account read six times per
spec, the same gallery, quota and Marketplace reads for each of 20 specs).

    reads = Snapshot()
    transport = SnapshotTransport(reads, session=session, session_owner=False)

Only what cannot change what the command sees is kept: answers 200 and 404 to GET and
HEAD requests read whole (not streamed). Anything else (a 429, a 5xx, a write) goes to
Azure every time. Concurrent misses of one URL send one request, the others wait for it.
A command that writes (`apply`, `destroy`) never uses it: it must see its own writes.
"""

from __future__ import annotations

import copy
import hashlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from azure.core.pipeline.transport import RequestsTransport

T = TypeVar("T")
KEPT_STATUS = (200, 404)
Key = tuple[str, str, str]


class Snapshot:
    """The answers kept, by (method, URL, identity); thread-safe, one request per key at a
    time."""

    def __init__(self) -> None:
        self._answers: dict[Key, Any] = {}
        self._locks: dict[Key, threading.Lock] = {}
        self._lock = threading.Lock()
        self._parsed: dict[str, Any] = {}
        self.sent = 0  # requests that went to Azure
        self.answered = 0  # requests answered from the snapshot

    def lock_for(self, key: Key) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(key, threading.Lock())

    def answer(self, key: Key, fetch: Callable[[], Any]) -> tuple[Any, bool]:
        """The answer kept for `key` and True, or `fetch()`'s (kept if 200 or 404) and False."""
        with self.lock_for(key):
            kept = self._answers.get(key)
            if kept is None:
                response = fetch()
                with self._lock:
                    self.sent += 1
                if response.status_code in KEPT_STATUS:
                    self._answers[key] = response
                return response, False
        with self._lock:
            self.answered += 1
        return kept, True

    def remember(self, key: str, fn: Callable[[], T]) -> T:
        """`fn()` once per `key` for every reader of the snapshot: a read already parsed
        (e.g. a Batch account's pools) is as shareable as its answers; a failure is not
        kept. What it returns is shared: readers must not change it."""
        with self.lock_for(("parsed", key, "")):
            if key not in self._parsed:
                self._parsed[key] = fn()
            value: T = self._parsed[key]
            return value


def key_of(request: Any) -> Key:
    """What makes two requests the same read: method, URL and who asks (the Authorization
    header, hashed; a shared-key signature differs from one request to the next, so such
    reads are seldom answered from the snapshot)."""
    auth = str(request.headers.get("Authorization", ""))
    return request.method, str(request.url), hashlib.sha256(auth.encode()).hexdigest()[:16]


class SnapshotTransport(RequestsTransport):
    """A `RequestsTransport` that answers repeated whole GETs and HEADs from `reads`."""

    def __init__(self, reads: Snapshot, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reads = reads

    def send(self, request: Any, **kwargs: Any) -> Any:
        if request.method not in ("GET", "HEAD") or kwargs.get("stream"):
            return super().send(request, **kwargs)
        response, kept = self.reads.answer(
            key_of(request), lambda: super(SnapshotTransport, self).send(request, **kwargs)
        )
        if not kept:
            return response
        answer = copy.copy(response)  # the kept answer, for this request
        answer.request = request
        return answer
