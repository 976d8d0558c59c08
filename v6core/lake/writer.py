"""The snapshot writer: one `portfolio` version per snapshot, batched aggregates, and the writer lock.

One process writes (an flock on `<root>/.writer.lock`, or an S3 lease); a restart resumes from what
the commit metadata recorded, so a snapshot is never written twice and a crash costs the charts
nothing. A writer that loses its S3 lease (taken over after its renewals failed for a whole lease)
stops at once, drops its unwritten aggregate batch (the next writer rebuilds it from the commits)
and calls `on_lost`, so its process can say it is read-only and stand by for the role.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

from v6core import __version__
from v6core.lake.rows import account_meta, aggregate_legs, legs_table, snapshot_id
from v6core.lake.schemas import (
    ACCOUNT_HISTORY, ACCOUNT_HISTORY_SCHEMA, AGGREGATES_APP_ID, GREEKS_HISTORY, GREEKS_HISTORY_SCHEMA,
    HISTORY_TABLE_CONFIG, LOCK_FILE, META_ACCOUNT, META_APP, META_ID, META_POSITIONS, META_SEQ, META_TIME,
    META_WRITER, PORTFOLIO, LakeError, LakeLockedError, LakeLockLostError, as_utc, ensure_table, error_line, is_table,
    table_path,
)
from v6core.lake.s3store import S3WriterLease
from v6core.lake.storage import lake_root, open_table, read_frame, storage_options
from v6core.models import ConnState, PortfolioSnapshot

log = logging.getLogger(__name__)


def _writer_name() -> str:
    return f"{socket.gethostname()} pid {os.getpid()}"


class WriterLock:
    """flock on `<root>/.writer.lock`: the kernel releases it when the holder dies, even by kill -9.

    An flock belongs to the open file, not to the name: if someone deletes or replaces the file
    while we hold it, a second process can lock the new file and both would write. `verify()`
    compares the locked file's inode with the one at the path and, once they differ, the lock is
    lost for good (sticky): this process stops writing until it is restarted.
    """

    def __init__(self, root: Path) -> None:
        self.path = root / LOCK_FILE
        self._fd: int | None = None
        self.lost: str = ""

    def acquire(self) -> None:
        if self.lost:
            raise LakeLockLostError(self.lost)
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

    def verify(self, commit: bool = False) -> None:
        """Raise LakeLockLostError unless the file at the lock path is still the one we locked."""
        if self.lost:
            raise LakeLockLostError(self.lost)
        if self._fd is None:
            return
        held = os.fstat(self._fd)
        try:
            on_disk = os.stat(self.path)
        except FileNotFoundError:
            how = "was deleted"
        else:
            if (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino):
                return
            how = "was replaced by another file"
        self.lost = (f"lake writer stopped: its lock file {self.path} {how} while this process (pid "
                     f"{os.getpid()}) held it, so another v6 could now write the same lake. History "
                     f"is no longer recorded by this process; restart v6 to resume (never delete the "
                     f"lock file: the lock is released when its holder exits, even on a crash)")
        log.error("%s", self.lost)
        raise LakeLockLostError(self.lost)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None and not self.lost


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

    def acquire(self) -> None:
        """Take the lake's writer lock (LakeLockedError if another writer holds it) and resume
        from what earlier writers recorded, so a restart never writes a snapshot twice."""
        if self._lock.held and self._resumed:
            return
        self._lock.acquire()
        # Resuming reads the tables; if one is damaged this raises and the next write tries again
        # (the lock stays held: a repair needs v6 stopped, and nobody else may write meanwhile).
        self._dt = None
        self._last_version, self._last_time, self._last_positions = self._recorded_tail()
        self._resumed = True
        try:
            self._pending = self._unaggregated()
        except Exception as exc:  # noqa: BLE001 - the charts miss that batch; snapshots go on
            log.error("lake: reading aggregates lost by an earlier writer failed: %s", error_line(exc))
            self._pending = []
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
            version = open_table(path).transaction_version(AGGREGATES_APP_ID) if is_table(path) else None
            done = min(done, -1 if version is None else version)
        if done >= self._last_version:
            return []
        entries = open_table(portfolio).history(limit=min(self._last_version - done, limit) + 50)
        entries = sorted((e for e in entries if META_TIME in e and int(e["version"]) > done),
                         key=lambda e: int(e["version"]))[-limit:]
        pending = []
        for entry in entries:
            version = int(entry["version"])
            try:
                legs = read_frame(portfolio, version=version)
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
        dt = open_table(path)
        for entry in dt.history(limit=50):
            if META_TIME in entry:
                return (int(entry["version"]), datetime.fromisoformat(entry[META_TIME]),
                        int(entry.get(META_POSITIONS, 0)))
        # Only maintenance commits left in the log (pruned): the rows still carry their snapshot time.
        times = pl.from_arrow(dt.to_pyarrow_table(columns=["snapshot_time"]))["snapshot_time"]
        return (dt.version(), times.max(), None) if len(times) else (None, None, None)

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

    @property
    def lock_lost(self) -> str:
        """Why this writer stopped for good (its lock file was deleted or replaced), or ""."""
        return self._lock.lost

    @property
    def took_over_from(self) -> dict[str, Any] | None:
        """The holder (host, pid) whose expired S3 lease this writer took over, if it did."""
        return getattr(self._lock, "took_over_from", None)

    @property
    def lease_seconds(self) -> float | None:
        """How long the lake's writer lease lasts without renewal (S3); None for the local flock,
        which the kernel releases the moment its holder exits."""
        return getattr(self._lock, "ttl", None)

    @property
    def holds_lake(self) -> bool:
        """True while this writer holds the lake's writer lock (local flock or S3 lease)."""
        return self._lock.held

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
        self._lock.acquire()                        # LakeLockedError: another writer owns the lake
        try:
            self.acquire()
        except Exception as exc:  # noqa: BLE001 - a damaged table must not stop the app; ticks retry
            self.last_error = error_line(exc)
            log.error("lake writer could not resume, retrying every poll: %s", self.last_error)
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
        self._resumed = False

    @property
    def lost_to(self) -> dict[str, Any] | None:
        """Who took the S3 lease from this writer (host, pid), if it was lost and the store said."""
        return getattr(self._lock, "taken_by", None)

    @property
    def lost_how(self) -> str:
        """How the S3 lease was lost ("could not be renewed for 30 s", "was deleted", ...), or ""."""
        return getattr(self._lock, "lost_how", "")

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                self.tick()
            except LakeLockLostError as exc:
                if isinstance(self._lock, S3WriterLease) and self.on_lost is not None:
                    self.last_error = error_line(exc)
                    self._stand_down()
                    return
                error = error_line(exc)               # a replaced lock file: sticky, shown as an alert
                if error != self.last_error:
                    log.error("lake writer stopped: %s", error)
                self.last_error = error
            except Exception as exc:  # noqa: BLE001 - keep recording; the next tick retries
                error = error_line(exc)
                if error != self.last_error:      # log a failure once, not once per poll
                    log.exception("lake writer tick failed")
                self.last_error = error
            else:
                if self.last_error:
                    log.warning("lake writer recovered after: %s", self.last_error)
                self.last_error = ""

    def _stand_down(self) -> None:
        """The lease is gone: write nothing more (the batched aggregates too: the next writer
        rebuilds them from the commits), give back a renewal that landed late, tell the process."""
        with self._write_lock:
            self._stop.set()
            self._pending, self._pending_since = [], None
            self._lock.release()
            self._resumed = False
            self.stopped_by_loss = True
        log.warning("lake writer stood down: %s", self.last_error)
        try:
            self.on_lost(self)  # type: ignore[misc]
        except Exception:  # noqa: BLE001 - the writer has stopped either way
            log.exception("lake: telling the process that the writer lease was lost failed")

    def tick(self) -> int | None:
        """One poll: write a snapshot if due, append the batch if due. Returns the version written."""
        # Checked every poll, not only before writes: a lost lock must show while nothing is due.
        self._lock.verify()
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
