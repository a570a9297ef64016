"""Local paths a person gives (spec path fields, `--state`), checked before use: every way
such a path can fail is one `PathProblem` whose message says what is wrong and what to do,
never an OSError or RuntimeError traceback, never a read that hangs.

`resolve` makes a path absolute against a folder (`~` and `~user` expanded) and follows its
links, refusing a NUL character, a `~user` that names nobody, a name over `NAME_MAX` bytes
or a path over `PATH_MAX`, and a loop of symbolic links. `require_file` then wants a
regular file on disk that can be read; `kind_problem` says why an existing path is not one
(a folder, a named pipe, a device, a socket, or a kernel file under /proc or /sys, whose
content is no file's) - the check for paths that may be absent, such as a state file.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

NAME_MAX = 255
"""Bytes in one file or folder name (Linux `NAME_MAX`; ext4, XFS, Btrfs, tmpfs)."""

PATH_MAX = 4096
"""Bytes in a whole path, its terminating NUL included (Linux `PATH_MAX`)."""

KERNEL_TREES = (Path("/proc"), Path("/sys"))
"""Pseudo file systems whose "regular" files are views of the kernel, not content on disk."""

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class PathProblem(ValueError):
    """A path that cannot be used; `str()` says why and what to do."""


def resolve(value: str | Path, base: Path, *, expand_user: bool = True, name_room: int = 0) -> Path:
    """`value` made absolute against `base` and its links followed; `name_room` bytes are
    kept free in the last name (for files made beside it by appending to the name)."""
    text = os.fspath(value)
    if "\0" in text:
        raise PathProblem("a path cannot hold a NUL character (\\0): remove it")
    try:
        os.fsencode(text)
    except UnicodeError:
        raise PathProblem(
            "the path holds a character no file name can hold (a lone UTF-16 surrogate): "
            "write it in plain UTF-8"
        ) from None
    path = _expand(text) if expand_user else Path(text)
    full = path if path.is_absolute() else base / path
    _check_lengths(full, name_room)
    resolved = Path(os.path.realpath(full))  # never raises: a loop stays unresolved
    try:
        os.stat(resolved)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        pass  # absent or out of reach: for the caller to judge
    except OSError as exc:
        raise _os_problem(full, exc) from None
    _check_lengths(resolved, name_room)
    return resolved


def kind_problem(path: Path) -> str | None:
    """Why the existing `path` is not a regular file on disk; None when it is, or is absent."""
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        return str(_os_problem(path, exc))
    for test, kind in _KINDS:
        if test(info.st_mode):
            return f"{shown(path)} is {kind}, not a regular file: give a regular file"
    if _in_kernel_tree(path):
        return (
            f"{shown(path)} is a kernel file (under /proc or /sys), not a regular file on disk: "
            "copy what you need into a regular file and give that"
        )
    return None


def require_file(path: Path) -> None:
    """Raise `PathProblem` unless `path` is a regular file on disk that can be read."""
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise PathProblem(
            f"no such file: {shown(path)} (relative paths start at the spec's folder)"
        ) from None
    except OSError as exc:
        raise _os_problem(path, exc) from None
    problem = kind_problem(path)
    if problem:
        raise PathProblem(problem)
    if not os.access(path, os.R_OK):
        raise PathProblem(
            f"cannot read {shown(path)}: permission denied (check its mode and owner)"
        )


def shown(path: Path | str, limit: int = 120) -> str:
    """`path` as a message shows it: whole when short, else its two ends around '...'."""
    text = os.fspath(path)
    if len(text) <= limit:
        return text
    half = (limit - 3) // 2
    return text[:half] + "..." + text[-half:]


def _expand(text: str) -> Path:
    """`~` and `~user` expanded; a user unknown here is a problem naming it."""
    if not text.startswith("~"):
        return Path(text)
    try:
        return Path(text).expanduser()
    except RuntimeError:
        user = text[1:].split("/", 1)[0]
        if not user:
            raise PathProblem(
                "'~' cannot be expanded: your home folder is unknown (HOME is not set); "
                "write the full path"
            ) from None
        raise PathProblem(
            f"'~{user}' names no user on this machine: write the full path, or '~/...' for "
            "your own home folder"
        ) from None


def _check_lengths(path: Path, name_room: int) -> None:
    size = len(os.fsencode(path))
    if size >= PATH_MAX:
        raise PathProblem(
            f"the path is {size} bytes long; a path has at most {PATH_MAX - 1}: use a file "
            "in a folder with a shorter path"
        )
    parts = path.parts
    for index, part in enumerate(parts):
        limit = NAME_MAX - (name_room if index == len(parts) - 1 else 0)
        length = len(os.fsencode(part))
        if length > limit:
            shown = part if len(part) <= 40 else part[:37] + "..."
            room = f" (files made beside it add {name_room} bytes to it)" if name_room else ""
            raise PathProblem(
                f"the name '{shown}' is {length} bytes long; a name here has at most "
                f"{limit}{room}: shorten it"
            )


def _os_problem(path: Path, exc: OSError) -> PathProblem:
    if exc.errno == errno.ELOOP:
        return PathProblem(
            f"{shown(path)} leads into a loop of symbolic links: fix or remove the link "
            "that points back on itself"
        )
    if exc.errno == errno.ENAMETOOLONG:
        return PathProblem(
            f"{shown(path)} is too long once its symbolic links are followed: give a shorter path"
        )
    reason = exc.strerror or str(exc)
    return PathProblem(f"cannot use {shown(path)}: {reason}")


def _in_kernel_tree(path: Path) -> bool:
    return any(path == tree or tree in path.parents for tree in KERNEL_TREES)
