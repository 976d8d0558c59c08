"""The order audit trail: append-only `orders_audit` and `fills`, synchronous, fsynced, deduplicated."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.fs as pa_fs
import pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake
from deltalake.fs import DeltaStorageHandler

from v6core import __version__
from v6core.lake.health import raise_damaged
from v6core.lake.journal import Journal, journal_path
from v6core.lake.schemas import (
    AUDIT_SCHEMA, AUDIT_TABLE_CONFIG, FILLS, FILLS_SCHEMA, ORDERS_AUDIT, UTC, as_utc, ensure_table,
    fsync_commit, is_table, table_path,
)
from v6core.lake.storage import lake_root, open_table, read_frame, storage_options
from v6core.models import FillView

log = logging.getLogger(__name__)


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


def _data_files(dt: DeltaTable) -> set[str]:
    """The data files (paths relative to the table) of the table's current version."""
    return set(pa.table(dt.get_add_actions(flatten=False)).column("path").to_pylist())


class _AppendOnlyTable:
    """An append-only table whose rows are unique by `key`; appends are synchronous and fsynced.

    Every append is first written to the table's journal (fsynced), then committed to Delta: an
    acknowledged row survives damage to the table, and `repair` replays it from the journal.
    """

    def __init__(self, path: Path, schema: pa.Schema, key: str) -> None:
        self.path, self.schema, self.key = path, schema, key
        self.journal = Journal(journal_path(path), schema)
        self._lock = threading.Lock()
        self._dt: DeltaTable | None = None
        self._keys: set[str] = set()
        self._key_files: set[str] = set()    # data files whose keys are in `_keys`
        self._fs: pa_fs.FileSystem | None = None

    def _table(self) -> DeltaTable:
        if self._dt is None:
            ensure_table(self.path, self.schema, AUDIT_TABLE_CONFIG)
            self._dt = open_table(self.path)
        else:
            self._dt.update_incremental()
        return self._dt

    def _seed_journal(self) -> None:
        """A lake from before the journal: copy what the table holds, once, so it can be rebuilt too."""
        if self.journal.exists() or not is_table(self.path):
            return
        try:
            rows = open_table(self.path).to_pyarrow_table()
        except Exception as exc:  # noqa: BLE001 - damaged: its readable versions stay the record
            log.warning("journal for %s not seeded: the table cannot be read (%s)", self.path.name, exc)
            return
        self.journal.append(rows.select(self.schema.names).cast(self.schema))

    def append(self, rows: pa.Table) -> int:
        with self._lock:
            self._seed_journal()
            self.journal.append(rows)
            try:
                return self._commit(rows)
            except Exception as exc:
                self._dt = None                      # reopen next time: the table may have been repaired
                raise_damaged(self.path, exc)

    def _refresh_keys(self, dt: DeltaTable) -> None:
        """Add the keys of data files not read yet (another process's commits, or all of them the
        first time). Files are immutable, so each is read once: with two processes interleaving
        commits on S3, re-reading the whole key column on every commit made each one O(table)."""
        files = _data_files(dt)
        for name in files - self._key_files:
            if self._fs is None:
                self._fs = pa_fs.PyFileSystem(DeltaStorageHandler(str(self.path), storage_options(self.path)))
            self._keys.update(pq.read_table(name, columns=[self.key], filesystem=self._fs)[self.key].to_pylist())
        self._key_files = files          # files removed by a compaction are forgotten; their keys are not

    def _commit(self, rows: pa.Table) -> int:
        dt = self._table()
        self._refresh_keys(dt)
        seen = set(self._keys)
        keep = []
        for i, k in enumerate(rows[self.key].to_pylist()):
            if k not in seen:
                seen.add(k)
                keep.append(i)
        if not keep:
            return 0
        new = rows.take(keep)
        before = dt.version()
        try:
            # Through the open table: write_deltalake(uri) would replay the log from its last
            # checkpoint on every commit (up to 100 GETs on S3). A commit that lost the race for the
            # next version is retried by deltalake (appends do not conflict) and `dt` moves on.
            write_deltalake(dt, new, mode="append")
        except Exception:
            self._keys, self._key_files = set(), set()    # outcome unknown: re-read every key next time
            raise
        fsync_commit(self.path, dt.version())
        self._keys.update(new[self.key].to_pylist())
        if dt.version() == before + 1:
            # Nobody else committed in between: the files the table gained are ours, keys known.
            self._key_files = _data_files(dt)
        return new.num_rows

    def read(self) -> pl.DataFrame:
        if not is_table(self.path):
            return pl.from_arrow(self.schema.empty_table())
        try:
            return read_frame(self.path)
        except Exception as exc:
            raise_damaged(self.path, exc)


class AuditLog:
    """Durable, synchronous, append-only `orders_audit` and `fills` (dedup by event_id / exec_id)."""

    def __init__(self, root: Path | str) -> None:
        self.root = lake_root(root)
        self._audit = _AppendOnlyTable(table_path(self.root, ORDERS_AUDIT), AUDIT_SCHEMA, "event_id")
        self._fills = _AppendOnlyTable(table_path(self.root, FILLS), FILLS_SCHEMA, "exec_id")

    def append_audit(self, rows: Sequence[AuditEvent]) -> int:
        """Commit the events (fsynced) before returning; events already recorded are skipped."""
        table = pa.Table.from_pylist([{
            "event_id": e.event_id, "ts": as_utc(e.ts, "AuditEvent.ts"), "ticket_id": e.ticket_id,
            "event": e.event, "session_id": e.session_id, "order_id": e.order_id, "perm_id": e.perm_id,
            "status": e.status, "detail": e.detail, "app_version": e.app_version} for e in rows],
            schema=AUDIT_SCHEMA)
        return self._audit.append(table)

    def append_fills(self, rows: Iterable[FillRow | FillView], account: str = "") -> int:
        """Commit new fills (fsynced); an exec_id already recorded is never written twice."""
        records = [r if isinstance(r, FillRow) else FillRow.from_view(r, account) for r in rows]
        table = pa.Table.from_pylist([{
            "ts": as_utc(r.ts, "FillRow.ts"), "exec_id": r.exec_id, "ticket_id": r.ticket_id,
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
