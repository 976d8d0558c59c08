"""Is each table of the lake readable? What a damaged one means for trading, and how to repair it.

A table is damaged when its log cannot be replayed (a corrupt or truncated commit) or a data file
its latest version needs is missing. The check opens the log and looks the files up; it does not
read data, so it is cheap enough to run every few seconds for the status line.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn
from urllib.parse import unquote, urlparse

import pyarrow as pa
from deltalake import DeltaTable

from v6core.lake.storage import S3Root, is_delta_table, lake_root, open_table
from v6core.lake.schemas import (
    ACCOUNT_HISTORY, FILLS, GREEKS_HISTORY, ORDERS_AUDIT, PORTFOLIO, SIGNALS, TableDamagedError, error_line,
)

log = logging.getLogger(__name__)

TABLES = (PORTFOLIO, GREEKS_HISTORY, ACCOUNT_HISTORY, ORDERS_AUDIT, FILLS, SIGNALS)

# What a damaged table means for the operator, in one sentence each.
MEANING: dict[str, str] = {
    ORDERS_AUDIT: "Trading is paused: no ticket can be drafted, confirmed or followed without a readable "
                  "audit trail (events acknowledged since are kept in its journal).",
    FILLS: "Trading is paused: fills cannot be recorded (fills acknowledged since are kept in its journal).",
    PORTFOLIO: "Snapshots are not recorded and past portfolio versions may not open; "
               "trading is not affected.",
    GREEKS_HISTORY: "Greeks charts over time are incomplete and snapshots are not recorded; trading is not "
                    "affected.",
    ACCOUNT_HISTORY: "Account charts over time are incomplete and snapshots are not recorded; trading is not "
                     "affected.",
    SIGNALS: "Signal history is not saved; trading is not affected.",
}
TRADING_TABLES = (ORDERS_AUDIT, FILLS)


@dataclass(slots=True, frozen=True)
class TableHealth:
    table: str
    ok: bool
    problem: str = ""                   # what is wrong, one line ("" when ok)
    version: int | None = None          # latest version, when the log opens

    @property
    def meaning(self) -> str:
        return "" if self.ok else MEANING.get(self.table, "")

    @property
    def blocks_trading(self) -> bool:
        return not self.ok and self.table in TRADING_TABLES


def repair_command(root: Path | str, table: str) -> str:
    return f"python -m v6core.lake --lake {root} repair {table}"


def local_path(uri: str) -> Path | None:
    """The local path of a `file://` URI (or a bare path); None for object storage."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path))
    return None


def check_table(path: Path) -> TableHealth:
    """Open the table's log and look up every data file of its latest version."""
    name = path.name
    if not (path / "_delta_log").is_dir() or (not isinstance(path, Path) and not is_delta_table(path)):
        return TableHealth(name, True)               # not created yet: nothing to be damaged
    try:
        dt = open_table(path)
    except Exception as exc:  # noqa: BLE001 - any failure to replay the log is damage
        return TableHealth(name, False, f"its log cannot be read ({error_line(exc)})")
    try:
        missing = missing_files(path, dt)
    except Exception as exc:  # noqa: BLE001 - the store did not answer: that is not damage
        log.warning("lake health: listing %s failed: %s", path, error_line(exc))
        missing = []
    if missing:
        return TableHealth(name, False, f"{len(missing)} data file(s) of version {dt.version()} are missing "
                                        f"(first: {missing[0]})", dt.version())
    return TableHealth(name, True, version=dt.version())


def missing_files(path: Path | S3Root, dt: DeltaTable) -> list[str]:
    """Data files (relative to the table) the table's loaded version needs but the store lacks.

    Local disk: a stat per file. S3: one listing of the table's prefix (1,000 keys per request),
    not a HEAD per file: the audit tables have thousands of small files."""
    if isinstance(path, S3Root):
        from v6core.lake.s3store import s3_keys

        present = s3_keys(path)
        files = pa.table(dt.get_add_actions(flatten=False)).column("path").to_pylist()
        return sorted(name for name in files if unquote(name) not in present)
    gone = [p for uri in dt.file_uris() if (p := local_path(uri)) is not None and not p.exists()]
    return sorted(p.name for p in gone)


def check_lake(root: Path | str, tables: tuple[str, ...] = TABLES) -> list[TableHealth]:
    return [check_table(lake_root(root) / name) for name in tables]


def damaged_error(path: Path, cause: BaseException) -> BaseException:
    """The error to raise after `cause` failed an operation on `path`: TableDamagedError naming the
    table, its problem, what it means and the repair command when the table is damaged; else `cause`."""
    health = check_table(path)
    if health.ok:
        return cause
    return TableDamagedError(
        f"The {health.table} table is damaged: {health.problem}. {health.meaning} "
        f"Repair: stop v6, run `{repair_command(path.parent, health.table)}`, start v6.")


def raise_damaged(path: Path, exc: BaseException) -> NoReturn:
    """Re-raise `exc`, as TableDamagedError when the table at `path` turns out to be damaged."""
    error = damaged_error(path, exc)
    if error is exc:
        raise exc
    raise error from exc


class HealthMonitor:
    """Per-table health of one lake, recomputed at most every `ttl` seconds (pages ask every second)."""

    def __init__(self, root: Path | str, ttl: float = 15.0) -> None:
        self.root = lake_root(root)
        self.ttl = ttl
        self._lock = threading.Lock()
        self._checked: list[TableHealth] = []
        self._at: float | None = None

    def tables(self) -> list[TableHealth]:
        now = time.monotonic()
        if self._at is not None and now - self._at < self.ttl:
            return self._checked
        if not self._lock.acquire(blocking=self._at is None):
            return self._checked                     # another session is checking: show the last result
        try:
            try:
                self._checked = check_lake(self.root)
            except Exception:  # noqa: BLE001 - the status must never fail; say so in the log
                log.exception("lake health check failed")
            self._at = time.monotonic()
            return self._checked
        finally:
            self._lock.release()

    def invalidate(self) -> None:
        self._at = None

    def damaged(self) -> list[TableHealth]:
        return [t for t in self.tables() if not t.ok]
