"""The `signals` Delta table: append-only history of every analysis, accepted and rejected.

Written with deltalake (explicit arrow schema, UTC timestamps, log retention, automatic
checkpoints), read with polars. Appends are serialised by a lock so the Streamlit sessions of one
process never race each other.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterable

import polars as pl
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, write_deltalake

from v6core.lake import is_table
from v6core.signals.schema import Action, Confidence, SignalRecord, Status

TABLE_NAME = "signals"
TABLE_CONFIGURATION = {
    "delta.checkpointInterval": "25",  # Delta checkpoints by itself, as the lake's tables do
    "delta.logRetentionDuration": "interval 90 days",
    "delta.deletedFileRetentionDuration": "interval 7 days",
}

_STRINGS = pa.list_(pa.string())
SIGNALS_SCHEMA = pa.schema([
    pa.field("record_id", pa.string(), nullable=False),
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("symbol", pa.string(), nullable=False),
    pa.field("status", pa.string(), nullable=False),
    pa.field("analyst", pa.string(), nullable=False),
    pa.field("prompt_hash", pa.string(), nullable=False),
    pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("action", pa.string()),
    pa.field("confidence", pa.string()),
    pa.field("confidence_score", pa.float64()),
    pa.field("reasoning", pa.string()),
    pa.field("key_factors", _STRINGS),
    pa.field("trend", pa.string()),
    pa.field("support", pa.float64()),
    pa.field("resistance", pa.float64()),
    pa.field("entry", pa.float64()),
    pa.field("stop", pa.float64()),
    pa.field("target", pa.float64()),
    pa.field("risk_reward", pa.float64()),
    pa.field("timeframes", _STRINGS),
    pa.field("reference_price", pa.float64()),
    pa.field("reject_reason", pa.string()),
    pa.field("raw_answer", pa.string()),
    pa.field("flags", _STRINGS),
    pa.field("attempts", pa.int32(), nullable=False),
    pa.field("final", pa.bool_(), nullable=False),
    # Derived from the fields above, stored so that the table itself says what a row is to
    # anyone reading it (added by schema merge to tables written before they existed).
    pa.field("state", pa.string()),
    pa.field("actionable", pa.bool_()),
    pa.field("not_actionable_reason", pa.string()),
])
_COLUMNS = SIGNALS_SCHEMA.names
_DERIVED_COLUMNS = ("state", "actionable", "not_actionable_reason")
_TUPLE_COLUMNS = ("key_factors", "timeframes", "flags")


def record_to_row(record: SignalRecord) -> dict[str, Any]:
    row = {name: getattr(record, name) for name in _COLUMNS}
    for name in ("status", "action", "confidence", "state"):
        row[name] = None if row[name] is None else row[name].value
    for name in _TUPLE_COLUMNS:
        row[name] = list(row[name])
    return row


def row_to_record(row: dict[str, Any]) -> SignalRecord:
    values = {name: row.get(name) for name in _COLUMNS if name not in _DERIVED_COLUMNS}
    values["status"] = Status(values["status"])
    values["action"] = None if values["action"] is None else Action(values["action"])
    values["confidence"] = None if values["confidence"] is None else Confidence(values["confidence"])
    for name in _TUPLE_COLUMNS:
        values[name] = tuple(values[name] or ())
    for name in ("reasoning", "reject_reason", "raw_answer"):
        values[name] = values[name] or ""
    return SignalRecord(**values)


def _derived(record: SignalRecord) -> dict[str, Any]:
    return {"state": record.state.value, "actionable": record.actionable,
            "not_actionable_reason": record.not_actionable_reason}


def empty_frame() -> pl.DataFrame:
    return pl.DataFrame(pl.from_arrow(SIGNALS_SCHEMA.empty_table()))


class SignalStore:
    def __init__(self, lake_root: Path) -> None:
        self.path = Path(lake_root) / TABLE_NAME
        self._lock = threading.Lock()

    def exists(self) -> bool:
        return is_table(self.path)

    def append(self, records: Iterable[SignalRecord]) -> int | None:
        """Append records in one commit; returns the table version written (None if nothing)."""
        rows = [record_to_row(r) for r in records]
        if not rows:
            return None
        table = pa.Table.from_pylist(rows, schema=SIGNALS_SCHEMA)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            creating = not self.exists()
            write_deltalake(
                str(self.path), table, mode="append",
                configuration=TABLE_CONFIGURATION if creating else None,
                schema_mode=None if creating else "merge",
                commit_properties=CommitProperties(custom_metadata={"writer": "v6.signals"}),
            )
            return DeltaTable(str(self.path)).version()

    def read(self, symbol: str | None = None) -> pl.DataFrame:
        """All records (or one symbol's), newest first."""
        if not self.exists():
            return empty_frame()
        frame = pl.read_delta(str(self.path))
        if symbol is not None:
            frame = frame.filter(pl.col("symbol") == symbol.upper())
        stored_actionable = (frame["actionable"].fill_null(True) if "actionable" in frame.columns
                             else pl.Series("actionable", [True] * frame.height, dtype=pl.Boolean))
        frame = frame.select(c for c in _COLUMNS if c not in _DERIVED_COLUMNS)
        # What a row is follows from its fields: rows stored before the derived columns existed
        # get them now, and a row is never more actionable than either its fields or its stored
        # flag say.
        derived = pl.DataFrame([_derived(row_to_record(row)) for row in frame.iter_rows(named=True)],
                               schema={"state": pl.String, "actionable": pl.Boolean,
                                       "not_actionable_reason": pl.String})
        derived = derived.with_columns(pl.col("actionable") & stored_actionable)
        return pl.concat([frame, derived], how="horizontal").sort(
            "created_at", descending=True, maintain_order=True)

    def history(self, symbol: str) -> list[SignalRecord]:
        return [row_to_record(r) for r in self.read(symbol).iter_rows(named=True)]

    def latest(self) -> dict[str, SignalRecord]:
        """The newest final record of each symbol."""
        frame = self.read().filter(pl.col("final"))
        if frame.height == 0:
            return {}
        newest = frame.group_by("symbol", maintain_order=True).first().sort("symbol")
        return {row["symbol"]: row_to_record(row) for row in newest.iter_rows(named=True)}
