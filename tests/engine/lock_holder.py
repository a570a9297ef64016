"""Test helper process: take the lock on a local state file, say so, then hold it.

Usage: python lock_holder.py STATE_PATH SECONDS
Prints "locked" once the lock is held, sleeps, releases. Killed with SIGKILL it leaves
its holder record behind, as a crashed apply would.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from batchimage.state import LockHolder
from batchimage.state.local import LocalStateStore


def main() -> None:
    store = LocalStateStore(Path(sys.argv[1]))
    store.lock(LockHolder(command="apply", run_id="holder-run"))
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    store.unlock()


if __name__ == "__main__":
    main()
