"""Reading the lake: snapshot versions, time travel by version or date-time, diff, long-range aggregates.

A date-time maps to a version through the snapshot times recorded in commit metadata, never file mtimes.
"""

from __future__ import annotations

import json
import threading
from bisect import bisect_right
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
from deltalake import DeltaTable

from v6core.lake.health import raise_damaged
from v6core.lake.maintenance import LakeMaintenance
from v6core.lake.storage import lake_root, open_table, read_frame
from v6core.lake.rows import aggregate_legs
from v6core.lake.schemas import (
    ACCOUNT_HISTORY, ACCOUNT_HISTORY_SCHEMA, GREEKS_HISTORY, GREEKS_HISTORY_SCHEMA, META_ACCOUNT, META_APP,
    META_ID, META_POSITIONS, META_SEQ, META_TIME, METRIC_COLUMNS, PORTFOLIO, PORTFOLIO_SCHEMA, UTC,
    VersionUnavailableError, as_utc, is_table, table_path,
)


@dataclass(slots=True, frozen=True)
class PortfolioDiff:
    """What changed between two portfolio versions.

    legs: con_id, label, symbol, strategy_id, quantity_before, quantity_after, quantity_change,
          change ("opened" | "closed" | "resized"), only legs that changed.
    by_strategy / by_underlying / totals: key columns, then `<metric>_before`, `<metric>_after`,
          `<metric>_change` for every metric in METRIC_COLUMNS, and status
          ("new" | "gone" | "kept").
    """

    v1: int
    v2: int
    time1: datetime | None
    time2: datetime | None
    legs: pl.DataFrame
    by_strategy: pl.DataFrame
    by_underlying: pl.DataFrame
    totals: pl.DataFrame

    def legs_with(self, change: str) -> pl.DataFrame:
        return self.legs.filter(pl.col("change") == change)


