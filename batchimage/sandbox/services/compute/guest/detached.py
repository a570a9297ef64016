"""Work a Linux guest script leaves behind to run after it returns: a `systemd-run`
transient unit. systemd starts it in a cgroup of its own, outside the guest agent's and
the run command handler's, so it outlives both (the agent itself starts extensions through
`systemd-run --scope`: Azure/WALinuxAgent, azurelinuxagent/ga/cgroupapi.py); `--on-active=`
delays it by a systemd time span.

    foreground, later = split(script)   # later: [Detached(delay=60.0, command="...")]

Nothing else counts as detached (a `nohup ... &` child stays in the cgroup the agent's
service stop kills). A `systemd-run` whose options the sandbox cannot read is foreground.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

_START = re.compile(r"(?<![\w/.-])(?:/usr/bin/|/bin/)?systemd-run(?![\w.-])")
# systemd-run options that take a value (`--opt value` or `--opt=value`).
_VALUED = frozenset(
    {
        "--unit",
        "-u",
        "--description",
        "--property",
        "-p",
        "--timer-property",
        "--path-property",
        "--socket-property",
        "--slice",
        "--uid",
        "--gid",
        "--setenv",
        "-E",
        "--working-directory",
        "--nice",
        "--machine",
        "-M",
        "--host",
        "-H",
        "--on-active",
        "--on-boot",
        "--on-startup",
        "--on-unit-active",
        "--on-unit-inactive",
        "--on-calendar",
        "--on-clock-change",
        "--on-timezone-change",
    }
)
_SPAN_UNITS = {
    "": 1.0,
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
    "ms": 0.001,
    "msec": 0.001,
}
_SPAN_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)")
# Words that may stand before a command on its line (`sudo systemd-run ...`).
_PREFIXES = frozenset({"sudo", "exec", "env", "then", "do", "else", "!", "time"})
_ASSIGNMENT = re.compile(r"\w+=\S*")


@dataclass(frozen=True)
class Detached:
    """A command systemd runs `delay` seconds after the script started it."""

    delay: float
    command: str
    unit: str = ""


def span_seconds(text: str) -> float | None:
    """A systemd time span ("60", "90s", "1min 30s", "2m") in seconds, or None."""
    parts = _SPAN_PART.findall(text.strip().lower())
    if not parts or _SPAN_PART.sub("", text.strip().lower()).strip():
        return None
    total = 0.0
    for number, unit in parts:
        if unit not in _SPAN_UNITS:
            return None
        total += float(number) * _SPAN_UNITS[unit]
    return total


def _starts_command(script: str, index: int) -> bool:
    """Whether the word at `index` is a command (not an argument: `command -v systemd-run`)."""
    before = re.split(r"[\n;&|({]", script[:index])[-1].split()
    return all(w in _PREFIXES or _ASSIGNMENT.fullmatch(w) for w in before)


def _extent_end(script: str, start: int) -> int:
    """Where the shell command starting at `start` ends: an unquoted newline, `;`, `&` or `|`."""
    quote = ""
    i = start
    while i < len(script):
        char = script[i]
        if quote:
            if char == quote:
                quote = ""
            elif char == "\\" and quote == '"':
                i += 1
        elif char in "'\"":
            quote = char
        elif char == "\\":
            i += 1
        elif char in "\n;&|":
            return i
        i += 1
    return len(script)


def _parse(words: list[str]) -> Detached | None:
    """The unit a `systemd-run` command line starts, or None when it is not readable."""
    delay, unit, i = 0.0, "", 1
    while i < len(words) and words[i].startswith("-"):
        word = words[i]
        name, has_value, value = word.partition("=")
        if name in _VALUED and not has_value:
            if i + 1 >= len(words):
                return None
            value, i = words[i + 1], i + 1
        if name == "--on-active":
            seconds = span_seconds(value)
            if seconds is None:
                return None
            delay = seconds
        elif name in ("--unit", "-u"):
            unit = value
        i += 1
    command = words[i:]
    if not command:
        return None
    return Detached(delay=delay, command=" ".join(command), unit=unit)


def split(script: str) -> tuple[str, list[Detached]]:
    """`script` without its `systemd-run` commands, and those commands' units."""
    later: list[Detached] = []
    kept: list[str] = []
    position = 0
    for match in _START.finditer(script):
        if match.start() < position or not _starts_command(script, match.start()):
            continue  # inside a command already taken, or an argument
        end = _extent_end(script, match.start())
        try:
            words = shlex.split(script[match.start() : end])
        except ValueError:
            continue
        found = _parse(words)
        if found is None:
            continue
        kept.append(script[position : match.start()])
        later.append(found)
        position = end
    kept.append(script[position:])
    return "".join(kept), later
