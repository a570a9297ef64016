"""Make real disk image files for the VHD tests: fixed VHDs by our footer code or qemu-img."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pytest

from batchimage.core.vhd_footer import append_footer

MIB = 1 << 20


def write_raw(path: Path, size: int, blocks: Iterable[tuple[int, bytes]] = ()) -> Path:
    """A sparse raw disk of `size` bytes holding each `(offset, data)` of `blocks`."""
    with path.open("wb") as out:
        out.truncate(size)
        for offset, data in blocks:
            out.seek(offset)
            out.write(data)
    return path


def make_fixed_vhd(path: Path, size: int, blocks: Iterable[tuple[int, bytes]] = ()) -> Path:
    """A fixed VHD of virtual size `size` written by our own footer code."""
    write_raw(path, size, blocks)
    append_footer(path)
    return path


def seeded_bytes(seed: int, size: int) -> bytes:
    """`size` pseudo-random bytes, the same for the same seed (no zero 512-byte pages)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha512(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def qemu_img() -> str:
    """Path of qemu-img, or skip the test (CI installs qemu-utils; see .ci/run)."""
    found = shutil.which("qemu-img")
    if not found:
        pytest.skip("qemu-img is not installed (apt-get install qemu-utils)")
    return found


def run(*args: str | os.PathLike[str]) -> None:
    """Run a command, failing the test with its output if it fails."""
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{args} failed: {done.stderr}"


def sparse_layout() -> list[tuple[int, bytes]]:
    """Data for a 9 MiB test disk: a stray byte, runs across a 4 MiB block edge, a dense MiB."""
    return [
        (700, b"\x01stray byte"),
        (4 * MIB - 1024, seeded_bytes(3, 1536)),
        (4 * MIB + 4096, seeded_bytes(4, 100)),
        (6 * MIB + 512, seeded_bytes(5, MIB)),
        (8 * MIB + 8192, seeded_bytes(6, 3000)),
    ]


def nonzero_runs(path: Path) -> list[tuple[int, int]]:
    """The runs of non-zero 512-byte pages of a file, computed the slow, obvious way."""
    data = path.read_bytes()
    runs: list[tuple[int, int]] = []
    for start in range(0, len(data), 512):
        if any(data[start : start + 512]):
            if runs and runs[-1][1] == start:
                runs[-1] = (runs[-1][0], start + 512)
            else:
                runs.append((start, start + 512))
    return runs


def small_files_vhd(path: Path, scratch: Path, files: int, size: int = 16 * MIB) -> Path:
    """A fixed VHD (by qemu-img) holding an ext4 file system (by `mke2fs -d`) of `files`
    files of 1-8 KiB of pseudo-random bytes: a fragmented disk, with a zero tail in most
    4 KiB blocks."""
    qemu = qemu_img()
    mke2fs = shutil.which("mke2fs") or shutil.which("mkfs.ext4")
    if not mke2fs:
        pytest.skip("mke2fs is not installed (apt-get install e2fsprogs)")
    tree = scratch / "tree"
    for index in range(files):
        folder = tree / f"d{index // 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        length = 1024 + int.from_bytes(seeded_bytes(index, 2), "big") % (7 * 1024 + 1)
        (folder / f"f{index:05d}").write_bytes(seeded_bytes(10_000 + index, length))
    raw = write_raw(scratch / "fs.raw", size)
    run(mke2fs, "-q", "-t", "ext4", "-b", "4096", "-F", "-d", tree, raw)
    run(qemu, "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed,force_size", raw, path)
    raw.unlink()
    return path