def _compare(before: pl.DataFrame, after: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    cols = ["key", *keys, "legs", *METRIC_COLUMNS]
    b = before.select(cols).rename({c: f"{c}_before" for c in ["legs", *METRIC_COLUMNS]} | {k: f"{k}_b" for k in keys})
    a = after.select(cols).rename({c: f"{c}_after" for c in ["legs", *METRIC_COLUMNS]} | {k: f"{k}_a" for k in keys})
    j = b.join(a, on="key", how="full", coalesce=True, maintain_order="left_right")
    status = (pl.when(pl.col("legs_before").is_null()).then(pl.lit("new"))
              .when(pl.col("legs_after").is_null()).then(pl.lit("gone")).otherwise(pl.lit("kept")))
    out = [pl.col("key"), *[pl.coalesce(f"{k}_a", f"{k}_b").alias(k) for k in keys], status.alias("status")]
    for c in METRIC_COLUMNS:
        out += [pl.col(f"{c}_before").fill_null(0.0), pl.col(f"{c}_after").fill_null(0.0),
                (pl.col(f"{c}_after").fill_null(0.0) - pl.col(f"{c}_before").fill_null(0.0)).alias(f"{c}_change")]
    return j.select(out)


def diff_frames(before: pl.DataFrame, after: pl.DataFrame) -> tuple[pl.DataFrame, ...]:
    """(legs, by_strategy, by_underlying, totals) differences between two leg frames."""
    leg_keys = ["con_id", "label", "symbol", "strategy_id"]
    b = before.select(*leg_keys, pl.col("quantity").alias("quantity_before"))
    a = after.select(*leg_keys, pl.col("quantity").alias("quantity_after"))
    legs = (b.join(a, on="con_id", how="full", coalesce=True, suffix="_after", maintain_order="left_right")
            .with_columns([pl.coalesce(f"{k}_after", k).alias(k) for k in leg_keys[1:]])
            .with_columns(pl.col("quantity_before").fill_null(0.0), pl.col("quantity_after").fill_null(0.0))
            .with_columns((pl.col("quantity_after") - pl.col("quantity_before")).alias("quantity_change"))
            .with_columns(pl.when(pl.col("quantity_before") == 0).then(pl.lit("opened"))
                          .when(pl.col("quantity_after") == 0).then(pl.lit("closed"))
                          .otherwise(pl.lit("resized")).alias("change"))
            .filter(pl.col("quantity_change") != 0)
            .select(*leg_keys, "quantity_before", "quantity_after", "quantity_change", "change"))
    agg_b, agg_a = aggregate_legs(before), aggregate_legs(after)
    parts = []
    for level, keys in (("strategy", ["underlying", "kind"]), ("underlying", []), ("total", [])):
        parts.append(_compare(agg_b.filter(pl.col("level") == level), agg_a.filter(pl.col("level") == level), keys))
    by_strategy = parts[0].rename({"key": "strategy_id"})
    by_underlying = parts[1].rename({"key": "underlying"})
    return legs, by_strategy, by_underlying, parts[2].drop("key")


class LakeReader:
    """Read-only view of a lake; safe while another thread or process writes it.

    History and aggregate frames are cached by table version and refreshed incrementally;
    portfolio frames of past versions never change, so a small LRU keeps recent ones.
    """

    def __init__(self, root: Path | str, *, cache_versions: int = 32) -> None:
        """`cache_versions`: how many portfolio frames the LRU keeps (0 disables it)."""
        self.root = lake_root(root)
        self._lock = threading.RLock()
        self._history_dt: DeltaTable | None = None
        self._history: list[dict[str, Any]] = []        # newest last
        self._history_version = -1
        self._versions_frame: pl.DataFrame | None = None
        self._times: list[datetime] = []
        self._frames: OrderedDict[int, pl.DataFrame] = OrderedDict()
        self._cache_versions = cache_versions
        self._agg: dict[str, tuple[int, pl.DataFrame]] = {}
        self._agg_tables: dict[str, DeltaTable] = {}

    # -- versions
    def _refresh_history(self) -> None:
        path = table_path(self.root, PORTFOLIO)
        if self._history_dt is None:
            if not is_table(path):
                return
            self._history_dt = open_table(path)
        else:
            self._history_dt.update_incremental()
        latest = self._history_dt.version()
        if latest == self._history_version:
            return
        new = self._history_dt.history(limit=None if self._history_version < 0 else latest - self._history_version)
        new = sorted((e for e in new if int(e["version"]) > self._history_version), key=lambda e: int(e["version"]))
        self._history.extend(e for e in new if META_TIME in e)
        self._history_version = latest
        self._versions_frame = None

    def versions(self) -> pl.DataFrame:
        """Snapshot commits, oldest first: version, snapshot_time, seq, snapshot_id, positions_version,
        app_version, legs, committed_at (the commit's own clock, for information only)."""
        with self._lock:
            try:
                self._refresh_history()
            except Exception as exc:
                self._history_dt = None
                raise_damaged(table_path(self.root, PORTFOLIO), exc)
            if self._versions_frame is None:
                h = self._history
                self._versions_frame = pl.DataFrame({
                    "version": [int(e["version"]) for e in h],
                    "snapshot_time": [datetime.fromisoformat(e[META_TIME]) for e in h],
                    "seq": [int(e[META_SEQ]) for e in h],
                    "snapshot_id": [e.get(META_ID, "") for e in h],
                    "positions_version": [int(e.get(META_POSITIONS, 0)) for e in h],
                    "app_version": [e.get(META_APP, "") for e in h],
                    "legs": [int((e.get("operationMetrics") or {}).get("num_added_rows", 0)) for e in h],
                    "committed_at": [datetime.fromtimestamp(e["timestamp"] / 1000, UTC) for e in h],
                }, schema={"version": pl.Int64, "snapshot_time": pl.Datetime("us", "UTC"), "seq": pl.Int64,
                           "snapshot_id": pl.String, "positions_version": pl.Int64, "app_version": pl.String,
                           "legs": pl.Int64, "committed_at": pl.Datetime("us", "UTC")})
                self._times = [datetime.fromisoformat(e[META_TIME]) for e in h]
            return self._versions_frame

    def latest_version(self) -> int | None:
        v = self.versions()
        return int(v["version"][-1]) if v.height else None

    def version_at(self, when: datetime) -> int | None:
        """The version current at `when` (the last snapshot recorded at or before it); None before the first."""
        when = as_utc(when, "when")
        frame = self.versions()
        i = bisect_right(self._times, when)
        return int(frame["version"][i - 1]) if i else None

    def snapshot_info(self, version: int) -> dict[str, Any]:
        """The versions() row of a snapshot version, including its recorded account values."""
        with self._lock:
            self.versions()
            entry = next((e for e in self._history if int(e["version"]) == version), None)
        if entry is None:
            raise VersionUnavailableError(f"version {version} is not a recorded snapshot")
        return {"version": version, "snapshot_time": datetime.fromisoformat(entry[META_TIME]),
                "seq": int(entry[META_SEQ]), "snapshot_id": entry.get(META_ID, ""),
                "app_version": entry.get(META_APP, ""), "account": json.loads(entry.get(META_ACCOUNT, "{}"))}

    # -- portfolio
    def portfolio(self, version: int | None = None) -> pl.DataFrame:
        """Legs as of `version` (default: the table's current state), in the snapshot's order."""
        path = table_path(self.root, PORTFOLIO)
        # Open first, ask "is there a table?" only on failure: on S3 that question is a listing
        # of the log (1,000+ objects after a few days), paid on every open before.
        if version is None:
            try:
                return pl.from_arrow(open_table(path).to_pyarrow_table())
            except Exception as exc:
                if not is_table(path):
                    return pl.from_arrow(PORTFOLIO_SCHEMA.empty_table())
                raise_damaged(path, exc)
        with self._lock:
            cached = self._frames.get(version)
            if cached is not None:
                self._frames.move_to_end(version)
                return cached
        if version < 0:
            raise VersionUnavailableError(f"version {version} does not exist in {path}")
        try:
            frame = pl.from_arrow(open_table(path, version).to_pyarrow_table())   # one log replay, no dataset layer
        except FileNotFoundError as exc:
            raise VersionUnavailableError(
                f"version {version}: its data files were removed by vacuum ({exc})") from None
        except Exception as exc:  # deltalake raises its own errors for versions beyond the log
            if not is_table(path):
                raise VersionUnavailableError(f"version {version} does not exist in {path}") from None
            raise VersionUnavailableError(f"version {version} cannot be opened: {exc}") from None
        with self._lock:
            self._frames[version] = frame
            while self._frames and len(self._frames) > self._cache_versions:
                self._frames.popitem(last=False)
        return frame

    def diff(self, v1: int, v2: int) -> PortfolioDiff:
        before, after = self.portfolio(v1), self.portfolio(v2)
        legs, by_strategy, by_underlying, totals = diff_frames(before, after)
        t1 = before["snapshot_time"][0] if before.height else self._time_of(v1)
        t2 = after["snapshot_time"][0] if after.height else self._time_of(v2)
        return PortfolioDiff(v1, v2, t1, t2, legs, by_strategy, by_underlying, totals)

    def _time_of(self, version: int) -> datetime | None:
        frame = self.versions().filter(pl.col("version") <= version)
        return frame["snapshot_time"][-1] if frame.height else None

    # -- long-range aggregates
    def _aggregate(self, name: str, schema: pa.Schema) -> pl.DataFrame:
        path = table_path(self.root, name)
        if not is_table(path):
            return pl.from_arrow(schema.empty_table())
        with self._lock:
            try:
                dt = self._agg_tables.get(name)
                if dt is None:
                    dt = self._agg_tables[name] = open_table(path)
                else:
                    dt.update_incremental()
                cached = self._agg.get(name)
                if cached and cached[0] == dt.version():
                    return cached[1]
                frame = pl.from_arrow(dt.to_pyarrow_table()).sort("version", maintain_order=True)
            except Exception as exc:
                self._agg_tables.pop(name, None)
                raise_damaged(path, exc)
            self._agg[name] = (dt.version(), frame)
            return frame

    def greeks_history(self, level: str = "total", key: str | None = None,
                       since: datetime | None = None) -> pl.DataFrame:
        """Aggregate Greeks/P&L per snapshot for `level` ("total", "underlying", "strategy"), oldest first."""
        frame = self._aggregate(GREEKS_HISTORY, GREEKS_HISTORY_SCHEMA).filter(pl.col("level") == level)
        if key is not None:
            frame = frame.filter(pl.col("key") == key)
        if since is not None:
            frame = frame.filter(pl.col("snapshot_time") >= as_utc(since, "since"))
        return frame

    def account_history(self, since: datetime | None = None) -> pl.DataFrame:
        frame = self._aggregate(ACCOUNT_HISTORY, ACCOUNT_HISTORY_SCHEMA)
        if since is not None:
            frame = frame.filter(pl.col("snapshot_time") >= as_utc(since, "since"))
        return frame

    @property
    def maintenance(self) -> LakeMaintenance:
        return LakeMaintenance(self.root)
