"""Hashes of inputs: canonical JSON, short hashes and fingerprints (the identity of a step's
inputs and of the names derived from them).

    canonical_json({"b": 1, "a": model})  -> '{"a":{...},"b":1}'
    short_hash(value)                      -> 16 hex digits
    fingerprint_of({"size": h1, "base": h2}) -> 32 hex digits
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretBytes, SecretStr


def canonical_json(value: Any) -> str:
    """Stable JSON of `value` (pydantic models dumped; sorted keys) for hashing."""

    def default(obj: Any) -> Any:
        if isinstance(obj, BaseModel):
            return obj.model_dump(mode="json")
        if isinstance(obj, (set, frozenset)):
            return sorted(obj, key=str)
        if isinstance(obj, SecretStr | SecretBytes):
            raise TypeError("a secret cannot be a step input; pass a reference to it")
        return str(obj)

    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=default)


def short_hash(value: Any) -> str:
    """A 16-hex-digit SHA-256 of the canonical JSON of `value`."""
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:16]


def fingerprint_of(hashes: Mapping[str, str]) -> str:
    """The fingerprint of a set of per-input hashes."""
    return hashlib.sha256(canonical_json(dict(hashes)).encode()).hexdigest()[:32]


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of a local file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
