"""Delta Lake history of v6: schemas, the snapshot writer, time travel, diff, audit and maintenance.

Layout under the lake root (one folder per Delta table):
- `portfolio`       leg-level state, rewritten (mode="overwrite") as ONE commit per snapshot, so the
                    Delta version of a snapshot commit is its history version; each commit's custom
                    metadata records the snapshot id, seq, time and the app version.
- `greeks_history`  per-snapshot aggregates (total / per underlying / per strategy), appended in batches;
- `account_history` per-snapshot account values; both survive vacuum of `portfolio` for long charts.
- `orders_audit`, `fills`  append-only (`delta.appendOnly`) with ten-year retention, written by AuditLog.
- `signals`         owned by the signals service; maintenance treats it like any other table.

One process writes (an flock on `<root>/.writer.lock`); any number read. Times are tz-aware UTC and a
date-time maps to a version through the snapshot times recorded in commit metadata, never file mtimes.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
import uuid
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

from v6core import __version__
from v6core.models import ConnState, FillView, PortfolioSnapshot

log = logging.getLogger(__name__)

UTC = timezone.utc
TS = pa.timestamp("us", tz="UTC")

PORTFOLIO = "portfolio"
GREEKS_HISTORY = "greeks_history"
ACCOUNT_HISTORY = "account_history"
ORDERS_AUDIT = "orders_audit"
FILLS = "fills"
SIGNALS = "signals"

LOCK_FILE = ".writer.lock"

# Commit-metadata keys of a portfolio snapshot commit (maintenance commits carry none of them).
META_ID = "v6.snapshot_id"
META_SEQ = "v6.snapshot_seq"
META_TIME = "v6.snapshot_time"
META_POSITIONS = "v6.positions_version"
META_APP = "v6.app_version"
META_ACCOUNT = "v6.account"

# Checkpoints every 100 commits keep opening any version at "checkpoint + <100 JSON files";
# without an explicit log retention Delta drops log entries after 30 days, which would cut history.
HISTORY_TABLE_CONFIG: dict[str, str] = {
    "delta.checkpointInterval": "100",
    "delta.logRetentionDuration": "interval 365 days",
    "delta.deletedFileRetentionDuration": "interval 7 days",
}
AUDIT_TABLE_CONFIG: dict[str, str] = {
    "delta.appendOnly": "true",
    "delta.checkpointInterval": "100",
    "delta.logRetentionDuration": "interval 3650 days",
    "delta.deletedFileRetentionDuration": "interval 3650 days",
}

GREEK_COLUMNS = ("delta", "gamma", "theta", "vega", "dollar_delta", "beta_delta")
PNL_COLUMNS = ("unrealized_pnl", "realized_pnl", "daily_pnl", "market_value")
METRIC_COLUMNS = GREEK_COLUMNS + PNL_COLUMNS

PORTFOLIO_SCHEMA = pa.schema([
    pa.field("snapshot_seq", pa.int64(), nullable=False),
    pa.field("snapshot_time", TS, nullable=False),
    pa.field("account", pa.string()),
    pa.field("con_id", pa.int64(), nullable=False),
    pa.field("symbol", pa.string()),
    pa.field("local_symbol", pa.string()),
    pa.field("label", pa.string()),
    pa.field("sec_type", pa.string()),
    pa.field("currency", pa.string()),
    pa.field("expiry", pa.date32()),
    pa.field("strike", pa.float64()),
    pa.field("right", pa.string()),
    pa.field("multiplier", pa.float64()),
    pa.field("quantity", pa.float64()),
    pa.field("avg_price", pa.float64()),
    pa.field("mark", pa.float64()),
    pa.field("market_value", pa.float64()),
    pa.field("unrealized_pnl", pa.float64()),
    pa.field("realized_pnl", pa.float64()),
    pa.field("daily_pnl", pa.float64()),
    pa.field("dte", pa.int32()),
    pa.field("iv", pa.float64()),
    pa.field("und_price", pa.float64()),
    pa.field("contract_delta", pa.float64()),
    pa.field("contract_gamma", pa.float64()),
    pa.field("contract_theta", pa.float64()),
    pa.field("contract_vega", pa.float64()),
    pa.field("greeks_source", pa.string()),
    pa.field("delta", pa.float64()),
    pa.field("gamma", pa.float64()),
    pa.field("theta", pa.float64()),
    pa.field("vega", pa.float64()),
    pa.field("dollar_delta", pa.float64()),
    pa.field("beta_delta", pa.float64()),
    pa.field("quote_time", TS),
    pa.field("strategy_id", pa.string()),
    pa.field("strategy_kind", pa.string()),
    pa.field("flags", pa.list_(pa.string())),
    pa.field("stale", pa.bool_()),
])

GREEKS_HISTORY_SCHEMA = pa.schema([
    pa.field("version", pa.int64(), nullable=False),
    pa.field("snapshot_seq", pa.int64(), nullable=False),
    pa.field("snapshot_time", TS, nullable=False),
    pa.field("level", pa.string(), nullable=False),       # "total" | "underlying" | "strategy"
    pa.field("key", pa.string(), nullable=False),         # "TOTAL" | symbol | strategy_id
    pa.field("underlying", pa.string()),
    pa.field("kind", pa.string()),
    pa.field("legs", pa.int64()),
    *[pa.field(c, pa.float64()) for c in METRIC_COLUMNS],
])

ACCOUNT_HISTORY_SCHEMA = pa.schema([
    pa.field("version", pa.int64(), nullable=False),
    pa.field("snapshot_seq", pa.int64(), nullable=False),
    pa.field("snapshot_time", TS, nullable=False),
    pa.field("account", pa.string()),
    pa.field("currency", pa.string()),
    pa.field("net_liquidation", pa.float64()),
    pa.field("total_cash", pa.float64()),
    pa.field("buying_power", pa.float64()),
    pa.field("available_funds", pa.float64()),
    pa.field("excess_liquidity", pa.float64()),
    pa.field("init_margin", pa.float64()),
    pa.field("maint_margin", pa.float64()),
    pa.field("gross_position_value", pa.float64()),
    pa.field("daily_pnl", pa.float64()),
    pa.field("unrealized_pnl", pa.float64()),
    pa.field("realized_pnl", pa.float64()),
    pa.field("portfolio_unrealized_pnl", pa.float64()),
    pa.field("legs", pa.int64()),
    pa.field("connection_state", pa.string()),
])

AUDIT_SCHEMA = pa.schema([
    pa.field("event_id", pa.string(), nullable=False),
    pa.field("ts", TS, nullable=False),
    pa.field("ticket_id", pa.string(), nullable=False),
    pa.field("event", pa.string(), nullable=False),
    pa.field("session_id", pa.string()),
    pa.field("order_id", pa.int64()),
    pa.field("perm_id", pa.int64()),
    pa.field("status", pa.string()),
    pa.field("detail", pa.string()),
    pa.field("app_version", pa.string()),
])

FILLS_SCHEMA = pa.schema([
    pa.field("ts", TS, nullable=False),
    pa.field("exec_id", pa.string(), nullable=False),
    pa.field("ticket_id", pa.string()),
    pa.field("order_id", pa.int64()),
    pa.field("perm_id", pa.int64()),
    pa.field("con_id", pa.int64()),
    pa.field("symbol", pa.string()),
    pa.field("local_symbol", pa.string()),
    pa.field("side", pa.string()),
    pa.field("quantity", pa.float64()),
    pa.field("price", pa.float64()),
    pa.field("commission", pa.float64()),
    pa.field("realized_pnl", pa.float64()),
    pa.field("account", pa.string()),
])

_AGG_APP_ID = "v6.lake.aggregates"   # Delta txn app id: its version = last portfolio version appended


class LakeError(RuntimeError):
    """A lake operation failed in a way the operator should read about."""


class LakeLockedError(LakeError):
    """Another process holds the lake's writer lock; open it read-only instead."""


