"""Measure `batchimage sandbox serve` startup (Azurite included): seconds from launching
the process until it answers health checks with its connection file written, for a new
folder (TLS, identity and world created) and for a restart; plus SDK call latency.

Usage: python3 bench/sandbox_startup.py [--runs 3]   (prints a Markdown table)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from batchimage.azure.clients import AzureClients
from batchimage.azure.cloud import sandbox as sandbox_profile
from batchimage.sandbox.runtime import start

TARGET_SECONDS = 5.0


def measure(runs: int) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {
        "cold start": [],
        "warm restart": [],
        "first SDK call": [],
        "later SDK GET (mean of 50)": [],
    }
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "sandbox"
            began = time.perf_counter()
            proc = start(folder)
            figures["cold start"].append(time.perf_counter() - began)
            began = time.perf_counter()
            clients = AzureClients(sandbox_profile(proc.connection))
            clients.resource.resource_groups.get(proc.connection.resource_group)
            figures["first SDK call"].append(time.perf_counter() - began)
            began = time.perf_counter()
            for _ in range(50):
                clients.resource.resource_groups.get(proc.connection.resource_group)
            figures["later SDK GET (mean of 50)"].append((time.perf_counter() - began) / 50)
            proc.stop()
            began = time.perf_counter()
            proc = start(folder)
            figures["warm restart"].append(time.perf_counter() - began)
            proc.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    figures = measure(args.runs)
    print(f"| measure ({args.runs} runs) | median s | min s | max s |")
    print("|---|---|---|---|")
    for name, values in figures.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.3f} | {min(values):.3f} | {max(values):.3f} |")
    worst = max(figures["cold start"] + figures["warm restart"])
    verdict = "meets" if worst < TARGET_SECONDS else "misses"
    print(f"\nslowest start {worst:.2f} s {verdict} the {TARGET_SECONDS:.0f} s target")


if __name__ == "__main__":
    main()
