"""Benchmark: uploading 2 GiB fixed VHDs to a page blob on Azurite (not a test).

    python3 bench/vhd_upload.py [--size-gib 2] [--workers 4] [--kinds a,b,c,d] [--repeat 1]

Disks (made in a scratch folder, deleted afterwards unless --keep):
  a  30 % of the 4 MiB chunks random, the rest zero (footer by batchimage's own code)
  b  an ext4 file system made with `mke2fs -d` from a copy of this Python's standard library
     (site-packages left out), converted with `qemu-img convert -O vpc -o subformat=fixed`
  c  the memory check: 8x the size, 1 % of the chunks random (only batchimage's upload runs)
  d  many small files: ext4 (4 KiB blocks) made with `mke2fs -d` from a tree of --files files
     of 1-8 KiB of random bytes, 100 to a folder, converted as b

Methods, each in its own process (so peak RSS is its own), against one fresh Azurite:
  sdk           BlobClient.upload_blob(file, blob_type="PageBlob", max_concurrency=workers)
  loop-pages    the simplest parallel upload_page loop over the exact non-zero 512-byte page
                runs (split at 4 MiB), computed beforehand and not timed
  loop-chunks   the same loop over the non-zero 4 MiB chunks
  batchimage    batchimage.azure.vhd.upload.upload_vhd(path, blob, workers=workers) (defaults:
                joins measured from its own puts, zero bytes joined <= 10 % of the data)
  again         upload_vhd on the same blob again (already uploaded: must write nothing)
  viasdk        ablation: batchimage with every put sent through the SDK (direct=False)
  nodigest      ablation: batchimage with the content digest's hashing switched off
  wide          batchimage with zero_bound=0.5 (the measured joins, hardly bounded)

Reported per method: wall time, client CPU time (user + system of the uploading process),
Azurite's CPU time over the same span (its one Node process: what the service spent), bytes
sent in Put Page bodies (counted where requests leave for the wire: urllib3's `urlopen` for
the SDK, http.client's `request` for batchimage's direct puts), requests, peak RSS; for
batchimage's uploads also the put costs they measured (fixed time per request, throughput
per put, the gap worth joining).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MIB = 1 << 20
BLOCK = 4 * MIB
PAGE = 512
ACCOUNT = "benchacct"
METHODS = (
    "sdk", "loop-pages", "loop-chunks", "batchimage", "again", "viasdk", "nodigest", "wide",
)  # fmt: skip


# ---------------------------------------------------------------- disks


def make_random_chunks(path: Path, size: int, share: float, seed: int) -> None:
    """A fixed VHD of `size` bytes where `share` of the 4 MiB chunks are random, the rest zero."""
    from batchimage.core.vhd_footer import append_footer

    rng = random.Random(seed)
    with path.open("wb") as out:
        out.truncate(size)
        for index in range(size // BLOCK):
            if rng.random() < share:
                out.seek(index * BLOCK)
                out.write(os.urandom(BLOCK))
    append_footer(path)


def make_ext4(path: Path, size: int, scratch: Path, tree: Path | None) -> str:
    """A fixed VHD holding an ext4 file system built from a folder; returns what it holds."""
    if tree is None:
        tree = scratch / "tree"
        stdlib = sysconfig.get_paths()["stdlib"]
        shutil.copytree(stdlib, tree, symlinks=True, ignore=shutil.ignore_patterns("site-packages"))
    used = sum(f.stat().st_size for f in tree.rglob("*") if f.is_file() and not f.is_symlink())
    raw = scratch / "ext4.raw"
    with raw.open("wb") as out:
        out.truncate(size)
    run("mke2fs", "-q", "-t", "ext4", "-b", "4096", "-F", "-d", str(tree), str(raw))
    run("qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed,force_size",
        str(raw), str(path))  # fmt: skip
    raw.unlink()
    if tree.parent == scratch:
        shutil.rmtree(tree)
    return f"{used / 1e6:.0f} MB of files"


def make_small_files(path: Path, size: int, scratch: Path, files: int, seed: int) -> str:
    """A fixed VHD holding an ext4 file system of `files` files of 1-8 KiB random bytes."""
    rng = random.Random(seed)
    tree = scratch / "tree"
    for index in range(files):
        folder = tree / f"d{index // 100:04d}"
        if index % 100 == 0:
            folder.mkdir(parents=True)
        (folder / f"f{index:06d}").write_bytes(rng.randbytes(rng.randint(1024, 8192)))
    return make_ext4(path, size, scratch, tree)


def run(*cmd: str) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr}")


def page_runs(path: Path) -> list[tuple[int, int]]:
    """Exact runs of non-zero 512-byte pages, split at 4 MiB (an independent, plain scan)."""
    size = path.stat().st_size
    zero_page, zero_block = bytes(PAGE), bytes(BLOCK)
    runs: list[tuple[int, int]] = []
    with path.open("rb", buffering=0) as handle:
        for base in range(0, size, BLOCK):
            handle.seek(base)
            data = handle.read(BLOCK)
            if data == zero_block[: len(data)]:
                continue
            for start in range(0, len(data), PAGE):
                if data[start : start + PAGE] != zero_page:
                    at = base + start
                    if runs and runs[-1][1] == at and at % BLOCK:
                        runs[-1] = (runs[-1][0], at + PAGE)
                    else:
                        runs.append((at, at + PAGE))
    return runs


def chunk_runs(path: Path) -> list[tuple[int, int]]:
    """The non-zero 4 MiB chunks."""
    size = path.stat().st_size
    zero = bytes(BLOCK)
    out = []
    with path.open("rb", buffering=0) as handle:
        for base in range(0, size, BLOCK):
            handle.seek(base)
            data = handle.read(BLOCK)
            if data != zero[: len(data)]:
                out.append((base, base + len(data)))
    return out


# ---------------------------------------------------------------- one measurement (child)


class Counter:
    """Counts requests where they leave for the wire (urllib3's `urlopen` for the SDK,
    http.client's `request` for batchimage's direct puts): Put Pages, their bytes, writes."""

    def __init__(self) -> None:
        import http.client
        import threading

        import urllib3

        self.requests = 0
        self.bytes = 0
        self.writes = 0
        self.lock = threading.Lock()
        pool_class = urllib3.connectionpool.HTTPConnectionPool
        send = pool_class.urlopen

        def urlopen(pool: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            self.count(method, url, kwargs.get("headers") or {})
            return send(pool, method, url, *args, **kwargs)

        conn_class = http.client.HTTPConnection
        request = conn_class.request

        def direct(conn: Any, method: str, url: str, body: Any = None, headers: Any = None) -> None:
            self.count(method, url, headers or {})
            request(conn, method, url, body=body, headers=headers or {})

        pool_class.urlopen = urlopen  # type: ignore[method-assign]
        conn_class.request = direct  # type: ignore[method-assign]

    def count(self, method: str, url: str, headers: Any) -> None:
        with self.lock:
            if method not in ("GET", "HEAD"):
                self.writes += 1
            if method == "PUT" and "comp=page" in url.partition("?")[2].split("&"):
                self.requests += 1
                self.bytes += int(headers.get("Content-Length") or 0)


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child(args: argparse.Namespace) -> None:
    """Run one method once and print its figures as JSON."""
    from azure.storage.blob import BlobClient

    counter = Counter()
    blob = BlobClient(
        args.endpoint, "bench", args.blob,
        credential={"account_name": ACCOUNT, "account_key": args.key},
        connection_verify=args.ca,
    )  # fmt: skip
    path = Path(args.path)
    size = path.stat().st_size
    ranges: list[tuple[int, int]] = []
    if args.ranges:
        ranges = [(int(a), int(b)) for a, b in json.loads(Path(args.ranges).read_text())]
    extra: dict[str, Any] = {}
    azurite_pid = int(args.azurite_pid)
    start_azurite_cpu = process_cpu(azurite_pid)
    start_cpu, start = time.process_time(), time.perf_counter()
    if args.child == "sdk":
        with path.open("rb") as handle:
            blob.upload_blob(
                handle, blob_type="PageBlob", length=size, max_concurrency=args.workers,
                overwrite=True,
            )  # fmt: skip
    elif args.child.startswith("loop"):
        blob.create_page_blob(size)
        fd = os.open(path, os.O_RDONLY)

        def put(item: tuple[int, int]) -> None:
            offset, end = item
            blob.upload_page(os.pread(fd, end - offset, offset), offset, end - offset)

        with ThreadPoolExecutor(args.workers) as pool:
            list(pool.map(put, ranges))
        os.close(fd)
    else:
        import batchimage.azure.vhd.upload as upload

        if args.child == "nodigest":
            upload.SparseDigest.add = lambda self, index, block: None  # type: ignore[method-assign]
        bound = 0.5 if args.child == "wide" else 0.10
        result = upload.upload_vhd(
            path, blob, workers=args.workers, zero_bound=bound, direct=args.child != "viasdk"
        )
        extra = {
            "skipped": result.skipped_upload, "digest": result.digest,
            "direct": result.direct_requests, "direct_off": result.direct_off,
        }  # fmt: skip
        if result.costs is not None:
            extra["costs"] = {
                "request_ms": result.costs.request_seconds * 1e3,
                "put_mb_s": result.costs.bytes_per_second / 1e6,
                "join_gap": result.costs.join_gap,
                "measured": int(result.costs.measured),
            }
    wall = time.perf_counter() - start
    cpu = time.process_time() - start_cpu
    azurite_cpu = process_cpu(azurite_pid) - start_azurite_cpu
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({
        "wall": wall, "cpu": cpu, "bytes": counter.bytes, "requests": counter.requests,
        "writes": counter.writes, "rss_mb": rss, "azurite_cpu": azurite_cpu, **extra,
    }))  # fmt: skip


# ---------------------------------------------------------------- driver


def measure(method: str, disk: Path, blob: str, ctx: dict[str, Any], ranges: Path | None) -> dict:
    cmd = [
        sys.executable, __file__, "--child", method, "--endpoint", ctx["endpoint"],
        "--key", ctx["key"], "--ca", ctx["ca"], "--path", str(disk), "--blob", blob,
        "--workers", str(ctx["workers"]), "--azurite-pid", str(ctx["azurite_pid"]),
    ]  # fmt: skip
    if ranges is not None:
        cmd += ["--ranges", str(ranges)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{method} failed:\n{done.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def bench_disk(kind: str, disk: Path, ctx: dict[str, Any], methods: list[str]) -> dict:
    """Measure every method on one disk; returns the figures and the disk's facts."""
    from azure.storage.blob import ContainerClient

    container = ContainerClient(
        ctx["endpoint"], "bench", credential={"account_name": ACCOUNT, "account_key": ctx["key"]},
        connection_verify=ctx["ca"],
    )  # fmt: skip
    pages = page_runs(disk)
    chunks = chunk_runs(disk)
    facts = {
        "size": disk.stat().st_size,
        "nonzero": sum(e - s for s, e in pages),
        "runs": len(pages),
        "chunks": len(chunks),
        "allocated": disk.stat().st_blocks * 512,
    }
    files = {}
    for name, ranges in (("loop-pages", pages), ("loop-chunks", chunks)):
        files[name] = ctx["scratch"] / f"{kind}-{name}.json"
        files[name].write_text(json.dumps(ranges))
    results: dict[str, dict] = {}
    for method in methods:
        blob = f"{kind}-batchimage.vhd" if method == "again" else f"{kind}-{method}.vhd"
        results[method] = measure(method, disk, blob, ctx, files.get(method))
        print(f"  {kind} {method:12s} {fmt_row(results[method])}", flush=True)
        if not (method == "batchimage" and "again" in methods):  # `again` re-uses that blob
            container.delete_blob(blob)
    for path in files.values():
        path.unlink()
    return {"facts": facts, "results": results}