class VersionUnavailableError(LakeError):
    """The version is outside the history or its data files were removed by vacuum."""


def _as_utc(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware UTC, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def table_path(root: Path | str, name: str) -> Path:
    return Path(root) / name


def is_table(path: Path) -> bool:
    return (path / "_delta_log").is_dir() and DeltaTable.is_deltatable(str(path))


def ensure_table(path: Path, schema: pa.Schema, configuration: Mapping[str, str]) -> None:
    """Create an empty table with its schema and properties unless it exists (for appended tables)."""
    if not is_table(path):
        path.mkdir(parents=True, exist_ok=True)
        DeltaTable.create(str(path), schema, mode="ignore", configuration=dict(configuration))


def _fsync_commit(path: Path, version: int) -> None:
    """Flush the commit file, the data files it adds and the log folder to stable storage."""
    commit = path / "_delta_log" / f"{version:020d}.json"
    targets = [commit]
    try:
        for line in commit.read_text(encoding="utf-8").splitlines():
            add = json.loads(line).get("add") if line.strip() else None
            if add and "path" in add:
                targets.append(path / add["path"])
    except OSError:
        return
    for target in [*targets, path / "_delta_log", path]:
        try:
            fd = os.open(target, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ----------------------------------------------------------------------------------- conversions

def snapshot_id(snapshot: PortfolioSnapshot) -> str:
    """Stable id of a snapshot: its seq plus its build time (seq restarts with the runtime)."""
    built = _as_utc(snapshot.built_at, "snapshot.built_at")
    return f"{snapshot.seq}@{built.strftime('%Y%m%dT%H%M%S.%fZ')}"


def legs_table(snapshot: PortfolioSnapshot) -> pa.Table:
    """The `portfolio` rows of a snapshot: one per leg, in the snapshot's order."""
    built = _as_utc(snapshot.built_at, "snapshot.built_at")
    kinds = {s.strategy_id: s.kind for s in snapshot.strategies}
    cols: dict[str, list[Any]] = {f.name: [] for f in PORTFOLIO_SCHEMA}
    for leg in snapshot.legs:
        c, g, pg = leg.contract, leg.greeks, leg.position_greeks
        row = {
            "snapshot_seq": snapshot.seq, "snapshot_time": built, "account": leg.account,
            "con_id": c.con_id, "symbol": c.symbol, "local_symbol": c.local_symbol, "label": c.label,
            "sec_type": c.sec_type, "currency": c.currency, "expiry": c.expiry, "strike": c.strike,
            "right": c.right, "multiplier": c.multiplier, "quantity": leg.quantity,
            "avg_price": leg.avg_price, "mark": leg.mark, "market_value": leg.market_value,
            "unrealized_pnl": leg.unrealized_pnl, "realized_pnl": leg.realized_pnl,
            "daily_pnl": leg.daily_pnl, "dte": leg.dte,
            "iv": g.iv if g else None, "und_price": g.und_price if g else None,
            "contract_delta": g.delta if g else None, "contract_gamma": g.gamma if g else None,
            "contract_theta": g.theta if g else None, "contract_vega": g.vega if g else None,
            "greeks_source": g.source.value if g else None,
            "delta": pg.delta, "gamma": pg.gamma, "theta": pg.theta, "vega": pg.vega,
            "dollar_delta": pg.dollar_delta, "beta_delta": pg.beta_delta,
            "quote_time": _as_utc(leg.quote_time, "leg.quote_time"),
            "strategy_id": leg.strategy_id, "strategy_kind": kinds.get(leg.strategy_id, ""),
            "flags": list(leg.flags), "stale": leg.stale,
        }
        for name, value in row.items():
            cols[name].append(value)
    return pa.table(cols, schema=PORTFOLIO_SCHEMA)


def _metric_sums() -> list[pl.Expr]:
    return [pl.col(c).fill_null(0.0).sum().alias(c) for c in METRIC_COLUMNS]


def aggregate_legs(legs: pl.DataFrame) -> pl.DataFrame:
    """Totals, per-underlying and per-strategy sums of position Greeks and P&L of one leg frame.

    Position Greeks of flagged legs are already zero (see models.Leg), so plain sums match the
    live totals. Columns: level, key, underlying, kind, legs, then METRIC_COLUMNS.
    """
    total = legs.select(pl.lit("total").alias("level"), pl.lit("TOTAL").alias("key"),
                        pl.lit(None, pl.String).alias("underlying"), pl.lit(None, pl.String).alias("kind"),
                        pl.len().cast(pl.Int64).alias("legs"), *_metric_sums())
    by_und = (legs.group_by("symbol", maintain_order=True)
              .agg(pl.len().cast(pl.Int64).alias("legs"), *_metric_sums())
              .select(pl.lit("underlying").alias("level"), pl.col("symbol").alias("key"),
                      pl.col("symbol").alias("underlying"), pl.lit(None, pl.String).alias("kind"),
                      "legs", *METRIC_COLUMNS))
    by_strat = (legs.group_by("strategy_id", maintain_order=True)
                .agg(pl.col("symbol").first().alias("underlying"),
                     pl.col("strategy_kind").first().alias("kind"),
                     pl.len().cast(pl.Int64).alias("legs"), *_metric_sums())
                .select(pl.lit("strategy").alias("level"), pl.col("strategy_id").alias("key"),
                        "underlying", "kind", "legs", *METRIC_COLUMNS))
    return pl.concat([total, by_und, by_strat], how="vertical")


def _account_meta(snapshot: PortfolioSnapshot) -> dict[str, Any]:
    a = snapshot.account
    return {
        "account": a.account, "currency": a.currency, "net_liquidation": a.net_liquidation,
        "total_cash": a.total_cash, "buying_power": a.buying_power,
        "available_funds": a.available_funds, "excess_liquidity": a.excess_liquidity,
        "init_margin": a.init_margin, "maint_margin": a.maint_margin,
        "gross_position_value": a.gross_position_value, "daily_pnl": a.daily_pnl,
        "unrealized_pnl": a.unrealized_pnl, "realized_pnl": a.realized_pnl,
        "portfolio_unrealized_pnl": snapshot.unrealized_pnl, "legs": len(snapshot.legs),
        "connection_state": snapshot.connection.state.value,
    }


# ----------------------------------------------------------------------------------- writer lock

class _WriterLock:
    """flock on `<root>/.writer.lock`: the kernel releases it when the holder dies, even by kill -9."""

    def __init__(self, root: Path) -> None:
        self.path = root / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise LakeLockedError(
                f"lake {self.path.parent} is locked by pid {holder}; opening read-only") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None


# ----------------------------------------------------------------------------------- writer

@dataclass(slots=True)
class _Pending:
    version: int
    seq: int
    time: datetime
    aggregates: pl.DataFrame
    account: dict[str, Any]


class LakeWriter:
    """Writes portfolio snapshots (one Delta version each) and batched aggregates on its own thread.

    `source()` must be cheap (runtime.snapshot is a reference swap); the thread polls it every
    `poll` seconds and, while connected, writes when `positions_version` changed or `interval`
    seconds passed since the last write. `start()` (or the first write) takes the lake's writer
    lock: a second writer on the same lake, in any process, gets LakeLockedError.
    """

    def __init__(self, root: Path | str, source: Callable[[], PortfolioSnapshot | None] | None = None,
                 interval: float = 60.0, *, poll: float = 1.0, batch_size: int = 10,
                 batch_seconds: float = 120.0, compact_every: int = 50) -> None:
        self.root = Path(root)
        self.source = source
        self.interval = interval
        self.poll = poll
        self.batch_size = batch_size
        self.batch_seconds = batch_seconds
        self.compact_every = compact_every          # appends between compactions of an aggregate table
        self._appends: dict[str, int] = {}
        self._lock = _WriterLock(self.root)
        self._write_lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pending: list[_Pending] = []
        self._pending_since: float | None = None
        self._last_write_mono: float | None = None
        self.last_error: str = ""
        self._last_version: int | None = None
        self._last_time: datetime | None = None
        self._last_positions: int | None = None
        self._dt: DeltaTable | None = None          # the portfolio table, updated incrementally

    def acquire(self) -> None:
        """Take the lake's writer lock (LakeLockedError if another writer holds it) and resume
        from what earlier writers recorded, so a restart never writes a snapshot twice."""
        if self._lock.held:
            return
        self._lock.acquire()
        self._dt = None
        self._last_version, self._last_time, self._last_positions = self._recorded_tail()
        self._pending = self._unaggregated()
        if self._pending:
            self._pending_since = time.monotonic()
            try:
                self.flush()
            except Exception as exc:  # noqa: BLE001 - kept pending; the writer's ticks retry
                log.error("lake: appending recovered aggregates failed: %s", exc)

    def _unaggregated(self, limit: int = 100) -> list[_Pending]:
        """Snapshot versions whose aggregate batch died with an earlier writer (up to `limit`).

        Rebuilt from the recorded legs and the account values in the commit metadata, so a crash
        costs the charts nothing as long as the portfolio version itself was committed.
        """
        portfolio = table_path(self.root, PORTFOLIO)
        if self._last_version is None:
            return []
        done = self._last_version
        for name in (GREEKS_HISTORY, ACCOUNT_HISTORY):
            path = table_path(self.root, name)
            version = DeltaTable(str(path)).transaction_version(_AGG_APP_ID) if is_table(path) else None
            done = min(done, -1 if version is None else version)
        if done >= self._last_version:
            return []
        entries = DeltaTable(str(portfolio)).history(limit=min(self._last_version - done, limit) + 50)
        entries = sorted((e for e in entries if META_TIME in e and int(e["version"]) > done),
                         key=lambda e: int(e["version"]))[-limit:]
        pending = []
        for entry in entries:
            version = int(entry["version"])
            try:
                legs = pl.read_delta(str(portfolio), version=version)
            except Exception:  # noqa: BLE001 - vacuumed: that version's aggregates are gone for good
                continue
            pending.append(_Pending(version, int(entry[META_SEQ]), datetime.fromisoformat(entry[META_TIME]),
                                    aggregate_legs(legs), json.loads(entry.get(META_ACCOUNT, "{}"))))
        if pending:
            log.warning("lake: re-appending aggregates of %d snapshot(s) lost by an earlier writer", len(pending))
        return pending

    # -- state recorded by earlier writers (so a restart resumes without duplicating)
    def _recorded_tail(self) -> tuple[int | None, datetime | None, int | None]:
        path = table_path(self.root, PORTFOLIO)
        if not is_table(path):
            return None, None, None
        dt = DeltaTable(str(path))
        for entry in dt.history(limit=50):
            if META_TIME in entry:
                return (int(entry["version"]), datetime.fromisoformat(entry[META_TIME]),
                        int(entry.get(META_POSITIONS, 0)))
        # Only maintenance commits left in the log (pruned): the rows still carry their snapshot time.
        times = pl.from_arrow(dt.to_pyarrow_table(columns=["snapshot_time"]))["snapshot_time"]
        return (dt.version(), times.max(), None) if len(times) else (None, None, None)

    def _latest_commit(self, path: Path) -> tuple[int, str | None]:
        """(latest version, its snapshot id): we hold the lock, so an incremental update suffices."""
        if self._dt is None:
            self._dt = DeltaTable(str(path))
        else:
            self._dt.update_incremental()
        entry = self._dt.history(limit=1)[0]
        return self._dt.version(), entry.get(META_ID)

    @property
    def last_version(self) -> int | None:
        return self._last_version

    @property
    def last_snapshot_time(self) -> datetime | None:
        return self._last_time

    # -- lifecycle
    def start(self) -> None:
        if self.source is None:
            raise ValueError("LakeWriter.start needs a source callable")
        self.acquire()
        if self._thread and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="v6-lake-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop polling, append what is batched, release the lock."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        try:
            self.flush()
        except Exception as exc:  # noqa: BLE001 - the batch stays lost; stop must not raise
            log.error("lake: final aggregate append failed: %s", exc)
        self._lock.release()

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                self.tick()
                self.last_error = ""
            except Exception as exc:  # noqa: BLE001 - keep recording; the next tick retries
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("lake writer tick failed")

    def tick(self) -> int | None:
        """One poll: write a snapshot if due, append the batch if due. Returns the version written."""
        snapshot = self.source() if self.source else None
        written = None
        now = time.monotonic()
        # Only connected snapshots are history: before the first connection (or after a drop) the
        # legs are empty or stale, and recording them would show positions that never were.
        if snapshot is not None and snapshot.connection.state in (ConnState.CONNECTED, ConnState.DEGRADED):
            changed = snapshot.positions_version != self._last_positions
            due = self._last_write_mono is None or now - self._last_write_mono >= self.interval
            if changed or due:
                written = self.write_snapshot(snapshot)
        if self._pending and (len(self._pending) >= self.batch_size
                              or now - (self._pending_since or now) >= self.batch_seconds):
            self.flush()
        return written

    # -- writes
    def write_snapshot(self, snapshot: PortfolioSnapshot) -> int:
        """Commit the snapshot as one `portfolio` version and return it.

        A snapshot not newer than the last recorded one (a retry, a replay after restart) is not
        written again: the version already holding it (or the latest) is returned.
        """
        built = _as_utc(snapshot.built_at, "snapshot.built_at")
        with self._write_lock:
            self.acquire()
            if self._last_time is not None and built <= self._last_time:
                return self._last_version  # type: ignore[return-value]
            sid = snapshot_id(snapshot)
            data = legs_table(snapshot)
            account = _account_meta(snapshot)
            meta = {
                META_ID: sid, META_SEQ: str(snapshot.seq), META_TIME: built.isoformat(),
                META_POSITIONS: str(snapshot.positions_version), META_APP: __version__,
                META_ACCOUNT: json.dumps(account),
            }
            path = table_path(self.root, PORTFOLIO)
            path.mkdir(parents=True, exist_ok=True)
            try:
                write_deltalake(str(path), data, mode="overwrite", configuration=HISTORY_TABLE_CONFIG,
                                commit_properties=CommitProperties(custom_metadata=meta))
            except Exception:
                # The commit may have landed before the error surfaced: look before anyone retries.
                if self._latest_commit(path)[1] != sid:
                    raise
            version, latest_id = self._latest_commit(path)
            if latest_id != sid:
                raise LakeError(f"snapshot {sid} is not the latest portfolio commit after writing it")
            self._last_version, self._last_time = version, built
            self._last_positions = snapshot.positions_version
            self._last_write_mono = time.monotonic()
            self._pending.append(_Pending(version, snapshot.seq, built,
                                          aggregate_legs(pl.from_arrow(data)), account))
            if self._pending_since is None:
                self._pending_since = time.monotonic()
            return version

    def flush(self) -> None:
        """Append the batched aggregate rows (idempotent through the Delta txn version)."""
        with self._write_lock:
            if not self._pending:
                return
            batch = list(self._pending)
            greeks = pl.concat([
                p.aggregates.select(pl.lit(p.version, pl.Int64).alias("version"),
                                    pl.lit(p.seq, pl.Int64).alias("snapshot_seq"),
                                    pl.lit(p.time, pl.Datetime("us", "UTC")).alias("snapshot_time"),
                                    pl.all())
                for p in batch])
            accounts = pa.Table.from_pylist(
                [{"version": p.version, "snapshot_seq": p.seq, "snapshot_time": p.time, **p.account}
                 for p in batch], schema=ACCOUNT_HISTORY_SCHEMA)
            self._append_once(GREEKS_HISTORY, greeks.to_arrow().cast(GREEKS_HISTORY_SCHEMA),
                              GREEKS_HISTORY_SCHEMA)
            self._append_once(ACCOUNT_HISTORY, accounts, ACCOUNT_HISTORY_SCHEMA)
            del self._pending[:len(batch)]
            self._pending_since = time.monotonic() if self._pending else None

    def _append_once(self, name: str, rows: pa.Table, schema: pa.Schema) -> None:
        path = table_path(self.root, name)
        ensure_table(path, schema, HISTORY_TABLE_CONFIG)
        done = DeltaTable(str(path)).transaction_version(_AGG_APP_ID)
        if done is not None:
            rows = rows.filter(pc.greater(rows["version"], pa.scalar(done, pa.int64())))
        if rows.num_rows == 0:
            return
        last = max(rows["version"].to_pylist())
        write_deltalake(str(path), rows, mode="append",
                        commit_properties=CommitProperties(
                            app_transactions=[Transaction(app_id=_AGG_APP_ID, version=last)]))
        self._appends[name] = self._appends.get(name, 0) + 1
        if self._appends[name] % self.compact_every == 0:
            # Small appends pile up as small files and slow the long-range chart query down.
            try:
                DeltaTable(str(path)).optimize.compact()
            except Exception as exc:  # noqa: BLE001 - the rows are committed; compaction can wait
                log.warning("lake: compacting %s failed: %s", name, exc)

    def __enter__(self) -> LakeWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ----------------------------------------------------------------------------------- reader

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
        self.root = Path(root)
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
            self._history_dt = DeltaTable(str(path))
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
            self._refresh_history()
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
        when = _as_utc(when, "when")
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
        if version is None:
            if not is_table(path):
                return pl.from_arrow(PORTFOLIO_SCHEMA.empty_table())
            return pl.read_delta(str(path))
        with self._lock:
            cached = self._frames.get(version)
            if cached is not None:
                self._frames.move_to_end(version)
                return cached
        if version < 0 or not is_table(path):
            raise VersionUnavailableError(f"version {version} does not exist in {path}")
        try:
            frame = pl.read_delta(str(path), version=version)
        except FileNotFoundError as exc:
            raise VersionUnavailableError(
                f"version {version}: its data files were removed by vacuum ({exc})") from None
        except Exception as exc:  # deltalake raises its own errors for versions beyond the log
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
            dt = self._agg_tables.get(name)
            if dt is None:
                dt = self._agg_tables[name] = DeltaTable(str(path))
            else:
                dt.update_incremental()
            cached = self._agg.get(name)
            if cached and cached[0] == dt.version():
                return cached[1]
            frame = pl.from_arrow(dt.to_pyarrow_table()).sort("version", maintain_order=True)
            self._agg[name] = (dt.version(), frame)
            return frame

    def greeks_history(self, level: str = "total", key: str | None = None,
                       since: datetime | None = None) -> pl.DataFrame:
        """Aggregate Greeks/P&L per snapshot for `level` ("total", "underlying", "strategy"), oldest first."""
        frame = self._aggregate(GREEKS_HISTORY, GREEKS_HISTORY_SCHEMA).filter(pl.col("level") == level)
        if key is not None:
            frame = frame.filter(pl.col("key") == key)
        if since is not None:
            frame = frame.filter(pl.col("snapshot_time") >= _as_utc(since, "since"))
        return frame

    def account_history(self, since: datetime | None = None) -> pl.DataFrame:
        frame = self._aggregate(ACCOUNT_HISTORY, ACCOUNT_HISTORY_SCHEMA)
        if since is not None:
            frame = frame.filter(pl.col("snapshot_time") >= _as_utc(since, "since"))
        return frame

    @property
    def maintenance(self) -> LakeMaintenance:
        return LakeMaintenance(self.root)


# ----------------------------------------------------------------------------------- audit

@dataclass(slots=True, frozen=True)
class AuditEvent:
    """One transition of an order ticket; `event_id` makes a retried append idempotent."""

    ticket_id: str
    event: str                          # drafted, checked, previewed, confirmed, sent, status, fill, ...
    ts: datetime = field(default_factory=lambda: datetime.now(UTC))
    session_id: str = ""
    order_id: int | None = None
    perm_id: int | None = None
    status: str | None = None
    detail: str = "{}"                  # JSON text
    app_version: str = __version__
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass(slots=True, frozen=True)
class FillRow:
    ts: datetime
    exec_id: str
    ticket_id: str
    order_id: int | None
    perm_id: int | None
    con_id: int
    symbol: str
    local_symbol: str
    side: str                           # BOT / SLD
    quantity: float
    price: float
    commission: float | None = None
    realized_pnl: float | None = None
    account: str = ""

    @classmethod
    def from_view(cls, fill: FillView, account: str = "") -> FillRow:
        c = fill.contract
        return cls(fill.time, fill.exec_id, fill.order_ref, fill.order_id, fill.perm_id, c.con_id,
                   c.symbol, c.local_symbol, fill.side, fill.quantity, fill.price, fill.commission,
                   fill.realized_pnl, account)


class _AppendOnlyTable:
    """An append-only table whose rows are unique by `key`; appends are synchronous and fsynced."""

    def __init__(self, path: Path, schema: pa.Schema, key: str) -> None:
        self.path, self.schema, self.key = path, schema, key
        self._lock = threading.Lock()
        self._dt: DeltaTable | None = None
        self._keys: set[str] = set()
        self._keys_version = -1

    def _table(self) -> DeltaTable:
        if self._dt is None:
            ensure_table(self.path, self.schema, AUDIT_TABLE_CONFIG)
            self._dt = DeltaTable(str(self.path))
        else:
            self._dt.update_incremental()
        return self._dt

    def append(self, rows: pa.Table) -> int:
        with self._lock:
            dt = self._table()
            if dt.version() != self._keys_version:
                # Someone else committed, or our last commit's outcome is unknown: re-read the keys.
                keys = dt.to_pyarrow_table(columns=[self.key])[self.key].to_pylist()
                self._keys, self._keys_version = set(keys), dt.version()
            seen = set(self._keys)
            keep = []
            for i, k in enumerate(rows[self.key].to_pylist()):
                if k not in seen:
                    seen.add(k)
                    keep.append(i)
            if not keep:
                return 0
            new = rows.take(keep)
            self._keys_version = -1
            write_deltalake(str(self.path), new, mode="append")
            dt.update_incremental()
            _fsync_commit(self.path, dt.version())
            self._keys.update(new[self.key].to_pylist())
            self._keys_version = dt.version()
            return new.num_rows

    def read(self) -> pl.DataFrame:
        if not is_table(self.path):
            return pl.from_arrow(self.schema.empty_table())
        return pl.read_delta(str(self.path))


class AuditLog:
    """Durable, synchronous, append-only `orders_audit` and `fills` (dedup by event_id / exec_id)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._audit = _AppendOnlyTable(table_path(self.root, ORDERS_AUDIT), AUDIT_SCHEMA, "event_id")
        self._fills = _AppendOnlyTable(table_path(self.root, FILLS), FILLS_SCHEMA, "exec_id")

    def append_audit(self, rows: Sequence[AuditEvent]) -> int:
        """Commit the events (fsynced) before returning; events already recorded are skipped."""
        table = pa.Table.from_pylist([{
            "event_id": e.event_id, "ts": _as_utc(e.ts, "AuditEvent.ts"), "ticket_id": e.ticket_id,
            "event": e.event, "session_id": e.session_id, "order_id": e.order_id, "perm_id": e.perm_id,
            "status": e.status, "detail": e.detail, "app_version": e.app_version} for e in rows],
            schema=AUDIT_SCHEMA)
        return self._audit.append(table)

    def append_fills(self, rows: Iterable[FillRow | FillView], account: str = "") -> int:
        """Commit new fills (fsynced); an exec_id already recorded is never written twice."""
        records = [r if isinstance(r, FillRow) else FillRow.from_view(r, account) for r in rows]
        table = pa.Table.from_pylist([{
            "ts": _as_utc(r.ts, "FillRow.ts"), "exec_id": r.exec_id, "ticket_id": r.ticket_id,
            "order_id": r.order_id, "perm_id": r.perm_id, "con_id": r.con_id, "symbol": r.symbol,
            "local_symbol": r.local_symbol, "side": r.side, "quantity": r.quantity, "price": r.price,
            "commission": r.commission, "realized_pnl": r.realized_pnl, "account": r.account}
            for r in records], schema=FILLS_SCHEMA)
        return self._fills.append(table)

    def audit(self, ticket_id: str | None = None) -> pl.DataFrame:
        frame = self._audit.read()
        if ticket_id is not None:
            frame = frame.filter(pl.col("ticket_id") == ticket_id)
        return frame.sort("ts", maintain_order=True)

    def fills(self, day: date | None = None) -> pl.DataFrame:
        """Fills, oldest first; `day` keeps those executed on that UTC date."""
        frame = self._fills.read()
        if day is not None:
            frame = frame.filter(pl.col("ts").dt.date() == day)
        return frame.sort("ts", maintain_order=True)


# ----------------------------------------------------------------------------------- maintenance

@dataclass(slots=True, frozen=True)
class MaintenanceResult:
    table: str
    action: str                         # checkpoint | compact | vacuum
    log_bytes_before: int
    log_bytes_after: int
    detail: str
    files: tuple[str, ...] = ()         # vacuum: files deleted (or that would be, on a dry run)


Progress = Callable[[int, int, str], None]


def log_size(path: Path) -> int:
    """Bytes in a table's `_delta_log`."""
    log_dir = path / "_delta_log"
    return sum(p.stat().st_size for p in log_dir.rglob("*") if p.is_file()) if log_dir.is_dir() else 0


def _hours(interval: str | None, default_hours: float) -> float:
    """Hours of a Delta 'interval N unit' property."""
    if not interval:
        return default_hours
    parts = interval.split()
    if len(parts) == 3 and parts[0] == "interval":
        n, unit = float(parts[1]), parts[2].rstrip("s")
        scale = {"second": 1 / 3600, "minute": 1 / 60, "hour": 1, "day": 24, "week": 168}.get(unit)
        if scale is not None:
            return n * scale
    return default_hours


class LakeMaintenance:
    """Checkpoint, compaction and vacuum over every table folder under the lake root."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def tables(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.iterdir() if p.is_dir() and is_table(p))

    def retention(self) -> pl.DataFrame:
        """Per table: the retention vacuum and log cleanup keep (hours), and the log size."""
        rows = []
        for path in self.tables():
            conf = DeltaTable(str(path)).metadata().configuration
            rows.append({
                "table": path.name,
                "deleted_file_retention_hours": _hours(conf.get("delta.deletedFileRetentionDuration"), 168.0),
                "log_retention_hours": _hours(conf.get("delta.logRetentionDuration"), 720.0),
                "append_only": conf.get("delta.appendOnly", "false") == "true",
                "checkpoint_interval": int(conf.get("delta.checkpointInterval", "100")),
                "log_bytes": log_size(path),
            })
        return pl.DataFrame(rows, schema={"table": pl.String, "deleted_file_retention_hours": pl.Float64,
                                          "log_retention_hours": pl.Float64, "append_only": pl.Boolean,
                                          "checkpoint_interval": pl.Int64, "log_bytes": pl.Int64})

    def _each(self, action: str, work: Callable[[Path], tuple[str, tuple[str, ...]]],
              progress: Progress | None) -> list[MaintenanceResult]:
        tables, results = self.tables(), []
        for i, path in enumerate(tables):
            if progress:
                progress(i, len(tables), path.name)
            before = log_size(path)
            detail, files = work(path)
            results.append(MaintenanceResult(path.name, action, before, log_size(path), detail, files))
        if progress:
            progress(len(tables), len(tables), "done")
        return results

    def checkpoint(self, progress: Progress | None = None) -> list[MaintenanceResult]:
        """Write a checkpoint at the latest version, then drop log entries past the log retention."""
        def work(path: Path) -> tuple[str, tuple[str, ...]]:
            dt = DeltaTable(str(path))
            dt.create_checkpoint()
            dt.cleanup_metadata()
            return f"checkpoint at version {dt.version()}", ()
        return self._each("checkpoint", work, progress)

    def set_log_retention(self, hours: float, progress: Progress | None = None) -> list[MaintenanceResult]:
        """Change how long log entries are kept (a table property; one metadata commit per table).

        Versions whose log entries are dropped can no longer be opened; the aggregate tables keep
        their long-range rows. Append-only audit tables keep their own (ten-year) retention.
        """
        def work(path: Path) -> tuple[str, tuple[str, ...]]:
            dt = DeltaTable(str(path))
            if dt.metadata().configuration.get("delta.appendOnly") == "true":
                return "skipped: append-only audit table keeps its retention", ()
            seconds = max(0, int(hours * 3600))
            dt.alter.set_table_properties({"delta.logRetentionDuration": f"interval {seconds} seconds"})
            return f"log retention set to {hours:g} h", ()
        return self._each("log retention", work, progress)

    def compact(self, progress: Progress | None = None) -> list[MaintenanceResult]:
        """Merge small files of appended tables. `portfolio` is skipped: each version is one file."""
        def work(path: Path) -> tuple[str, tuple[str, ...]]:
            if path.name == PORTFOLIO:
                return "skipped: one file per version, nothing to merge", ()
            m = DeltaTable(str(path)).optimize.compact()
            return f"{m.get('numFilesRemoved', 0)} files merged into {m.get('numFilesAdded', 0)}", ()
        return self._each("compact", work, progress)

    def vacuum(self, retention_hours: float | None = None, dry_run: bool = True,
               progress: Progress | None = None) -> list[MaintenanceResult]:
        """Delete files unreferenced for longer than the retention (per table default if None).

        An explicit retention may be shorter than a history table's default (old portfolio versions
        then become unreadable; the aggregates keep the long-range charts). Append-only audit tables
        never go below their own retention.
        """
        def work(path: Path) -> tuple[str, tuple[str, ...]]:
            dt = DeltaTable(str(path))
            conf = dt.metadata().configuration
            table_hours = _hours(conf.get("delta.deletedFileRetentionDuration"), 168.0)
            hours = table_hours if retention_hours is None else float(retention_hours)
            if conf.get("delta.appendOnly") == "true":
                hours = max(hours, table_hours)
            files = dt.vacuum(retention_hours=int(hours), dry_run=dry_run,
                              enforce_retention_duration=False)
            verb = "would delete" if dry_run else "deleted"
            return f"keeps {hours:g} h; {verb} {len(files)} files", tuple(files)
        return self._each("vacuum", work, progress)


def results_frame(results: Sequence[MaintenanceResult]) -> pl.DataFrame:
    return pl.DataFrame([{
        "table": r.table, "action": r.action, "log_bytes_before": r.log_bytes_before,
        "log_bytes_after": r.log_bytes_after, "detail": r.detail, "files": len(r.files)} for r in results],
        schema={"table": pl.String, "action": pl.String, "log_bytes_before": pl.Int64,
                "log_bytes_after": pl.Int64, "detail": pl.String, "files": pl.Int64})


if __name__ == "__main__":
    from v6core.lake_cli import main

    raise SystemExit(main())
