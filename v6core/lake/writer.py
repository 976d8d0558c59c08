"""The snapshot writer: one `portfolio` version per snapshot, batched aggregates, and the writer lock.

One process writes (an flock on `<root>/.writer.lock`, or an S3 lease); a restart resumes from what
the commit metadata recorded, so a snapshot is never written twice and a crash costs the charts
nothing. A writer that loses its S3 lease (taken over after its renewals failed for a whole lease)
stops at once, drops its unwritten aggregate batch (the next writer rebuilds it from the commits)
and calls `on_lost`, so its process can say it is read-only and stand by for the role.

Modules, one job each: `writer_lock` (the local flock), `writer_resume` (resuming from what earlier
writers recorded), `writer_loop` (the polling thread and its status) and this one (the writes);
every name is importable from here.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

from v6core import __version__
from v6core.lake.rows import account_meta, aggregate_legs, legs_table, snapshot_id
from v6core.lake.schemas import (
    ACCOUNT_HISTORY, ACCOUNT_HISTORY_SCHEMA, AGGREGATES_APP_ID, GREEKS_HISTORY, GREEKS_HISTORY_SCHEMA,
    HISTORY_TABLE_CONFIG, META_ACCOUNT, META_APP, META_ID, META_POSITIONS, META_SEQ, META_TIME,
    META_WRITER, PORTFOLIO, as_utc, ensure_table, is_table, table_path,
)
from v6core.lake.schemas import LOCK_FILE, LakeError, LakeLockedError, LakeLockLostError, error_line  # noqa: F401
from v6core.lake.s3store import S3WriterLease
from v6core.lake.storage import lake_root, open_table, read_frame, storage_options  # noqa: F401 (read_frame)
from v6core.lake.writer_lock import WriterLock
from v6core.lake.writer_loop import WriterLoop
from v6core.lake.writer_resume import WriterResume, _Pending
from v6core.models import ConnState, PortfolioSnapshot  # noqa: F401 (ConnState)

log = logging.getLogger(__name__)


def _writer_name() -> str:
    return f"{socket.gethostname()} pid {os.getpid()}"


class LakeWriter(WriterLoop, WriterResume):
    """Writes portfolio snapshots (one Delta version each) and batched aggregates on its own thread.

    `source()` must be cheap (runtime.snapshot is a reference swap); the thread polls it every
    `poll` seconds and, while connected, writes when `positions_version` changed or `interval`
    seconds passed since the last write. `start()` (or the first write) takes the lake's writer
    lock: a second writer on the same lake, in any process, gets LakeLockedError.
    """

    def __init__(self, root: Path | str, source: Callable[[], PortfolioSnapshot | None] | None = None,
                 interval: float = 60.0, *, poll: float = 1.0, batch_size: int = 10,
                 batch_seconds: float = 120.0, compact_every: int = 50) -> None:
        self.root = lake_root(root)
        self.source = source
        self.interval = interval
        self.poll = poll
        self.batch_size = batch_size
        self.batch_seconds = batch_seconds
        self.compact_every = compact_every          # appends between compactions of an aggregate table
        self._appends: dict[str, int] = {}
        self._lock = WriterLock(self.root) if isinstance(self.root, Path) else S3WriterLease(self.root)
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
        self._resumed = False                       # state recorded by earlier writers is loaded
        # Called (on the writer thread, once) when the S3 lease is lost while running: the writer
        # has stopped for good; the process builds a new one to stand by with.
        self.on_lost: Callable[[LakeWriter], None] | None = None
        self.stopped_by_loss = False

    def _open(self, path: Path) -> DeltaTable:
        """The portfolio table, brought up to date: we hold the lock, so an incremental update suffices."""
        if self._dt is None:
            self._dt = open_table(path)
        else:
            self._dt.update_incremental()
        return self._dt

    def _latest_commit(self, path: Path) -> tuple[int, str | None]:
        """(latest version, its snapshot id)."""
        dt = self._open(path)
        entry = dt.history(limit=1)[0]
        return dt.version(), entry.get(META_ID)

    # -- writes
    def write_snapshot(self, snapshot: PortfolioSnapshot) -> int:
        """Commit the snapshot as one `portfolio` version and return it.

        A snapshot not newer than the last recorded one (a retry, a replay after restart) is not
        written again: the version already holding it (or the latest) is returned.
        """
        built = as_utc(snapshot.built_at, "snapshot.built_at")
        with self._write_lock:
            self.acquire()
            self._lock.verify(commit=True)
            if self._last_time is not None and built <= self._last_time:
                return self._last_version  # type: ignore[return-value]
            sid = snapshot_id(snapshot)
            data = legs_table(snapshot)
            account = account_meta(snapshot)
            meta = {
                META_ID: sid, META_SEQ: str(snapshot.seq), META_TIME: built.isoformat(),
                META_POSITIONS: str(snapshot.positions_version), META_APP: __version__,
                META_ACCOUNT: json.dumps(account), META_WRITER: _writer_name(),
            }
            path = table_path(self.root, PORTFOLIO)
            path.mkdir(parents=True, exist_ok=True)
            commit = CommitProperties(custom_metadata=meta)
            try:
                if self._dt is None and not is_table(path):
                    write_deltalake(str(path), data, mode="overwrite", configuration=HISTORY_TABLE_CONFIG,
                                    commit_properties=commit, storage_options=storage_options(path))
                    version, latest_id = self._latest_commit(path)
                else:
                    # Through the table kept open (we hold the lock: an incremental update is exact).
                    # write_deltalake(uri) would replay the log from its last checkpoint on every
                    # commit, and reading the commit back costs another round trip on S3: a commit
                    # that returned is ours, at the version the table is now at.
                    dt = self._open(path)
                    write_deltalake(dt, data, mode="overwrite", commit_properties=commit)
                    version, latest_id = dt.version(), sid
            except Exception:
                # The commit may have landed before the error surfaced: look before anyone retries.
                self._dt = None
                version, latest_id = self._latest_commit(path)
                if latest_id != sid:
                    raise
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
            self._lock.verify(commit=True)
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
        done = open_table(path).transaction_version(AGGREGATES_APP_ID)
        if done is not None:
            rows = rows.filter(pc.greater(rows["version"], pa.scalar(done, pa.int64())))
        if rows.num_rows == 0:
            return
        last = max(rows["version"].to_pylist())
        write_deltalake(str(path), rows, mode="append",
                        commit_properties=CommitProperties(
                            app_transactions=[Transaction(app_id=AGGREGATES_APP_ID, version=last)]),
                        storage_options=storage_options(path))
        self._appends[name] = self._appends.get(name, 0) + 1
        if self._appends[name] % self.compact_every == 0:
            # Small appends pile up as small files and slow the long-range chart query down.
            try:
                open_table(path).optimize.compact()
            except Exception as exc:  # noqa: BLE001 - the rows are committed; compaction can wait
                log.warning("lake: compacting %s failed: %s", name, exc)

    def __enter__(self) -> LakeWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