def fmt_row(r: dict) -> str:
    row = (
        f"wall {r['wall']:6.2f} s  cpu {r['cpu']:6.2f} s  "
        + (f"azurite cpu {r['azurite_cpu']:6.2f} s  " if "azurite_cpu" in r else "")
        + f"sent {r['bytes'] / 1e6:8.1f} MB  "
        f"requests {r['requests']:6d}  writes {r['writes']:5d}  rss {r['rss_mb']:5.0f} MB"
    )
    if "costs" in r:
        c = r["costs"]
        row += (
            f"  fit {c['request_ms']:.1f} ms/request, {c['put_mb_s']:.1f} MB/s a put: joins "
            f"gaps <= {c['join_gap'] / 1e3:.0f} kB{'' if c.get('measured', 1) else ' (prior)'}"
        )
    return row


def start_azurite(scratch: Path) -> tuple[Any, dict[str, Any]]:
    import trustme

    from batchimage.sandbox.azurite import Azurite

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    ca.cert_pem.write_to_path(str(scratch / "ca.pem"))
    cert.private_key_pem.write_to_path(str(scratch / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(scratch / "cert.pem"))
    key = base64.b64encode(hashlib.sha512(ACCOUNT.encode()).digest()).decode()
    service = Azurite(
        location=scratch / "azurite", accounts={ACCOUNT: key},
        cert=scratch / "cert.pem", key=scratch / "key.pem",
    )  # fmt: skip
    service.start()
    ctx = {
        "endpoint": service.blob_endpoint(ACCOUNT), "key": key, "ca": str(scratch / "ca.pem"),
        "azurite_pid": service.process.pid,  # node, Azurite's one process
    }  # fmt: skip
    from azure.storage.blob import ContainerClient

    ContainerClient(
        ctx["endpoint"], "bench", credential={"account_name": ACCOUNT, "account_key": key},
        connection_verify=ctx["ca"],
    ).create_container()  # fmt: skip
    return service, ctx


def median_figures(rounds: list[dict]) -> dict[str, dict[str, Any]]:
    """Per method: the median of each figure over the rounds (of a count: a count measured,
    the lower middle one, so an even number of rounds still gives a whole number)."""
    out: dict[str, dict[str, Any]] = {}
    for method in rounds[0]["results"]:
        rows = [r["results"][method] for r in rounds]
        times = [key for key in TIMES if all(key in row for row in rows)]
        out[method] = {key: statistics.median(row[key] for row in rows) for key in times}
        out[method] |= {key: statistics.median_low(row[key] for row in rows) for key in COUNTS}
        costs = [row["costs"] for row in rows if "costs" in row]
        if costs:
            out[method]["costs"] = {
                key: statistics.median(c[key] for c in costs) for key in costs[0]
            }
    return out


TIMES = ("wall", "cpu", "rss_mb", "azurite_cpu")
COUNTS = ("bytes", "requests", "writes")


def summary(kind: str, facts: dict, res: dict[str, dict[str, Any]], rounds: int) -> list[str]:
    """Ratios of batchimage's upload to each baseline, from the medians of `rounds` rounds."""
    lines = [
        f"{kind}: {facts['size'] / 2**30:.2f} GiB, non-zero {facts['nonzero'] / 1e6:.1f} MB in "
        f"{facts['runs']} page runs / {facts['chunks']} non-zero 4 MiB chunks "
        f"(medians of {rounds} round(s))",
    ]
    for method, row in res.items():
        lines.append(f"  {method:12s} {fmt_row(row)}")
    for variant in ("batchimage", "viasdk", "nodigest", "wide"):
        if variant not in res:
            continue
        ours = res[variant]
        parts = [f"bytes {ours['bytes'] / facts['nonzero']:.4f}x non-zero"]
        if "sdk" in res:
            parts.append(
                f"vs sdk: wall {ours['wall'] / res['sdk']['wall']:.2f}x, CPU "
                f"{ours['cpu'] / res['sdk']['cpu']:.3f}x (1/{res['sdk']['cpu'] / ours['cpu']:.1f})"
            )
        loops = [loop for loop in ("loop-pages", "loop-chunks") if loop in res]
        for loop in loops:
            parts.append(f"vs {loop}: wall {ours['wall'] / res[loop]['wall']:.2f}x")
        if loops:
            fastest = min(loops, key=lambda loop: res[loop]["wall"])
            parts.append(
                f"vs the fastest loop ({fastest}): {ours['wall'] / res[fastest]['wall']:.2f}x"
            )
        parts.append(f"peak RSS {ours['rss_mb']:.0f} MB")
        lines.append(f"  {variant}: " + "; ".join(parts))
    if "again" in res:
        lines.append(f"  re-upload: {res['again']['writes']:.0f} writes")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gib", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--kinds", default="a,b,c,d")
    parser.add_argument("--files", type=int, default=10_000, help="small files on disk d")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--tree", type=Path, help="folder for disk b (default: a stdlib copy)")
    parser.add_argument("--scratch", type=Path, help="scratch folder (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the disks and Azurite data")
    parser.add_argument("--json", type=Path, help="also write all figures here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    for hidden in ("--endpoint", "--key", "--ca", "--path", "--blob", "--ranges", "--azurite-pid"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    size = int(args.size_gib * 2**30) // MIB * MIB
    scratch = Path(args.scratch or tempfile.mkdtemp(prefix="vhd-bench-"))
    scratch.mkdir(parents=True, exist_ok=True)
    service, ctx = start_azurite(scratch)
    ctx.update(workers=args.workers, scratch=scratch)
    methods = args.methods.split(",")
    report: dict[str, Any] = {"workers": args.workers, "cpus": os.cpu_count(), "runs": []}
    try:
        for kind in args.kinds.split(","):
            disk = scratch / f"{kind}.vhd"
            began = time.perf_counter()
            note = ""
            if kind == "a":
                make_random_chunks(disk, size, 0.30, seed=7)
            elif kind == "b":
                note = make_ext4(disk, size, scratch, args.tree)
            elif kind == "c":
                make_random_chunks(disk, 8 * size, 0.01, seed=11)
            elif kind == "d":
                note = make_small_files(disk, size, scratch, args.files, seed=13)
            print(f"disk {kind}: made in {time.perf_counter() - began:.1f} s {note}", flush=True)
            kind_methods = ["batchimage", "again"] if kind == "c" else methods
            rounds = []
            for round_number in range(args.repeat):
                order = kind_methods if round_number % 2 == 0 else _rotated(kind_methods)
                data = bench_disk(kind, disk, ctx, order)
                data.update(kind=kind, note=note, round=round_number, load=os.getloadavg())
                rounds.append(data)
                report["runs"].append(data)
            medians = median_figures(rounds)
            report.setdefault("medians", {})[kind] = {"facts": rounds[0]["facts"], **medians}
            print("\n".join(summary(kind, rounds[0]["facts"], medians, len(rounds))), flush=True)
            if not args.keep:
                disk.unlink()
    finally:
        service.stop()
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


def _rotated(methods: list[str]) -> list[str]:
    """The measured methods in another order (`again` stays after `batchimage`)."""
    main_methods = [m for m in methods if m != "again"]
    order = main_methods[::-1]
    if "again" in methods:
        order.insert(order.index("batchimage") + 1, "again")
    return order


if __name__ == "__main__":
    main()
