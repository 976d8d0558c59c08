"""The Delta lake at 1,000 and 10,000 portfolio versions: v6core.lake against bare deltalake calls.

Run: `python bench/bench_lake.py [--versions 1000 10000] [--repeat 5] [--keep DIR]`.
One lake grows through the sizes (snapshots from tests/lake/factory.py, 7-8 legs each, written by
LakeWriter.write_snapshot with aggregates appended every 10 snapshots). At each size it prints:

- commit latency p50/p95 of LakeWriter.write_snapshot against a bare `write_deltalake(mode="overwrite")`
  of the same rows, interleaved every 5th snapshot into a baseline table;
- opening the latest and an old version, the date-time lookup, a diff and the long-range Greeks
  query, each against the bare deltalake call reading the same data (median of --repeat runs);
  "cold" means a fresh LakeReader (first history read included), "warm" its cached second call;
- `_delta_log` bytes before and after maintenance, on a copy of the lake: checkpoint + compact +
  vacuum at the tables' own retention, then with the log retention set to 0 h and a checkpoint.

No pass/fail: figures and ratios measured in the same run. 10,000 versions take several minutes
on a busy 2-core machine (progress goes to stderr); `--versions 1000` for a quick run.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import polars as pl
from deltalake import DeltaTable, write_deltalake

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.lake.factory import STEP, T0, snapshot_at  # noqa: E402
from v6core.lake import (  # noqa: E402
    GREEKS_HISTORY, META_TIME, PORTFOLIO, LakeMaintenance, LakeReader, LakeWriter, legs_table, log_size,
)


def median_time(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def row(name: str, ours: float, bare: float) -> None:
    ratio = ours / bare if bare > 0 else float("nan")
    print(f"  {name:<38} {ours * 1000:10.2f} ms   bare {bare * 1000:10.2f} ms   ratio {ratio:7.2f}")


def grow(writer: LakeWriter, baseline: Path, start: int, stop: int) -> tuple[list[float], list[float]]:
    ours, bare = [], []
    for i in range(start, stop):
        snapshot = snapshot_at(i)
        t = time.perf_counter()
        writer.write_snapshot(snapshot)
        ours.append(time.perf_counter() - t)
        if i % 10 == 9:
            writer.flush()
        if i % 5 == 0:
            rows = legs_table(snapshot)
            t = time.perf_counter()
            write_deltalake(str(baseline), rows, mode="overwrite")
            bare.append(time.perf_counter() - t)
        if (i + 1) % 500 == 0:
            print(f"    ... {i + 1:,} versions written", file=sys.stderr, flush=True)
    writer.flush()
    return ours, bare


def bare_version_at(path: Path, when) -> int | None:
    """What a caller without LakeReader does: read the history, pick the last recorded time <= when."""
    best = None
    for entry in DeltaTable(str(path)).history():
        if META_TIME in entry and datetime.fromisoformat(entry[META_TIME]) <= when:
            if best is None or entry["version"] > best:
                best = entry["version"]
    return best


def measure_reads(root: Path, size: int, repeat: int) -> None:
    portfolio = root / PORTFOLIO
    latest, old = size - 1, size // 10
    bare_read = lambda v: pl.from_arrow(DeltaTable(str(portfolio), version=v).to_pyarrow_table())  # noqa: E731

    warm = LakeReader(root, cache_versions=0)
    warm.versions()
    row("open latest version", median_time(repeat, lambda: warm.portfolio(latest)),
        median_time(repeat, lambda: bare_read(latest)))
    row(f"open old version ({old})", median_time(repeat, lambda: warm.portfolio(old)),
        median_time(repeat, lambda: bare_read(old)))

    when = T0 + old * STEP + STEP / 2
    assert warm.version_at(when) == old
    bare_lookup = median_time(max(1, repeat // 2), lambda: bare_version_at(portfolio, when))
    row("date-time lookup, warm reader", median_time(repeat, lambda: warm.version_at(when)), bare_lookup)
    row("date-time lookup, cold reader", median_time(max(1, repeat // 2),
                                                     lambda: LakeReader(root).version_at(when)), bare_lookup)

    row(f"diff {old} -> {latest}", median_time(repeat, lambda: warm.diff(old, latest)),
        median_time(repeat, lambda: (bare_read(old), bare_read(latest))))

    greeks = root / GREEKS_HISTORY
    bare_chart = median_time(repeat, lambda: pl.from_arrow(DeltaTable(str(greeks)).to_pyarrow_table())
                             .filter(pl.col("level") == "total").sort("version"))
    cached = LakeReader(root)
    cached.greeks_history()
    assert cached.greeks_history().height == size
    row("long-range Greeks query, cold reader", median_time(repeat, lambda: LakeReader(root).greeks_history()),
        bare_chart)
    row("long-range Greeks query, warm reader", median_time(repeat, cached.greeks_history), bare_chart)


def measure_maintenance(root: Path, work: Path) -> None:
    copy = work / "maintenance-copy"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(root, copy)
    maintenance = LakeMaintenance(copy)

    def sizes() -> dict[str, int]:
        return {p.name: log_size(p) for p in maintenance.tables()}

    before = sizes()
    t = time.perf_counter()
    maintenance.checkpoint()
    maintenance.compact()
    maintenance.vacuum(dry_run=False)
    routine = sizes()
    routine_s = time.perf_counter() - t
    t = time.perf_counter()
    maintenance.set_log_retention(0)
    maintenance.checkpoint()
    pruned = sizes()
    pruned_s = time.perf_counter() - t
    print("  _delta_log bytes            before   after checkpoint+compact+vacuum   after log retention 0 h")
    for name in before:
        print(f"  {name:<18} {before[name]:>15,} {routine[name]:>33,} {pruned[name]:>25,}")
    print(f"  {'all tables':<18} {sum(before.values()):>15,} {sum(routine.values()):>33,} "
          f"{sum(pruned.values()):>25,}")
    print(f"  maintenance took {routine_s:.1f} s (own retention) and {pruned_s:.1f} s (log pruning)")
    t = time.perf_counter()
    reader = LakeReader(copy)
    latest = reader.portfolio()
    print(f"  after pruning: latest portfolio opens in {(time.perf_counter() - t) * 1000:.1f} ms "
          f"({latest.height} legs); {reader.greeks_history().height:,} Greeks rows kept for charts")
    shutil.rmtree(copy, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", type=Path, default=None, help="build the lake here and keep it")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="v6-bench-lake-"))
    root, baseline = work / "lake", work / "baseline"
    for path in (root, baseline):
        shutil.rmtree(path, ignore_errors=True)
    writer = LakeWriter(root)
    written = 0
    ours: list[float] = []
    bare: list[float] = []
    try:
        for size in sorted(args.versions):
            print(f"\n== {size:,} versions ==", flush=True)
            print(f"  writing versions {written:,}..{size - 1:,}", file=sys.stderr, flush=True)
            o, b = grow(writer, baseline, written, size)
            ours += o
            bare += b
            written = size
            print(f"  commit latency p50 {pct(ours, 0.5) * 1000:.1f} ms  p95 {pct(ours, 0.95) * 1000:.1f} ms   "
                  f"bare p50 {pct(bare, 0.5) * 1000:.1f} ms  p95 {pct(bare, 0.95) * 1000:.1f} ms   "
                  f"ratio p50 {pct(ours, 0.5) / pct(bare, 0.5):.2f}  p95 {pct(ours, 0.95) / pct(bare, 0.95):.2f}"
                  f"   (all {len(ours):,} commits so far)")
            t = time.perf_counter()
            listed = LakeReader(root).versions()
            print(f"  cold version listing: {listed.height:,} versions in {(time.perf_counter() - t) * 1000:.0f} ms")
            measure_reads(root, size, args.repeat)
            measure_maintenance(root, work)
    finally:
        writer.stop()
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
