"""Start a sandbox folder's world afresh (`batchimage sandbox reset`); identity and TLS
are kept."""

from __future__ import annotations

import shutil
from pathlib import Path

from batchimage.sandbox.admin import SandboxAdmin
from batchimage.sandbox.connection import Connection
from batchimage.sandbox.runtime import running


def reset(folder: Path) -> Connection | None:
    """Reset the sandbox serving `folder` at once and return its connection; when none
    serves it, delete the stored world (the next start seeds a fresh one) and return None."""
    conn = running(folder)
    if conn is not None:
        SandboxAdmin(conn).reset()
        return conn
    (folder / "state.json").unlink(missing_ok=True)
    shutil.rmtree(folder / "azurite", ignore_errors=True)
    return None
