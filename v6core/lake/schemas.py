"""Table names, Delta properties and Arrow schemas of the lake, its errors, and table-level helpers."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable

from v6core.lake.storage import is_delta_table, lake_root, storage_options


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
META_WRITER = "v6.writer"          # "<host> pid <pid>": which process wrote the version (a shared lake)

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

AGGREGATES_APP_ID = "v6.lake.aggregates"   # Delta txn app id: its version = last portfolio version appended


class LakeError(RuntimeError):
    """A lake operation failed in a way the operator should read about."""


class LakeLockedError(LakeError):
    """Another process holds the lake's writer lock; open it read-only instead."""


class LakeLockLostError(LakeError):
    """The writer lock was lost while held (its lock file deleted or replaced, or its S3 lease
    taken over or not renewed in time): this process no longer writes under it."""


class TableDamagedError(LakeError):
    """A table's log or data files cannot be read; the message names the table and the repair."""


class VersionUnavailableError(LakeError):
    """The version is outside the history or its data files were removed by vacuum."""


def as_utc(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware UTC, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def error_line(exc: BaseException, limit: int = 400) -> str:
    """One line for the operator: the error's type and first line (Delta errors append backtraces)."""
    text = str(exc).strip().splitlines()
    line = f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
    return line if len(line) <= limit else line[:limit - 1] + "…"


def table_path(root: Path | str, name: str) -> Path:
    return lake_root(root) / name


def is_table(path: Path) -> bool:
    return (path / "_delta_log").is_dir() and is_delta_table(path)


def ensure_table(path: Path, schema: pa.Schema, configuration: Mapping[str, str]) -> None:
    """Create an empty table with its schema and properties unless it exists (for appended tables)."""
    if not is_table(path):
        path.mkdir(parents=True, exist_ok=True)
        DeltaTable.create(str(path), schema, mode="ignore", configuration=dict(configuration),
                           storage_options=storage_options(path))


def fsync_commit(path: Path, version: int) -> None:
    """Flush the commit file, the data files it adds and the log folder to stable storage."""
    if not isinstance(path, Path):
        return   # object storage: a completed PUT is durable
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
