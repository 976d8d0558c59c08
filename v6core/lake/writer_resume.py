"""Resuming the snapshot writer: what earlier writers recorded, and the aggregate batches they lost.

A mixin of `LakeWriter` (`v6core.lake.writer`): a restart reads the last snapshot commit's metadata,
so no snapshot is written twice, and rebuilds the aggregate rows an earlier writer died before
appending from the recorded legs and commit metadata.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl

from v6core.lake.rows import aggregate_legs
from v6core.lake.schemas import (
    ACCOUNT_HISTORY, AGGREGATES_APP_ID, GREEKS_HISTORY, META_ACCOUNT, META_POSITIONS, META_SEQ, META_TIME,
    PORTFOLIO, error_line, is_table, table_path,
)
from v6core.lake.storage import open_table, read_frame

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Pending:
    version: int
    seq: int
    time: datetime
    aggregates: pl.DataFrame
    account: dict[str, Any]


class WriterResume:
    """Mixin of LakeWriter: taking the lock and resuming from what earlier writers recorded."""

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
