"""`batchimage args...` on a pseudo-terminal, seen as a person sees it.

The child's stdin, stdout and stderr are a pty of a fixed size that is its controlling
terminal, so a typed Ctrl-C is a SIGINT and is echoed as `^C`, as in a shell. What it
writes is fed to `pyte` (a terminal emulator) twice: at the pty's size (`screen`: what is
on the screen, with the lines scrolled off above in its history) and far wider
(`wide`: where a line longer than the terminal shows as one line instead of wrapping).
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path

import pyte

WIDE = 400  # columns of the emulator that shows overlong lines as they were written


def _take_terminal() -> None:
    """In the child, before exec: make the pty (fd 0) its controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _text(lines: list[str]) -> str:
    return "\n".join(lines)


class Terminal:
    """`batchimage args...` on a pseudo-terminal of `rows` lines by `columns`."""

    def __init__(
        self, cwd: Path, env: dict[str, str], *args: str, rows: int = 50, columns: int = 120
    ) -> None:
        self.rows, self.columns = rows, columns
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        env = {k: v for k, v in env.items() if k not in {"COLUMNS", "LINES"}}
        env["TERM"] = "xterm-256color"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "batchimage", *args],
            cwd=cwd,
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            preexec_fn=_take_terminal,
        )
        os.close(slave)
        self.output = ""
        self.screen = pyte.HistoryScreen(columns, rows, history=5000)
        self.wide = pyte.HistoryScreen(WIDE, rows, history=5000)
        self._streams = [pyte.ByteStream(self.screen), pyte.ByteStream(self.wide)]

    def _read(self, timeout: float) -> bool:
        """Take in what the child wrote within `timeout`; False once the terminal closed."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: every holder of the other end is gone
            return False
        self.output += data.decode(errors="replace")
        for stream in self._streams:
            stream.feed(data)
        return bool(data)

    def wait_for(self, done: Callable[[], bool], what: str, timeout: float = 120) -> None:
        """Read until `done()` holds (checked after each read); fail saying `what`."""
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, f"no {what} on the terminal:\n{self.shown()}"
            assert self._read(0.2), f"the terminal closed before {what}:\n{self.shown()}"

    def expect(self, text: str, timeout: float = 120) -> str:
        """Wait until `text` was written; returns all written so far."""
        self.wait_for(lambda: text in self.output, repr(text), timeout)
        return self.output

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def answer(self, line: str) -> None:
        self.type(f"{line}\n")

    def interrupt(self) -> None:
        """Ctrl-C, as typed."""
        self.type("\x03")

    def finish(self, timeout: float = 120) -> int:
        """Read to the end; the child's exit code."""
        deadline = time.monotonic() + timeout
        while self._read(0.2):
            assert time.monotonic() < deadline, f"still running:\n{self.shown()}"
        os.close(self.master)
        return self.proc.wait(timeout=30)

    def lines(self) -> list[str]:
        """Every line from the top of the history to the last one on screen, as shown."""
        return _lines(self.screen)

    def written(self) -> list[str]:
        """The same lines as the program wrote them, however long (the wide emulator)."""
        return _lines(self.wide)

    def shown(self) -> str:
        return _text(self.lines())

    def find(self, pattern: str) -> list[int]:
        """Indexes (in `lines()`) of the lines `pattern` matches from their start."""
        regex = re.compile(pattern)
        return [i for i, line in enumerate(self.lines()) if regex.match(line)]


def _lines(screen: pyte.HistoryScreen) -> list[str]:
    """History lines, then the screen's, right-trimmed; trailing empty lines dropped."""
    width = screen.columns
    above = ["".join(line[x].data for x in range(width)) for line in screen.history.top]
    out = [line.rstrip() for line in [*above, *screen.display]]
    while out and not out[-1]:
        out.pop()
    return out
