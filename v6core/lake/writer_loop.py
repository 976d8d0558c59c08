"""The snapshot writer's polling thread: start, stop, one tick per poll, standing down on a lost lease.

A mixin of `LakeWriter` (`v6core.lake.writer`), with the status the process reads from the writer
(the lock lost, the lease taken over or lost, the last version written).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Any

from v6core.lake.s3store import S3WriterLease
from v6core.lake.schemas import LakeLockLostError, error_line
from v6core.models import ConnState

log = logging.getLogger(__name__)


class WriterLoop:
    """Mixin of LakeWriter: the writer thread's lifecycle and the status shown to the process."""

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
