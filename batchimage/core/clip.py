"""Bounded excerpts of long text, for what is recorded and shown: the tail of a script's
output, and a message cut in its middle.

    tail_lines(output)          # the last 20 non-empty lines, each at most 240 characters
    clip(message, 2000)         # at most 2000 characters: its start and its end
"""

from __future__ import annotations

TAIL_LINES = 20
LINE_CHARS = 240
CUT = "…"


def tail_lines(text: str | None, lines: int = TAIL_LINES, width: int = LINE_CHARS) -> list[str]:
    """The last `lines` non-empty lines of `text`, each cut to `width` characters (a long
    line keeps its start: where a message says what went wrong)."""
    kept = [line for line in (text or "").splitlines() if line.strip()][-lines:]
    return [line if len(line) <= width else line[: width - 1] + CUT for line in kept]


def clip(text: str, limit: int) -> str:
    """`text` if it is at most `limit` characters, else its start and its end (the end
    of a script's output says most) with how much was left out between them."""
    if len(text) <= limit:
        return text
    head = limit // 4
    note = f"\n{CUT} ({len(text) - limit} characters left out) {CUT}\n"
    tail = max(0, limit - head - len(note))
    return text[:head] + note + text[len(text) - tail :]
