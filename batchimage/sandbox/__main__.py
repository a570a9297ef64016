"""`python -m batchimage.sandbox --folder F`: serve the sandbox in the foreground, without
the tool (what `batchimage sandbox serve` runs, and what a command that needs the sandbox
starts). Exit codes: 0 stopped, 75 another process serves the folder, 1 it could not start.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from batchimage.sandbox.errors import SandboxError
from batchimage.sandbox.runtime import default_folder
from batchimage.sandbox.serve import serve


def main(argv: list[str] | None = None) -> int:
    """Parse the options and serve until interrupted; the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m batchimage.sandbox",
        description="Serve the sandbox (a local Azure: ARM + Batch over HTTPS, Azurite).",
    )
    parser.add_argument("--folder", type=Path, help="sandbox folder (default: the user's)")
    parser.add_argument("--port", type=int, default=0, help="HTTPS port on 127.0.0.1")
    parser.add_argument("--time-scale", type=float, help="wall seconds per simulated second")
    parser.add_argument("--exit-with", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    def say(line: str) -> None:
        print(line, flush=True)

    def complain(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        return serve(
            args.folder or default_folder(),
            port=args.port,
            time_scale=args.time_scale,
            exit_with=args.exit_with,
            say=say,
            complain=complain,
        )
    except SandboxError as exc:
        complain(f"error: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
