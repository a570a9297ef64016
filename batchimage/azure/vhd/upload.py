"""Upload a fixed VHD as a page blob: sparse, parallel, resumable, verified.

    find_uploaded(path_or_info, blob_client) -> UploadResult | None     read-only check
    find_touched(path_or_info, blob_client) -> UploadResult | None      same, other mtime
    upload_vhd(path_or_info, blob_client, workers=8, progress=callback) -> UploadResult

- Only non-zero 512-byte pages are sent (see `scan`), in up to 4 MiB Put Page requests
  run by `workers` threads; memory is (workers + 6) x 4 MiB buffers whatever the file size
  (4 of them for the blocks read ahead of planning, see `joins`).
- Neighbouring runs of data are joined across a zero gap when sending the gap's zeros
  costs less time than one more request, as measured on this upload's own puts (`costs`:
  fixed time per request against throughput), with the zero bytes so sent bounded by
  `zero_bound` x the data bytes (`joins`).
  The puts go straight over http.client with the blob client's credential (`direct`), falling
  back to the SDK's `upload_page` for any put that does not succeed that way.
- The blob's metadata records the source file (size, mtime, sampled hash: `Fingerprint`),
  the range layout and the status. A re-run continues an `uploading` blob of the same file
  without re-sending the pages it already holds (read back with list_page_ranges); a blob
  of a changed file is started over; a `complete` blob of the same file is not touched
  (with `readback`, only if its content still gives the recorded digest). When only the
  file's mtime changed (copied, touched), its digest is recomputed: if it is the blob's, only
  the recorded mtime is updated (one metadata write, no upload).
- Verified: the sparse XXH3-128 (`digest`) is computed while reading and stored in the
  metadata; after the last write, the blob's page ranges must be exactly the ranges this
  file needs (lost or misplaced writes fail); HTTPS protects each request's bytes
  (Content-MD5 is added per request on plain-HTTP endpoints, or when asked); `readback`
  additionally recomputes the digest from the blob's content.
- `progress` is called on the calling thread about every 0.1 s and at the end; an
  exception it raises stops the upload cleanly (in-flight requests finish, nothing else
  starts), which is how a caller cancels: the next run resumes.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from azure.core.exceptions import AzureError as SdkError
from azure.core.exceptions import ResourceNotFoundError

from batchimage.azure.errors import translate
from batchimage.azure.vhd.costs import CostEstimate, PutCosts
from batchimage.azure.vhd.digest import (
    Fingerprint,
    SparseDigest,
    blob_digest,
    file_digest,
    read_block,
)
from batchimage.azure.vhd.direct import DirectPutter
from batchimage.azure.vhd.errors import VhdChangedError, VhdError, VhdVerifyError
from batchimage.azure.vhd.formats import VhdInfo, validate_fixed_vhd
from batchimage.azure.vhd.joins import Merger, plan_block
from batchimage.azure.vhd.ranges import Coverage, RangeMap, blob_ranges
from batchimage.azure.vhd.scan import BLOCK, data_blocks, data_runs, is_zero
from batchimage.core import threads
from batchimage.core.errors import AzureError
from batchimage.core.ownership import Marks

if TYPE_CHECKING:
    from azure.storage.blob import BlobClient

LOOKAHEAD = 4  # data blocks read (and their data credited to the zero bound) before planning
GROUP = 16  # puts a worker task sends in a row at most (a block's puts are shared by all workers)
STATUS_UPLOADING = "uploading"
STATUS_COMPLETE = "complete"
STATUS_INVALID = "invalid"
T = TypeVar("T")


@dataclass(frozen=True)
class UploadProgress:
    """A snapshot of an upload, for progress bars: positions, bytes sent, rate and ETA."""

    total: int  # file size
    done: int  # file bytes accounted for: sent, found zero, or already on the blob
    sent: int  # bytes put to the blob by this run
    zero_skipped: int  # zero bytes not sent
    already_present: int  # bytes an earlier run had put
    elapsed: float
    eta: float | None  # seconds, estimated from the data still to read and the send rate

    @property
    def rate(self) -> float:
        """Bytes sent per second so far."""
        return self.sent / self.elapsed if self.elapsed > 0 else 0.0


@dataclass(frozen=True)
class UploadResult:
    """What an upload did and what the blob now holds."""

    blob_url: str
    size: int  # blob size = file size
    data_bytes: int  # bytes in the blob's written ranges (non-zero pages + joined gaps)
    bytes_sent: int  # bytes put by this run (0 when skipped)
    zero_bytes_skipped: int  # file bytes never sent because they are zero
    already_present_bytes: int  # bytes an earlier, interrupted run had put
    requests: int  # Put Page requests made by this run
    direct_requests: int  # of which sent over http.client (the rest through the SDK)
    direct_off: str  # why the direct path stopped serving puts ("" if it never did)
    digest: str  # sparse XXH3-128 of the content (see batchimage.azure.vhd.digest)
    verified: str  # "page-ranges" or "readback"
    resumed: bool  # continued an interrupted upload of the same file
    restarted: bool  # discarded a blob holding an older version of the file
    skipped_upload: bool  # the blob was already complete and verified: nothing written
    etag: str | None
    elapsed: float
    costs: CostEstimate | None = None  # the put costs measured at the end (None if skipped)


ProgressCallback = Callable[[UploadProgress], None]


@dataclass(frozen=True)
class _Layout:
    """How the file is cut into put ranges, kept in metadata: a resume keeps the zero bound
    (which gaps an earlier run joined, it reads from the blob's page ranges)."""

    zero_bound: float = 0.10

    def encode(self) -> str:
        return f"block={BLOCK},zero_bound={self.zero_bound},joins=measured"

    @classmethod
    def decode(cls, text: str | None) -> _Layout | None:
        """The layout recorded, or None; `budget=` is what uploads before measured joins wrote."""
        try:
            fields = dict(item.split("=", 1) for item in (text or "").split(","))
            if int(fields["block"]) != BLOCK:
                return None
            return cls(zero_bound=float(fields.get("zero_bound") or fields["budget"]))
        except (KeyError, ValueError):
            return None


def _source_metadata(fingerprint: Fingerprint, layout: _Layout, status: str) -> dict[str, str]:
    return {
        Marks.Blob.UPLOAD_STATUS: status,
        Marks.Blob.SOURCE_SIZE: str(fingerprint.size),
        Marks.Blob.SOURCE_MTIME: str(fingerprint.mtime_ns),
        Marks.Blob.SOURCE_SAMPLE: fingerprint.sample,
        Marks.Blob.LAYOUT: layout.encode(),
    }


def _call(operation: str, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call an SDK method, mapping azure.core errors to batchimage errors."""
    try:
        return func(*args, **kwargs)
    except SdkError as exc:
        raise translate(exc, operation) from exc


def _mapped(operation: str, items: Iterator[T]) -> Iterator[T]:
    """`items`, with azure.core errors raised while iterating mapped to batchimage errors."""
    try:
        yield from items
    except SdkError as exc:
        raise translate(exc, operation) from exc


@dataclass(frozen=True)
class _Found:
    """What is at the blob's name now: its properties (None if nothing) and metadata."""

    props: Any
    metadata: dict[str, str]

    @classmethod
    def look(cls, blob: BlobClient) -> _Found:
        """Read the blob's properties (one HEAD request)."""
        try:
            props = blob.get_blob_properties()
        except ResourceNotFoundError:
            return cls(None, {})
        except SdkError as exc:
            raise translate(exc, "get blob properties") from exc
        return cls(props, dict(props.metadata or {}))

    @property
    def ours(self) -> bool:
        """True if batchimage wrote this blob."""
        return Marks.Blob.UPLOAD_STATUS in self.metadata

    def holds(self, info: VhdInfo, fingerprint: Fingerprint) -> bool:
        """True if the blob is (being) filled from this very file."""
        return self._same_samples(info, fingerprint) and self._same_mtime(fingerprint)

    def complete_for(self, info: VhdInfo, fingerprint: Fingerprint) -> bool:
        """True if the blob holds this file, uploaded and verified."""
        return self.holds(info, fingerprint) and self._complete()

    def touched_copy_of(self, info: VhdInfo, fingerprint: Fingerprint) -> bool:
        """True if the blob is complete for a file of this size and samples, other mtime."""
        return (
            self._same_samples(info, fingerprint)
            and not self._same_mtime(fingerprint)
            and self._complete()
        )

    def _same_samples(self, info: VhdInfo, fingerprint: Fingerprint) -> bool:
        """Ours, filled from a file of this size and these samples (whatever its mtime)."""
        return (
            self.ours
            and self.props.size == info.file_size
            and self.metadata.get(Marks.Blob.SOURCE_SIZE) == str(fingerprint.size)
            and self.metadata.get(Marks.Blob.SOURCE_SAMPLE) == fingerprint.sample
        )

    def _same_mtime(self, fingerprint: Fingerprint) -> bool:
        return self.metadata.get(Marks.Blob.SOURCE_MTIME) == str(fingerprint.mtime_ns)

    def _complete(self) -> bool:
        return self.metadata.get(Marks.Blob.UPLOAD_STATUS) == STATUS_COMPLETE and bool(
            self.metadata.get(Marks.Blob.DIGEST)
        )


def _prepare(source: str | os.PathLike[str] | VhdInfo) -> tuple[VhdInfo, Fingerprint]:
    info = source if isinstance(source, VhdInfo) else validate_fixed_vhd(source)
    try:
        fingerprint = Fingerprint.of(info.path)
    except OSError as exc:
        raise VhdError(f"cannot read {info.path}: {exc.strerror or exc}") from exc
    if fingerprint.size != info.file_size:
        raise VhdChangedError(f"{info.path} changed size since it was validated; run again")
    return info, fingerprint


def find_uploaded(
    source: str | os.PathLike[str] | VhdInfo, blob: BlobClient, *, readback: bool = False
) -> UploadResult | None:
    """Read-only: the finished, verified upload of this file at `blob`, else None."""
    started = time.monotonic()
    info, fingerprint = _prepare(source)
    found = _Found.look(blob)
    if not found.complete_for(info, fingerprint):
        return None
    return _already_uploaded(blob, info, found, readback, started)


def find_touched(source: str | os.PathLike[str] | VhdInfo, blob: BlobClient) -> UploadResult | None:
    """Read-only: the finished upload of a file of this size and samples whose mtime differs
    (a copy, a touch), else None; `upload_vhd` compares digests before sending anything."""
    started = time.monotonic()
    info, fingerprint = _prepare(source)
    found = _Found.look(blob)
    if not found.touched_copy_of(info, fingerprint):
        return None
    return _already_uploaded(blob, info, found, False, started)


@dataclass
class _Read:
    """A block read and scanned, waiting to be planned."""

    index: int
    length: int
    buf: bytearray | None  # None: all zero (its buffer was freed at once)
    runs: list[tuple[int, int]]  # its runs of non-zero pages, relative to the block


class _Transfer:
    """One pass over the file: read, hash, scan, and put what the blob lacks."""

    def __init__(
        self,
        blob: BlobClient,
        info: VhdInfo,
        layout: _Layout,
        coverage: Coverage | None,
        workers: int,
        content_md5: bool,
        progress: ProgressCallback | None,
        direct: DirectPutter,
        costs: PutCosts,
    ) -> None:
        self.blob = blob
        self.direct = direct
        self.info = info
        self.merger = Merger(bound=layout.zero_bound)
        self.costs = costs
        self.coverage = coverage
        self.workers = workers
        self.content_md5 = content_md5
        self.progress = progress
        self.digest = SparseDigest(info.file_size)
        self.ranges = RangeMap()
        self.lock = threading.Lock()
        self.idle = threading.Condition()
        self.outstanding = 0  # groups of puts submitted and not finished
        self.scanned = 0  # file bytes read or skipped as holes, from the start
        self.planned = 0  # bytes of the ranges the blob must hold (sent, queued or present)
        self.queued = 0  # bytes handed to the workers
        self.sent = 0  # bytes the workers have put
        self.present = 0  # bytes the blob already held
        self.requests = 0
        self.direct_requests = 0
        self.data_blocks_total = 0
        self.data_blocks_seen = 0
        self.started = time.monotonic()
        self.last_report = 0.0
        self.failure: BaseException | None = None
        self.stopping = False

    def run(self) -> None:
        """Read the whole file once and put every range the blob lacks; raise the first failure."""
        size = self.info.file_size
        free: queue.Queue[bytearray] = queue.Queue()
        for _ in range(self.workers + 2 + LOOKAHEAD):
            free.put(bytearray(BLOCK))
        with open(self.info.path, "rb", buffering=0) as handle:
            self.data_blocks_total = sum(1 for _ in data_blocks(handle.fileno(), size))
            pool = ThreadPoolExecutor(
                self.workers, thread_name_prefix="vhd-put", initializer=threads.block_signals
            )
            try:
                ahead: deque[_Read] = deque()  # read, not planned yet (file order)
                held = 0  # of which hold a buffer
                for index in data_blocks(handle.fileno(), size):
                    buf = self._take(free)
                    length = self._read(handle, index, buf)
                    if is_zero(buf, length):
                        free.put(buf)
                        ahead.append(_Read(index, length, None, []))
                    else:
                        runs = data_runs(buf, length)
                        self.merger.credit(runs)
                        ahead.append(_Read(index, length, buf, runs))
                        held += 1
                    while ahead and (held > LOOKAHEAD or ahead[0].buf is None):
                        item = ahead.popleft()
                        held -= item.buf is not None
                        self._launch(pool, free, item)
                while ahead:
                    self._launch(pool, free, ahead.popleft())
                while True:
                    with self.idle:
                        if not self.outstanding or self.failure is not None:
                            break
                        self.idle.wait(0.2)
                    self._report()
                self._raise_failure()
                with self.lock:
                    self.scanned = size
            finally:
                self.stopping = True  # a group being sent stops before its next put
                pool.shutdown(wait=True, cancel_futures=True)
        self._report(final=True)

    def _read(self, handle: io.RawIOBase, index: int, buf: bytearray) -> int:
        """Read block `index` into `buf`, turning a failed read into one of our errors."""
        try:
            return read_block(handle, index, self.info.file_size, buf)
        except OSError as exc:
            raise VhdChangedError(
                f"reading {self.info.path} failed at {index * BLOCK} bytes ({exc}); if the "
                f"file is being written to, wait until it is finished and run again"
            ) from exc

    def _take(self, free: queue.Queue[bytearray]) -> bytearray:
        """A free buffer; while waiting for one, surface failures and report progress."""
        while True:
            self._raise_failure()
            try:
                return free.get(timeout=0.2)
            except queue.Empty:
                self._report()

    def _raise_failure(self) -> None:
        if self.failure is not None:
            raise self.failure

    def _finished(
        self,
        buf: bytearray,
        remaining: list[int],
        free: queue.Queue[bytearray],
        future: Future[None],
    ) -> None:
        """Note a group of puts' outcome; return `buf` to the free list after its last group."""
        error = None if future.cancelled() else future.exception()
        with self.idle:
            if error is not None and self.failure is None:
                self.failure = error
            self.outstanding -= 1
            remaining[0] -= 1
            last = remaining[0] == 0
            self.idle.notify_all()
        if last:
            free.put(buf)

    def _launch(self, pool: ThreadPoolExecutor, free: queue.Queue[bytearray], item: _Read) -> None:
        """Plan a block read earlier and hand its puts to the workers (its buffer goes back
        to `free` after its last put, or now if it has none)."""
        puts = self._plan_block(item)
        if item.buf is None:
            return
        buf = item.buf
        if not puts:
            free.put(buf)
            return
        size = min(GROUP, -(-len(puts) // self.workers))
        groups = [puts[at : at + size] for at in range(0, len(puts), size)]
        remaining = [len(groups)]
        with self.idle:
            self.outstanding += len(groups)
        for group in groups:
            future = pool.submit(self._put_group, buf, item.index * BLOCK, group)
            future.add_done_callback(functools.partial(self._finished, buf, remaining, free))
        self._report()

    def _put_group(self, buf: bytearray, base: int, group: list[tuple[int, int]]) -> None:
        """Put the ranges `group` of the block at `base` held in `buf`, one after another
        (stopping early once any put of the upload has failed or the upload stops)."""
        view = memoryview(buf)
        for start, end in group:
            if self.failure is not None or self.stopping:
                return
            self._put(view[start - base : end - base], start)

    def _plan_block(self, item: _Read) -> list[tuple[int, int]]:
        """Record a block (digest, ranges) and return the absolute ranges to put."""
        base = item.index * BLOCK
        puts: list[tuple[int, int]] = []
        planned = 0
        if item.buf is not None:
            self.digest.add(item.index, memoryview(item.buf)[: item.length])
            plan = plan_block(
                base,
                item.runs,
                self.merger,
                self.costs.estimate().join_gap,
                None if self.coverage is None else self.coverage.missing,
            )
            for start, end in plan.holds:
                self.ranges.add(start, end)
                planned += end - start
            puts = plan.puts
        queued = sum(end - start for start, end in puts)
        with self.lock:  # one update, so a progress snapshot never sees half a block
            self.scanned = base + item.length
            self.data_blocks_seen += 1
            self.planned += planned
            self.present += planned - queued
            self.queued += queued
        return puts

    def _put(self, view: memoryview, offset: int) -> None:
        length = len(view)
        md5 = hashlib.md5(view).digest() if self.content_md5 else None
        began = time.perf_counter()
        if self.direct.put(view, offset, md5):
            self.costs.observe(length, time.perf_counter() - began)
            with self.lock:
                self.sent += length
                self.requests += 1
                self.direct_requests += 1
            return
        options: dict[str, Any] = {}
        if md5 is not None:
            options["transactional_content_md5"] = md5
        for attempt in (1, 2):
            began = time.perf_counter()
            try:
                _call("put page", self.blob.upload_page, view, offset, length, **options)
                self.costs.observe(length, time.perf_counter() - began)
                break
            except AzureError as exc:
                if exc.code != "Md5Mismatch":
                    raise
                if attempt == 2:
                    raise VhdVerifyError(
                        f"the storage service twice received other bytes than were sent for "
                        f"{length} bytes at offset {offset} (Md5Mismatch); check this "
                        f"machine's memory and network, then run again"
                    ) from exc
        with self.lock:
            self.sent += length
            self.requests += 1

    def snapshot(self) -> UploadProgress:
        """Progress so far (thread-safe)."""
        with self.lock:
            elapsed = time.monotonic() - self.started
            inflight = self.queued - self.sent
            seen = max(self.data_blocks_seen, 1) * BLOCK
            density = self.planned / seen  # share of the data blocks read that must be sent
            unread = (self.data_blocks_total - self.data_blocks_seen) * BLOCK
            to_send = inflight + unread * density
            rate = self.sent / elapsed if elapsed > 0 else 0.0
            return UploadProgress(
                total=self.info.file_size,
                done=self.scanned - inflight,
                sent=self.sent,
                zero_skipped=self.scanned - self.planned,
                already_present=self.present,
                elapsed=elapsed,
                eta=to_send / rate if rate > 0 else None,
            )

    def _report(self, final: bool = False) -> None:
        if self.progress is None:
            return
        now = time.monotonic()
        if final or now - self.last_report >= 0.1:
            self.last_report = now
            self.progress(self.snapshot())


def upload_vhd(
    source: str | os.PathLike[str] | VhdInfo,
    blob: BlobClient,
    *,
    workers: int = 8,
    progress: ProgressCallback | None = None,
    content_md5: bool | None = None,
    readback: bool = False,
    overwrite: bool = False,
    zero_bound: float = 0.10,
    verify: bool | str | None = None,
    direct: bool = True,
    costs: PutCosts | None = None,
) -> UploadResult:
    """Upload a fixed VHD to the page blob `blob`: skip it if done, resume it, or start it.

    `zero_bound` caps the zero bytes sent to join runs, as a share of the data bytes (a
    resume keeps the bound the upload started with). `costs` is the put-cost estimate to
    use and update (default: a new one, learnt from this upload's puts). `verify` is the CA
    bundle (or False) for the direct puts (None: the blob client's own
    `connection_verify`); `direct=False` sends every put through the SDK.
    """
    if workers < 1:
        raise ValueError("workers must be at least 1")
    if zero_bound < 0:
        raise ValueError("zero_bound must not be negative")
    started = time.monotonic()
    info, fingerprint = _prepare(source)
    layout = _Layout(zero_bound=zero_bound)
    found = _Found.look(blob)
    if found.props is not None and not found.ours and not overwrite:
        raise VhdError(
            f"{blob.url} already exists and was not uploaded by batchimage; choose another "
            f"blob name or allow overwriting it"
        )
    if found.touched_copy_of(info, fingerprint):
        found = _adopt_touched(blob, info, fingerprint, found)
    if found.complete_for(info, fingerprint):
        done = _already_uploaded(blob, info, found, readback, started)
        if done is not None:
            return done
        # the read-back content differs from the recorded digest: start the blob over
    stored_layout = _Layout.decode(found.metadata.get(Marks.Blob.LAYOUT))
    resume = (
        found.holds(info, fingerprint)
        and found.metadata.get(Marks.Blob.UPLOAD_STATUS) == STATUS_UPLOADING
        and stored_layout is not None
    )
    if resume:
        assert stored_layout is not None
        layout = stored_layout
        coverage: Coverage | None = Coverage(_mapped("list page ranges", blob_ranges(blob)))
    else:
        _call(
            "create page blob",
            blob.create_page_blob,
            info.file_size,
            metadata=_source_metadata(fingerprint, layout, STATUS_UPLOADING),
        )
        coverage = None
    if content_md5 is None:
        content_md5 = blob.scheme.lower() == "http"
    putter = (
        DirectPutter.for_blob(blob, verify=verify, workers=workers)
        if direct
        else DirectPutter(blob, None, "switched off by the caller")
    )
    costs = PutCosts() if costs is None else costs
    transfer = _Transfer(
        blob, info, layout, coverage, workers, content_md5, progress, putter, costs
    )
    try:
        transfer.run()
    finally:
        putter.close()
    if not fingerprint.stat_matches(info.path):
        raise VhdChangedError(
            f"{info.path} was modified during the upload; the blob will be started over on "
            f"the next run (make sure nothing writes to the file)"
        )
    digest = transfer.digest.hexdigest()
    _check_page_ranges(blob, transfer.ranges, fingerprint, layout)
    verified = "page-ranges"
    if readback:
        _check_readback(blob, info.file_size, digest, fingerprint, layout)
        verified = "readback"
    final = _source_metadata(fingerprint, layout, STATUS_COMPLETE)
    final.update(
        {
            Marks.Blob.DIGEST: digest,
            Marks.Blob.DATA_BYTES: str(transfer.ranges.total),
            Marks.Blob.VERIFIED: verified,
        }
    )
    response = _call("set blob metadata", blob.set_blob_metadata, final)
    return UploadResult(
        blob_url=blob.url,
        size=info.file_size,
        data_bytes=transfer.ranges.total,
        bytes_sent=transfer.sent,
        zero_bytes_skipped=info.file_size - transfer.ranges.total,
        already_present_bytes=transfer.present,
        requests=transfer.requests,
        direct_requests=transfer.direct_requests,
        direct_off=putter.reason,
        digest=digest,
        verified=verified,
        resumed=resume,
        restarted=found.props is not None and not resume,
        skipped_upload=False,
        etag=response.get("etag"),
        elapsed=time.monotonic() - started,
        costs=costs.estimate(),
    )


def _adopt_touched(
    blob: BlobClient, info: VhdInfo, fingerprint: Fingerprint, found: _Found
) -> _Found:
    """For a file whose mtime alone changed: if its digest is the blob's, record the new
    mtime (one metadata write) and return what the blob now says; else `found` unchanged."""
    if file_digest(info.path) != found.metadata.get(Marks.Blob.DIGEST):
        return found
    metadata = dict(found.metadata)
    metadata[Marks.Blob.SOURCE_MTIME] = str(fingerprint.mtime_ns)
    response = _call("set blob metadata", blob.set_blob_metadata, metadata)
    found.props.etag = response.get("etag", found.props.etag)
    return _Found(found.props, metadata)


def _mark_invalid(blob: BlobClient, fingerprint: Fingerprint, layout: _Layout) -> None:
    _call(
        "set blob metadata",
        blob.set_blob_metadata,
        _source_metadata(fingerprint, layout, STATUS_INVALID),
    )


def _check_page_ranges(
    blob: BlobClient, expected: RangeMap, fingerprint: Fingerprint, layout: _Layout
) -> None:
    """Fail unless the blob's written ranges are exactly the ranges the file needs."""
    actual = RangeMap()
    for start, end in _mapped("list page ranges", blob_ranges(blob)):
        actual.add(start, end)
    want, have = expected.key(), actual.key()
    if want != have:
        _mark_invalid(blob, fingerprint, layout)
        raise VhdVerifyError(
            f"{blob.url}: the blob's written pages ({have[0]} ranges, {have[1]} bytes) are not "
            f"the file's ({want[0]} ranges, {want[1]} bytes); the blob was marked for a fresh "
            f"upload: run again"
        )


def _check_readback(
    blob: BlobClient, size: int, digest: str, fingerprint: Fingerprint, layout: _Layout
) -> None:
    """Fail unless the digest recomputed from the blob's content equals the file's."""
    remote = _call("download blob ranges", blob_digest, blob, size)
    if remote != digest:
        _mark_invalid(blob, fingerprint, layout)
        raise VhdVerifyError(
            f"{blob.url}: the blob's content (sparse SHA-256 {remote}) differs from the "
            f"file's ({digest}); the blob was marked for a fresh upload: run again"
        )


def _already_uploaded(
    blob: BlobClient, info: VhdInfo, found: _Found, readback: bool, started: float
) -> UploadResult | None:
    """The result for a blob that holds this file, complete; None if `readback` disagrees."""
    metadata = found.metadata
    digest = metadata[Marks.Blob.DIGEST]
    verified = metadata.get(Marks.Blob.VERIFIED, "page-ranges")
    if readback:
        if _call("download blob ranges", blob_digest, blob, info.file_size) != digest:
            return None
        verified = "readback"
    data_bytes = int(metadata.get(Marks.Blob.DATA_BYTES, "0"))
    return UploadResult(
        blob_url=blob.url,
        size=info.file_size,
        data_bytes=data_bytes,
        bytes_sent=0,
        zero_bytes_skipped=info.file_size - data_bytes,
        already_present_bytes=data_bytes,
        requests=0,
        direct_requests=0,
        direct_off="",
        digest=digest,
        verified=verified,
        resumed=False,
        restarted=False,
        skipped_upload=True,
        etag=found.props.etag,
        elapsed=time.monotonic() - started,
    )


__all__ = [
    "ProgressCallback",
    "UploadProgress",
    "UploadResult",
    "find_touched",
    "find_uploaded",
    "upload_vhd",
]
