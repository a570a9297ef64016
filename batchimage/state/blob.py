"""Blob state backend: the JSON document in a block blob, locked by a finite lease.

The lease is finite (60 s by default) and a background thread renews it every third of
that, so a run that crashes loses its lock by itself within a minute (an infinite lease
would need a manual break). Every write carries the lease id and the ETag last seen, so
a writer that lost its lease, or a document changed behind its back, is refused by the
service instead of overwriting. The holder's pid/host/user/start time live in the blob's
metadata so a second run can name it.

`force_unlock` breaks the lease only when its holder is gone (a process on this host that
no longer runs), or when forced. The renewing thread notices a lost lease at its next
renewal and tells the run (`on_lost`), which stops calling Azure at once; its last write
goes without the lease, on the last ETag, so it saves progress only if nobody else has
taken the state meanwhile.

This module holds the protocol only, against a `LeasedBlob` it is given: the Azure edge
(`batchimage.azure.state_store`) implements it with the storage SDK, owning the clients,
the account key and the lease, and raises `BlobFailure` (and its kinds) for what the
service refused; this module maps those to StateError / StateLockedError.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable

from batchimage.core import threads
from batchimage.core.errors import StateError, StateLockedError
from batchimage.core.leased_blob import (
    BlobFailure,
    BlobMissing,
    Lease,
    LeasedBlob,
    LeaseGone,
    LeaseTaken,
    WriteRefused,
)
from batchimage.core.liveness import ProcessState, process_state
from batchimage.core.ownership import Marks
from batchimage.state import LockHolder, State, dump_state, parse_state

MIN_LEASE_S = 15
MAX_LEASE_S = 60


class BlobStateStore:
    """State in a `LeasedBlob`; see the module docstring for the lease protocol."""

    def __init__(
        self,
        blob: LeasedBlob,
        *,
        lease_s: int = MAX_LEASE_S,
        renew_every_s: float | None = None,
    ) -> None:
        if not MIN_LEASE_S <= lease_s <= MAX_LEASE_S:
            raise ValueError(f"lease_s must be {MIN_LEASE_S}..{MAX_LEASE_S}, got {lease_s}")
        self.blob = blob
        self.where = blob.where
        self.lease_s = lease_s
        self.renew_every_s = renew_every_s if renew_every_s is not None else lease_s / 3
        self._lease: Lease | None = None
        self._etag: str | None = None
        self._loaded: bytes | None = None
        self._last_written: bytes | None = None
        self._backed_up = False
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self._lost: str | None = None
        self._holder_json = ""
        self._lost_callback: Callable[[str], None] | None = None
        self.renewals = 0

    # -- lock ---------------------------------------------------------------------------

    def lock(self, holder: LockHolder) -> LockHolder | None:
        """Acquire the lease (creating container and empty blob if missing) and start renewing."""
        if self._lease is not None:
            return None
        try:
            self.blob.create()
            try:
                lease = self.blob.acquire(self.lease_s)
            except LeaseTaken:
                current = self._holder()
                who = current.describe() if current else "another run"
                raise StateLockedError(
                    f"state {self.where} is locked by {who}. Wait for it to finish; a run "
                    f"that died loses the lock within {self.lease_s} s, or run "
                    "`batchimage force-unlock SPEC` if you are sure it is gone."
                ) from None
            stale = self._holder()
            self._holder_json = holder.model_dump_json()
            self._etag = self.blob.set_metadata({Marks.Blob.LOCK_HOLDER: self._holder_json}, lease)
        except BlobFailure as exc:
            raise _state_error(f"cannot lock state {self.where}", exc) from exc
        self._lease = lease
        self._lost = None
        self._stop.clear()
        self._renewer = threads.start(self._renew_loop, name="batchimage-lease-renewer")
        return stale

    def unlock(self) -> None:
        """Stop renewing, clear the holder record and release the lease."""
        lease, self._lease = self._lease, None
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
            self._renewer = None
        if lease is None:
            return
        try:
            self.blob.set_metadata({}, lease)
            lease.release()
        except BlobFailure:
            pass  # the lease expires by itself within lease_s

    def force_unlock(self, *, force: bool = False) -> str:
        """Break the lease of a run that is gone and report whose it was; a holder that may
        be alive is refused (StateLockedError) unless `force`."""
        try:
            info = self.blob.info()
        except BlobMissing:
            return f"no state blob at {self.where}"
        except BlobFailure as exc:
            raise _state_error(f"cannot read state {self.where}", exc) from exc
        if not info.leased:
            return f"no lock on {self.where}"
        holder = _holder_from(info.metadata)
        who = holder.describe() if holder else "an unknown run"
        alive = holder_state(holder)
        if alive != "gone" and not force:
            raise StateLockedError(
                f"not breaking the lease on {self.where}: it is held by {who}, "
                + (
                    "which is still running. Stop that process first; "
                    if alive == "alive"
                    else "which renewed it less than "
                    f"{self.lease_s} s ago, so it is probably running. "
                )
                + f"a run that dies loses its lease within {self.lease_s} s by itself. "
                "To break it anyway (that run then stops at once, saving what it can), run "
                "force-unlock again with --force."
            )
        try:
            self.blob.break_lease()
        except BlobFailure as exc:
            raise _state_error(f"cannot break the lease on {self.where}", exc) from exc
        if alive == "gone":
            return f"broke the lease on {self.where} held by {who}, which is no longer running"
        return f"broke the lease on {self.where} held by {who}"

    def holder(self) -> LockHolder | None:
        """Who holds the lease now (None when the blob is not leased)."""
        try:
            info = self.blob.info()
        except BlobMissing:
            return None
        except BlobFailure as exc:
            raise _state_error(f"cannot read state {self.where}", exc) from exc
        if not info.leased:
            return None
        return _holder_from(info.metadata) or LockHolder(pid=0, host="unknown", user="unknown")

    def _holder(self) -> LockHolder | None:
        return _holder_from(self.blob.info().metadata)

    def on_lost(self, callback: Callable[[str], None] | None) -> None:
        """Call `callback(message)` (from the renewing thread) the moment the lease is lost."""
        self._lost_callback = callback

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.renew_every_s):
            lease = self._lease
            if lease is None:
                return
            try:
                lease.renew()
                self.renewals += 1
            except LeaseGone as exc:
                # A lost lease is final: writes will refuse.
                self._lose(exc.code or "")
                return
            except BlobFailure:
                # A transient failure is retried at the next tick; the lease still has
                # two thirds of its time.
                pass

    def _lose(self, code: str) -> None:
        """The lease is gone: say who has the state now, and tell the run at once."""
        taker = None
        with contextlib.suppress(BlobFailure):
            taker = self._holder()
        if taker is not None and taker.model_dump_json() != self._holder_json:
            by = f"{taker.describe()} holds it now"
        else:
            by = "it was broken (batchimage force-unlock --force)"
        self._lost = f"lost the lock on state {self.where} ({code}): {by}"
        callback = self._lost_callback
        if callback is not None:
            callback(self._lost)

    # -- read / write -------------------------------------------------------------------

    def read(self) -> State | None:
        """The stored state; None for a missing or empty blob; StateError if unusable."""
        try:
            data, etag = self.blob.download()
        except BlobMissing:
            return None
        except BlobFailure as exc:
            raise _state_error(f"cannot read state {self.where}", exc) from exc
        self._etag = etag
        self._last_written = data
        if not data:
            return None
        state = parse_state(data, where=self.where, backup=self.blob.backup_where)
        self._loaded = data
        return state

    def write(self, state: State) -> None:
        """Upload under the lease and the last ETag; keep the pre-run copy as `<blob>.bak`.

        After the lease was lost, one more write is tried without it, still on the last
        ETag: the service takes it only if nobody changed the document and no other run
        holds a lease, so a stopped run saves its progress without overwriting anyone.
        """
        if self._lease is None and not self._lost:
            raise StateError(f"state {self.where} is not locked by this run; cannot write it")
        data = dump_state(state)
        if data == self._last_written:
            return
        lease = None if self._lost else self._lease
        try:
            if not self._backed_up and self._loaded and lease is not None:
                self.blob.upload_backup(self._loaded)
            self._backed_up = True
            etag = self.blob.upload(data, lease=lease, etag=self._etag, metadata=self._metadata())
        except BlobFailure as exc:
            if self._lost:
                raise StateError(
                    f"{self._lost}; this run stopped, and could not save its last progress "
                    f"({exc.code or exc.kind}): the run holding the state now "
                    "finds what this one made by its names and tags"
                ) from exc
            raise _state_error(f"cannot write state {self.where}", exc) from exc
        self._etag = etag
        self._last_written = data

    def _metadata(self) -> dict[str, str]:
        """upload replaces metadata: carry the holder record over (none once lost)."""
        return (
            {Marks.Blob.LOCK_HOLDER: self._holder_json}
            if self._holder_json and not self._lost
            else {}
        )


def holder_state(holder: LockHolder | None) -> ProcessState:
    """Whether the run that holds a lease still runs: "unknown" unless it is on this host."""
    if holder is None:
        return "unknown"
    return process_state(holder.pid, holder.host, holder.started_at)


def _holder_from(metadata: dict[str, str] | None) -> LockHolder | None:
    raw = (metadata or {}).get(Marks.Blob.LOCK_HOLDER)
    if not raw:
        return None
    try:
        return LockHolder.model_validate(json.loads(raw))
    except ValueError:
        return None


def _state_error(what: str, exc: BlobFailure) -> StateError:
    if isinstance(exc, WriteRefused):
        return StateError(
            f"{what}: {exc.code}: another run took the lock or changed the state. This run "
            "stopped writing; check `batchimage status SPEC` and run apply again."
        )
    detail = f"{exc.code}: " if exc.code else ""
    return StateError(f"{what}: {detail}{exc}" + (f" (HTTP {exc.status})" if exc.status else ""))
