"""Explain the P&L between two recorded points of the lake, from the recorded versions only.

`explain(reader, start, end)` compares the two versions directly (start Greeks held over the
whole span); `explain(..., path=True)` explains every pair of consecutive recorded versions in
between and sums them per leg, so each step uses the Greeks recorded at its own start. Both read
nothing but the lake (portfolio versions, fills), so asking again gives the same answer.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import date, datetime, timezone
from pathlib import Path

import polars as pl

from v6core.explain import model as m
from v6core.explain import rollup
from v6core.explain.read import frames_in_order
from v6core.explain.attribution import NEW_YORK, attribute_legs, expiry_close, point_spots
from v6core.explain.revaluation import revalue
from v6core.lake import FILLS, AuditLog, LakeReader

UTC = timezone.utc
Where = int | datetime


def resolve(reader: LakeReader, where: Where) -> int:
    """The snapshot version current at a version number or a tz-aware date-time."""
    versions = reader.versions()
    if versions.height == 0:
        raise ValueError("no snapshots recorded yet")
    if isinstance(where, datetime):
        version = reader.version_at(where)
        if version is None:
            raise ValueError(f"{where.isoformat()} is before the first snapshot")
        return version
    earlier = versions.filter(pl.col("version") <= int(where))["version"]
    if earlier.len() == 0:
        raise ValueError(f"version {where} is before the first snapshot")
    return int(earlier[-1])


_fills_memo: dict[str, tuple[tuple, pl.DataFrame]] = {}
_fills_lock = threading.Lock()


def _log_stamp(root: Path) -> tuple:
    """Changes whenever a commit lands in the fills table's log (a new file changes the folder)."""
    log_dir = root / FILLS / "_delta_log"
    try:
        stat = log_dir.stat()
    except OSError:
        return ("absent",)
    return (stat.st_mtime_ns, stat.st_nlink, stat.st_size)


def read_fills(reader: LakeReader) -> pl.DataFrame:
    """Every recorded fill, oldest first (the `fills` table, read-only); re-read only after a
    commit, so a page asking every refresh costs a stat of the log folder."""
    root = Path(reader.root)
    stamp = _log_stamp(root)
    key = str(root.resolve())
    with _fills_lock:
        memo = _fills_memo.get(key)
        if memo is not None and memo[0] == stamp:
            return memo[1]
    frame = AuditLog(root).fills()
    with _fills_lock:
        _fills_memo[key] = (stamp, frame)
    return frame


def _point(reader: LakeReader, version: int, frame: pl.DataFrame) -> m.Point:
    when = reader.snapshot_info(version)["snapshot_time"]
    pnl = float(frame["unrealized_pnl"].fill_null(0.0).sum()) if frame.height else 0.0
    return m.Point(version, when, pnl)


def _spot_at_expiry(reader: LakeReader):
    def lookup(symbol: str, expiry: date) -> float | None:
        version = reader.version_at(expiry_close(expiry).astimezone(UTC))
        if version is None:
            return None
        return point_spots(reader.portfolio(version)).get(symbol)
    return lookup


def explain_frames(start: pl.DataFrame, end: pl.DataFrame, fills: pl.DataFrame, start_point: m.Point,
                   end_point: m.Point, *, mode: m.Mode = m.Mode.GREEKS, rate: float = 0.04,
                   spot_at_expiry=None) -> m.Explanation:
    """Explain two leg frames already read (the engine under `explain`, and the benchmark's)."""
    legs = _step(start, end, fills, start_point.time, end_point.time, mode, rate, spot_at_expiry)
    return _finish(legs, start_point, end_point, mode, 1)


def _step(start, end, fills, t0, t1, mode, rate, spot_at_expiry) -> pl.DataFrame:
    legs = attribute_legs(start, end, fills, t0, t1, spot_at_expiry)
    return revalue(legs, t0, rate) if mode is m.Mode.REVALUATION else legs


def _finish(legs: pl.DataFrame, start: m.Point, end: m.Point, mode: m.Mode, steps: int,
            step_days: float | None = None) -> m.Explanation:
    book = rollup.book(legs)
    span = (end.time - start.time).total_seconds() / 86400.0 if step_days is None else step_days
    return m.Explanation(start, end, mode, legs, rollup.by_strategy(legs), rollup.by_underlying(legs),
                         book, rollup.warnings(legs, book, span), steps)


_SUMMED = ("fill_quantity", "fills", "actual", "held", *m.COMPONENTS, "commissions", "realized_pnl",
           "approx_spot", "approx_vol", "approx_time", "days")
