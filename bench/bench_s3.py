"""The lake on a moto S3 server next to local disk, in one run: commit p50/p95 and open-version latency,
v6 (LakeWriter / LakeReader) against bare deltalake on the same table.

    python bench/bench_s3.py [--versions 150] [--samples 20] [--build writer|copy]

Builds a `portfolio` table of N snapshot versions through LakeWriter. `--build writer` (the default
below 1,000 versions) builds it on each store; `--build copy` (the default from 1,000) builds it
once on local disk, where a commit costs ~30 ms instead of 0.35-0.6 s on moto, and uploads the lake
byte for byte to the moto bucket (data files first, then the log; the same objects
`python -m v6core.lake copy` would put there, uploaded by parallel threads): both stores then hold
the same Delta table, every version and checkpoint as LakeWriter wrote them. Then it times,
interleaved so both see the same table and machine load:
- commit: `LakeWriter.write_snapshot` vs a bare `write_deltalake(uri, mode="overwrite")` of the same rows
  (and, for reference, "bare kept": `write_deltalake(dt)` on a DeltaTable kept open and updated
  incrementally, which is what v6 does since it holds the writer lock);
- open an old version: a fresh `LakeReader(root).portfolio(v)` vs `DeltaTable(uri, version=v).to_pyarrow_table()`;
- open the latest the same way.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deltalake import DeltaTable, write_deltalake  # noqa: E402

from tests.lake.factory import snapshot_at  # noqa: E402
from v6core.lake import LOCK_FILE, PORTFOLIO, LakeReader, LakeWriter, legs_table, table_path  # noqa: E402
from v6core.lake.s3store import s3_client  # noqa: E402
from v6core.lake.storage import S3Root, s3_options, storage_options  # noqa: E402


def _ms(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000


def _moto() -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, f"http://127.0.0.1:{port}"
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise SystemExit("moto server did not start: pip install 'moto[server]>=5'")
            time.sleep(0.2)


def build(name: str, root, versions: int) -> float:
    """N snapshot versions through LakeWriter (its aggregates appended when it stops); seconds taken."""
    writer = LakeWriter(root)
    t0 = time.perf_counter()
    for i in range(versions):
        writer.write_snapshot(snapshot_at(i))
        if (i + 1) % 1000 == 0:
            print(f"{name}: {i + 1} versions in {time.perf_counter() - t0:.0f} s", flush=True)
    writer.stop()
    return time.perf_counter() - t0


def upload(source: Path, dest: S3Root, workers: int = 8) -> float:
    """Every object of the local lake to `dest`, as `python -m v6core.lake copy` orders them (data
    files, then each log in version order, `_last_checkpoint` last), each stage by parallel threads
    (nobody reads the bucket meanwhile); seconds taken. The writer lock stays behind."""
    t0 = time.perf_counter()
    files = [p for p in sorted(source.rglob("*")) if p.is_file() and p.name != LOCK_FILE]
    stages: list[list[Path]] = [[], [], []]
    for p in files:
        rel = p.relative_to(source).as_posix()
        stages[0 if "/_delta_log/" not in f"/{rel}" else 2 if rel.endswith("_last_checkpoint") else 1].append(p)
    local = threading.local()

    def put(path: Path) -> None:
        if not hasattr(local, "client"):
            local.client = s3_client(dest)
        local.client.upload_file(str(path), dest.bucket, f"{dest.key}/{path.relative_to(source).as_posix()}")

    with ThreadPoolExecutor(workers) as pool:
        for stage in stages:
            list(pool.map(put, stage))
    print(f"uploaded {len(files)} objects in {time.perf_counter() - t0:.0f} s", flush=True)
    return time.perf_counter() - t0


def bench_store(name: str, root, versions: int, samples: int, built: float | None = None) -> dict[str, tuple[float, float]]:
    """Time v6 against bare deltalake on `root`; builds the table first unless `built` says it was."""
    build_s = build(name, root, versions) if built is None else built
    writer = LakeWriter(root)
    path = table_path(root, PORTFOLIO)
    uri, options = str(path), storage_options(path)
    ours, bare, kept = [], [], []
    kept_dt = DeltaTable(uri, storage_options=options)
    for k in range(samples):
        snap = snapshot_at(versions + k)
        start = time.perf_counter()
        writer.write_snapshot(snap)
        ours.append(time.perf_counter() - start)
        data = legs_table(snap)
        start = time.perf_counter()
        write_deltalake(uri, data, mode="overwrite", storage_options=options)
        bare.append(time.perf_counter() - start)
        data = legs_table(snapshot_at(versions + samples + k))
        start = time.perf_counter()
        kept_dt.update_incremental()
        write_deltalake(kept_dt, data, mode="overwrite")
        kept.append(time.perf_counter() - start)
    writer.stop()
    latest = DeltaTable(uri, storage_options=options).version()
    rng = random.Random(7)
    old = [rng.randrange(0, versions // 2) for _ in range(samples)]
    open_ours, open_bare, latest_ours, latest_bare = [], [], [], []
    for v in old:
        start = time.perf_counter()
        LakeReader(root).portfolio(v)
        open_ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        DeltaTable(uri, version=v, storage_options=options).to_pyarrow_table()
        open_bare.append(time.perf_counter() - start)
        start = time.perf_counter()
        LakeReader(root).portfolio()
        latest_ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        DeltaTable(uri, storage_options=options).to_pyarrow_table()
        latest_bare.append(time.perf_counter() - start)
    how = "" if built is None else " (on local disk, then uploaded)"
    print(f"{name}: built {versions} versions{how} in {build_s:.1f} s ({build_s / versions * 1000:.0f} ms each); "
          f"table now at version {latest}; load average {_load()}", flush=True)
    return {"commit v6": _ms(ours), "commit bare": _ms(bare), "commit bare kept": _ms(kept), "open old v6": _ms(open_ours),
            "open old bare": _ms(open_bare), "open latest v6": _ms(latest_ours),
            "open latest bare": _ms(latest_bare)}


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=150)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--lake-dir", type=Path, default=None,
                        help="with --build copy: build the local lake here and keep it; a later run "
                             "reuses it (the benchmark's samples add versions to it each run)")
    parser.add_argument("--build", choices=("writer", "copy"), default=None,
                        help="writer: build on each store; copy: build locally, upload (default from 1,000 versions)")
    args = parser.parse_args()
    mode = args.build or ("copy" if args.versions >= 1000 else "writer")
    proc, endpoint = _moto()
    try:
        options = s3_options(endpoint, "us-east-1", "bench", "bench-secret")
        s3 = S3Root("s3://v6-bench/lake", options)
        s3_client(s3).create_bucket(Bucket="v6-bench")
        with tempfile.TemporaryDirectory() as tmp:
            local = (args.lake_dir or Path(tmp)) / "lake"
            if mode == "writer":
                results = {"local disk": bench_store("local disk", local, args.versions, args.samples),
                           "moto S3": bench_store("moto S3", s3, args.versions, args.samples)}
            else:
                kept = local / PORTFOLIO / "_delta_log"
                if kept.is_dir() and DeltaTable(str(local / PORTFOLIO)).version() >= args.versions - 1:
                    built = 0.0
                    print(f"local disk: reusing {local} at version {DeltaTable(str(local / PORTFOLIO)).version()}")
                else:
                    built = build("local disk", local, args.versions)
                upload(local, s3)
                expected = DeltaTable(str(local / PORTFOLIO)).version()
                latest = DeltaTable(str(table_path(s3, PORTFOLIO)),
                                    storage_options=storage_options(table_path(s3, PORTFOLIO))).version()
                if latest != expected:
                    raise SystemExit(f"moto S3: the uploaded table is at version {latest}, not {expected}")
                results = {"local disk": bench_store("local disk", local, args.versions, args.samples, built),
                           "moto S3": bench_store("moto S3", s3, args.versions, args.samples, built)}
    finally:
        proc.terminate()
        proc.wait(10)
    print(f"\n{args.versions} versions ({mode} build), {args.samples} samples each (ms, p50 / p95); "
          f"load average at the end {_load()}")
    print(f"{'':18}" + "".join(f"{store:>22}" for store in results))
    for metric in next(iter(results.values())):
        print(f"{metric:18}" + "".join(f"{r[metric][0]:>12.1f} / {r[metric][1]:>7.1f}" for r in results.values()))
    print("\nratio v6 / bare (p50)")
    for store, r in results.items():
        print(f"{store:12} commit {r['commit v6'][0] / r['commit bare'][0]:.2f}x "
              f"(vs bare kept {r['commit v6'][0] / r['commit bare kept'][0]:.2f}x)   "
              f"open old {r['open old v6'][0] / r['open old bare'][0]:.2f}x   "
              f"open latest {r['open latest v6'][0] / r['open latest bare'][0]:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
