"""Secret redaction: one place that knows what a secret looks like in text.

Used by the request log (`-v`), the event stream and the state writer, so a SAS
signature, an account key, a bearer token or a registered secret value never reaches
a log line or the state file.
"""

from __future__ import annotations

import re
import threading

MASK = "REDACTED"

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # Group 1 is kept, the rest of the match is the secret.
    ("SAS signature", re.compile(r"([?&;]sig=)[^&\s\"'<>]+", re.IGNORECASE)),
    ("account key", re.compile(r"(AccountKey=)[^;\s\"'<>]+", re.IGNORECASE)),
    ("SAS token", re.compile(r"(SharedAccessSignature=)[^;\s\"'<>]+", re.IGNORECASE)),
    ("shared key signature", re.compile(r"(SharedKey\s+[^:\s]+:)[^\s\"'<>]+")),
    ("bearer token", re.compile(r"(Bearer\s+)[A-Za-z0-9\-._~+/]+=*", re.IGNORECASE)),
    ("client secret", re.compile(r"(client_secret=)[^&\s\"'<>]+", re.IGNORECASE)),
    (
        "secret field",
        re.compile(
            r"(\"(?:client_secret|password|access_token|refresh_token|id_token|account_key|"
            r"accountkey|key1|key2|primary_key|secondary_key|primaryKey|secondaryKey)\"\s*:\s*\")"
            r"[^\"]*",
            re.IGNORECASE,
        ),
    ),
    # A JSON Web Token anywhere (three base64url parts, the first a JSON header).
    ("JSON web token", re.compile(r"()eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+")),
)

_known: set[str] = set()
_known_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember a secret value (e.g. a key read from the environment) so it is always masked."""
    if value and len(value) >= 4:
        with _known_lock:
            _known.add(value)


def redact(text: str) -> str:
    """Return `text` with every secret-looking part replaced by REDACTED."""
    for _name, pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    with _known_lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:
        text = text.replace(value, MASK)
    return text


def find_secret(text: str) -> str | None:
    """Name the first kind of secret found in `text`, or None when it holds none."""
    for name, pattern in _PATTERNS:
        for match in pattern.finditer(text):
            if match.group(0)[len(match.group(1)) :] != MASK:
                return name
    with _known_lock:
        if any(value in text for value in _known):
            return "a registered secret value"
    return None
