"""A rich progress bar for `upload_vhd`: pass an `UploadBar` as the `progress` callback.

    with UploadBar("disk.vhd") as bar:
        upload_vhd(path, blob, progress=bar)

The bar advances over the file's bytes (sent, found zero, or already on the blob) and shows
the bytes sent, the send rate, the zero bytes skipped and the estimated time left.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
)

from batchimage.azure.vhd.upload import UploadProgress


def human_bytes(count: float) -> str:
    """`count` bytes as a short human string (binary units): 1.5 GiB, 320 MiB, 12 B."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def human_seconds(seconds: float | None) -> str:
    """`seconds` as h:mm:ss, or `-:--:--` when unknown."""
    if seconds is None:
        return "-:--:--"
    whole = int(seconds + 0.5)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def describe(progress: UploadProgress) -> str:
    """One line: sent bytes and rate, zero bytes skipped, bytes already there, ETA."""
    parts = [f"sent {human_bytes(progress.sent)} ({human_bytes(progress.rate)}/s)"]
    parts.append(f"zero skipped {human_bytes(progress.zero_skipped)}")
    if progress.already_present:
        parts.append(f"already there {human_bytes(progress.already_present)}")
    parts.append(f"ETA {human_seconds(progress.eta)}")
    return ", ".join(parts)


class UploadBar:
    """A rich progress bar that accepts `UploadProgress` snapshots (a `progress` callback)."""

    def __init__(self, label: str, console: Console | None = None) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            DownloadColumn(binary_units=True),
            TextColumn("{task.fields[detail]}"),
            console=console,
            transient=False,
        )
        self._label = label
        self._task: TaskID | None = None

    def __enter__(self) -> UploadBar:
        self._progress.start()
        self._task = self._progress.add_task(self._label, total=None, detail="")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def __call__(self, progress: UploadProgress) -> None:
        """Show `progress`."""
        if self._task is None:
            raise RuntimeError("use UploadBar as a context manager")
        self._progress.update(
            self._task, total=progress.total, completed=progress.done, detail=describe(progress)
        )
