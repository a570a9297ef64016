"""Validation of the base VHD: fixed VHDs pass; every other format is refused with commands
that, when run, produce a file that passes."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest

from batchimage.azure.vhd import VhdError, validate_fixed_vhd
from batchimage.core.errors import EXIT_INVALID
from tests.vhd.images import MIB, make_fixed_vhd, qemu_img, run, seeded_bytes, write_raw

CONTENT = [(0, seeded_bytes(1, 4096)), (MIB + 512, seeded_bytes(2, 70_000))]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder whose name needs shell quoting, to prove the commands quote paths."""
    path = tmp_path / "my disks"
    path.mkdir()
    return path


def run_suggested(err: VhdError) -> None:
    """Run the qemu-img commands the error message suggests."""
    commands = [line.strip() for line in str(err).splitlines()[1:]]
    assert commands and all(c.startswith("qemu-img ") for c in commands), str(err)
    for command in commands:
        done = subprocess.run(shlex.split(command), capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"{command}: {done.stderr}"


def assert_data(path: Path, size: int, blocks: list[tuple[int, bytes]]) -> None:
    """`path` is a fixed VHD whose disk holds `blocks` and zeros elsewhere."""
    info = validate_fixed_vhd(path)
    assert info.virtual_size == size
    data = path.read_bytes()[:size]
    expected = bytearray(size)
    for offset, chunk in blocks:
        expected[offset : offset + len(chunk)] = chunk
    assert data == bytes(expected)


@pytest.mark.parametrize("size", [2 * MIB, 3 * MIB, 17 * MIB])
def test_our_fixed_vhd_is_accepted(folder: Path, size: int) -> None:
    path = make_fixed_vhd(folder / "ours.vhd", size, CONTENT)
    info = validate_fixed_vhd(path)
    assert (info.virtual_size, info.file_size) == (size, size + 512)
    assert info.footer.disk_type_name == "fixed"


def test_qemu_fixed_vhd_with_force_size_is_accepted(folder: Path) -> None:
    qemu = qemu_img()
    raw = write_raw(folder / "disk.raw", 5 * MIB, CONTENT)
    path = folder / "qemu.vhd"
    run(qemu, "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed,force_size", raw, path)
    assert_data(path, 5 * MIB, CONTENT)


@pytest.mark.parametrize(
    ("fmt", "options", "size", "found"),
    [
        ("vpc", [], 5 * MIB, "a dynamic"),
        ("vpc", ["-o", "subformat=fixed"], 3 * MIB, "not a whole number of MiB"),
        ("vhdx", [], 6 * MIB, "VHDX"),
        ("vhdx", [], 3 * MIB + 4096, "VHDX"),
        ("qcow2", [], 4 * MIB, "qcow2"),
        ("qcow2", [], 4 * MIB + 512, "qcow2"),
        ("vmdk", [], 4 * MIB, "VMDK"),
        ("vdi", [], 4 * MIB, "VDI"),
    ],
)
def test_other_formats_are_refused_with_commands_that_work(
    folder: Path, fmt: str, options: list[str], size: int, found: str
) -> None:
    qemu = qemu_img()
    raw = write_raw(folder / "source.raw", size, CONTENT)
    image = folder / f"disk.{fmt}"
    run(qemu, "convert", "-f", "raw", "-O", fmt, *options, raw, image)
    with pytest.raises(VhdError, match=found) as caught:
        validate_fixed_vhd(image)
    assert caught.value.exit_code == EXIT_INVALID
    assert "subformat=fixed,force_size" in str(caught.value)
    run_suggested(caught.value)
    virtual = -(-qemu_virtual_size(image, fmt) // MIB) * MIB
    assert_data(folder / "disk-fixed.vhd", virtual, CONTENT)


def qemu_virtual_size(image: Path, fmt: str) -> int:
    """The virtual size qemu-img reports (qemu rounds VHD sizes up to a CHS geometry)."""
    info = subprocess.run(
        ["qemu-img", "info", "--output=json", "-f", fmt, str(image)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    size: int = json.loads(info.stdout)["virtual-size"]
    return size


def test_single_command_when_size_is_already_whole_mib(folder: Path) -> None:
    qemu = qemu_img()
    image = folder / "disk.vhdx"
    run(qemu, "create", "-q", "-f", "vhdx", image, "8M")
    with pytest.raises(VhdError) as caught:
        validate_fixed_vhd(image)
    lines = str(caught.value).splitlines()
    assert lines[1:] == [
        f"  qemu-img convert -f vhdx -O vpc -o subformat=fixed,force_size "
        f"'{image}' '{folder / 'disk-fixed.vhd'}'"
    ]


@pytest.mark.parametrize("size", [MIB, 3 * MIB - 512])
def test_raw_disk_is_refused_with_commands_that_work(folder: Path, size: int) -> None:
    qemu_img()
    image = write_raw(folder / "disk.img", size, CONTENT[:1])
    with pytest.raises(VhdError, match="raw disk image") as caught:
        validate_fixed_vhd(image)
    run_suggested(caught.value)
    assert_data(folder / "disk-fixed.vhd", -(-size // MIB) * MIB, CONTENT[:1])


def test_our_vhd_of_odd_size_is_refused_with_commands_that_work(folder: Path) -> None:
    qemu_img()
    path = make_fixed_vhd(folder / "odd.vhd", 2 * MIB + 3 * 512, CONTENT)
    with pytest.raises(VhdError, match="2098688 bytes is not a whole number of MiB") as caught:
        validate_fixed_vhd(path)
    run_suggested(caught.value)
    assert_data(folder / "odd-fixed.vhd", 3 * MIB, CONTENT)


def test_damaged_footer_is_refused(folder: Path) -> None:
    path = make_fixed_vhd(folder / "bad.vhd", 2 * MIB)
    with path.open("r+b") as handle:
        handle.seek(-512 + 50, 2)
        handle.write(b"\x07")
    with pytest.raises(VhdError, match="footer is damaged"):
        validate_fixed_vhd(path)


def test_truncated_vhd_is_refused(folder: Path) -> None:
    path = make_fixed_vhd(folder / "cut.vhd", 2 * MIB)
    footer = path.read_bytes()[-512:]
    with path.open("r+b") as handle:
        handle.truncate(MIB)
        handle.seek(MIB)
        handle.write(footer)
    with pytest.raises(VhdError, match="truncated or padded"):
        validate_fixed_vhd(path)


def test_missing_file_and_folder_are_refused(folder: Path) -> None:
    with pytest.raises(VhdError, match="no such file"):
        validate_fixed_vhd(folder / "nothing.vhd")
    with pytest.raises(VhdError, match="not a file"):
        validate_fixed_vhd(folder)


def test_tiny_file_is_raw(folder: Path) -> None:
    path = folder / "tiny.vhd"
    path.write_bytes(b"hello")
    with pytest.raises(VhdError, match="raw disk image"):
        validate_fixed_vhd(path)