_FIRST = ("label", "symbol", "strategy_id", "strategy_kind", "sec_type", "expiry", "strike", "right",
          "multiplier", "quantity_start", "mark_start", "spot_start", "iv_start", "contract_delta",
          "contract_gamma", "contract_theta", "contract_vega", "is_call", "held_size")
_LAST = ("quantity_end", "mark_end", "spot_end", "iv_end")


def combine_steps(steps: list[pl.DataFrame]) -> pl.DataFrame:
    """Per-leg sums over consecutive explanations; a leg's status lists its changes in order."""
    if not steps:
        return steps
    frame = pl.concat([s.with_columns(pl.lit(i).alias("_step")) for i, s in enumerate(steps)],
                      how="vertical_relaxed")
    combined = frame.sort("_step", maintain_order=True).group_by("con_id", maintain_order=True).agg(
        *[pl.col(c).first() for c in _FIRST], *[pl.col(c).last() for c in _LAST],
        *[pl.col(c).sum() for c in _SUMMED],
        pl.col("stale_start").any(), pl.col("no_greeks").any(), pl.col("unaccounted").any(),
        pl.col("status").filter(pl.col("status") != m.HELD).unique(maintain_order=True)
        .str.join(" → ").alias("status"),
        pl.col("notes").filter(pl.col("notes") != "").unique(maintain_order=True).str.join("; ").alias("notes"))
    return combined.with_columns(
        pl.when(pl.col("status") == "").then(pl.lit(m.HELD)).otherwise(pl.col("status")).alias("status"))


def explain(reader: LakeReader, start: Where, end: Where, *, mode: m.Mode | str = m.Mode.GREEKS,
            rate: float = 0.04, path: bool = False) -> m.Explanation:
    """P&L between two recorded points (version numbers or tz-aware date-times), by component.

    `path=True` sums the explanations of every consecutive pair of recorded versions between them.
    """
    mode = m.Mode(mode)
    v0, v1 = resolve(reader, start), resolve(reader, end)
    if v1 < v0:
        raise ValueError(f"the end (version {v1}) is before the start (version {v0})")
    fills = read_fills(reader)
    spot_at_expiry = _spot_at_expiry(reader)
    first = reader.portfolio(v0)
    p0 = _point(reader, v0, first)
    if not path or v1 == v0:
        last = reader.portfolio(v1)
        return explain_frames(first, last, fills, p0, _point(reader, v1, last), mode=mode, rate=rate,
                              spot_at_expiry=spot_at_expiry)
    versions = reader.versions().filter(pl.col("version").is_between(v0, v1))
    numbers, times = versions["version"].to_list(), versions["snapshot_time"].to_list()
    steps, longest = [], 0.0
    previous = first
    for i, (_, current) in enumerate(frames_in_order(reader, numbers[1:]), start=1):
        steps.append(_step(previous, current, fills, times[i - 1], times[i], mode, rate, spot_at_expiry))
        longest = max(longest, (times[i] - times[i - 1]).total_seconds() / 86400.0)
        previous = current
    return _finish(combine_steps(steps), p0, _point(reader, v1, previous), mode, len(steps), longest)


def trading_day_span(reader: LakeReader) -> tuple[int, int] | None:
    """(first version of the latest version's New York trading day, latest version), or None."""
    versions = reader.versions()
    if versions.height == 0:
        return None
    day = versions["snapshot_time"][-1].astimezone(NEW_YORK).date()
    local = versions["snapshot_time"].dt.convert_time_zone(NEW_YORK.key).dt.date()
    today = versions.filter(local == day)
    return int(today["version"][0]), int(today["version"][-1])


class ExplainCache:
    """Explanations shared by every session, keyed by what determines them (the versions, the
    mode, the rate, the span kind and how many fills are recorded): a rerun or a second tab
    asking the same question costs a dictionary lookup."""

    def __init__(self, size: int = 16) -> None:
        self._items: OrderedDict[tuple, m.Explanation] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def get(self, reader: LakeReader, start: Where, end: Where, *, mode: m.Mode | str = m.Mode.GREEKS,
            rate: float = 0.04, path: bool = False) -> m.Explanation:
        v0, v1 = resolve(reader, start), resolve(reader, end)
        key = (str(Path(reader.root).resolve()), v0, v1, m.Mode(mode), rate, path, read_fills(reader).height)
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit
        result = explain(reader, v0, v1, mode=mode, rate=rate, path=path)
        with self._lock:
            self._items[key] = result
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return result
