"""Secret redaction: one place that knows what a secret looks like in text.

Used by the request log (`-v`), the event stream, the state writer and every error
message, so a secret never reaches a log line, a status or the state file: a registered
value (a key read from the environment, a spec secret), and anything shaped like one
though nobody said so - a SAS signature (`sig=`), an account key (`AccountKey=`, a bare
88-character base64 key), a shared access key, a connection string's password, a URL's
password, a bearer or basic authorization, a JWT, an Entra client secret, a variable
named for a secret (`AZURE_CLIENT_SECRET=...`), a private key block.
"""

from __future__ import annotations

import re
import threading

MASK = "REDACTED"

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # Group 1 is kept, the rest of the match is the secret. A value stops at a backslash:
    # no secret has one, and in JSON text (a serialized state, an event) it starts an
    # escape such as the `\n` between two lines of a script's output.
    ("SAS signature", re.compile(r"(\bsig=)[^&\s\"'<>\\]+", re.IGNORECASE)),
    ("account key", re.compile(r"(AccountKey=)[^;\s\"'<>\\]+", re.IGNORECASE)),
    ("shared access key", re.compile(r"(SharedAccessKey=)[^;\s\"'<>\\]+", re.IGNORECASE)),
    ("SAS token", re.compile(r"(SharedAccessSignature=)[^;\s\"'<>\\]+", re.IGNORECASE)),
    ("connection string password", re.compile(r"(\b(?:Password|Pwd)=)[^;\s\"'<>\\]+", re.I)),
    ("password in a URL", re.compile(r"(://[^/\s:@\"'<>]+:)[^@\s/\"'<>\\]+(?=@)")),
    ("shared key signature", re.compile(r"(SharedKey\s+[^:\s]+:)[^\s\"'<>\\]+")),
    ("bearer token", re.compile(r"(Bearer\s+)[A-Za-z0-9\-._~+/]+=*", re.IGNORECASE)),
    ("basic credentials", re.compile(r"(Authorization:\s*Basic\s+)[A-Za-z0-9+/]+=*", re.I)),
    ("client secret", re.compile(r"(client_secret=)[^&\s\"'<>\\]+", re.IGNORECASE)),
    (
        "secret field",
        re.compile(
            r"(\"(?:client_secret|password|access_token|refresh_token|id_token|account_key|"
            r"accountkey|key1|key2|primary_key|secondary_key|primaryKey|secondaryKey)\"\s*:\s*\")"
            r"[^\"]*",
            re.IGNORECASE,
        ),
    ),
    # An environment variable named for a secret, set: AZURE_CLIENT_SECRET=..., X_KEY=...
    (
        "secret variable",
        re.compile(r"(\b[A-Z][A-Z0-9_]*(?:SECRET|PASSWORD|PASSWD|TOKEN|_KEY|_PWD)=)[^\s\"'&;\\]+"),
    ),
    # A JSON Web Token anywhere (three base64url parts, the first a JSON header).
    ("JSON web token", re.compile(r"()eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+")),
    # A bare 512-bit key in base64 (88 characters ending ==): storage and Batch account keys.
    ("account key", re.compile(r"()(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{86}==(?![A-Za-z0-9+/=])")),
    # An Entra ID client secret as the portal makes them (the third to sixth characters
    # are a digit, "Q" and "~").
    ("client secret", re.compile(r"()(?<![\w~.-])[\w~.-]{3}\dQ~[\w~.-]{31,34}(?![\w~.-])")),
    # A private key's body (base64 lines: everything up to the END line's dashes).
    ("private key", re.compile(r"(-----BEGIN [A-Z ]*PRIVATE KEY-----\s*)[^-]+")),
)

_known: set[str] = set()
_known_lock = threading.Lock()
_clean_lines: set[str] = set()  # lines `find_secret_in_lines` found clean (see there)
_CLEAN_LINES_MAX = 50_000


def register_secret(value: str | None) -> None:
    """Remember a secret value (e.g. a key read from the environment) so it is always masked."""
    if value and len(value) >= 4:
        with _known_lock:
            if value not in _known:
                _known.add(value)
                _clean_lines.clear()  # a line found clean may hold this value


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


def find_secret_in_lines(text: str) -> str | None:
    """`find_secret` for text written again and again with small changes (the state file,
    one JSON field a line): each line is scanned as it is and with its escaped line breaks
    as line breaks, and a line found clean is not scanned again. No secret spans two
    lines (every pattern stops at a line break or is whole within one JSON string)."""
    with _known_lock:
        if len(_clean_lines) > _CLEAN_LINES_MAX:
            _clean_lines.clear()
        known = len(_known)
    for line in text.splitlines():
        if line in _clean_lines:
            continue
        kind = find_secret(line) or find_secret(line.replace("\\n", "\n").replace("\\t", "\t"))
        if kind is not None:
            return kind
        with _known_lock:
            if len(_known) == known:  # no secret registered meanwhile
                _clean_lines.add(line)
    return None
