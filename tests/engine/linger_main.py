"""Test helper process: `batchimage ARGS...` exactly as the program runs it (its `main()`),
whose exit then lingers, as it does while a slow exit handler runs (a sandbox owner's
goodbye over HTTP): after the command's last word it prints "lingering" and waits.

Usage: python linger_main.py ARGS...
"""

from __future__ import annotations

import atexit
import sys
import time


def _linger() -> None:
    print("lingering", file=sys.stderr, flush=True)
    time.sleep(60)


if __name__ == "__main__":
    atexit.register(_linger)  # registered first: it runs after every exit handler of the run
    from batchimage.cli import main

    sys.argv = ["batchimage", *sys.argv[1:]]
    main()
