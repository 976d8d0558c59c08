"""Delta Lake history of v6: schemas, the snapshot writer, time travel, diff, audit and maintenance.

Modules, one job each: `schemas` (table names, properties, Arrow schemas, errors), `rows` (a snapshot
as rows and aggregates), `writer` (snapshot writer; its lock, resume and thread in `writer_lock`,
`writer_resume`, `writer_loop`), `reader` (versions, time travel, diff, long-range aggregates),
`audit` (orders_audit and fills), `maintenance` (checkpoint, compact, vacuum), `health` (is each
table readable), `journal` (the audit tables' fsynced journal), `repair` (back to the last readable
version) and `__main__` (the command line). Every public name is importable from `v6core.lake`.

Layout under the lake root (one folder per Delta table):
- `portfolio`       leg-level state, rewritten (mode="overwrite") as ONE commit per snapshot, so the
                    Delta version of a snapshot commit is its history version; each commit's custom
                    metadata records the snapshot id, seq, time and the app version.
- `greeks_history`  per-snapshot aggregates (total / per underlying / per strategy), appended in batches;
- `account_history` per-snapshot account values; both survive vacuum of `portfolio` for long charts.
- `orders_audit`, `fills`  append-only (`delta.appendOnly`) with ten-year retention, written by AuditLog.
- `signals`         owned by the signals service; maintenance treats it like any other table.

- `_journal/`       fsynced JSON lines of every orders_audit / fills row, written before the Delta commit.
- `_quarantine/`    what `repair` moved aside (never deleted).

One process writes (an flock on `<root>/.writer.lock`); any number read. Times are tz-aware UTC and a
date-time maps to a version through the snapshot times recorded in commit metadata, never file mtimes.
"""

from v6core.lake.audit import AuditEvent, AuditLog, FillRow
from v6core.lake.health import TABLES, HealthMonitor, TableHealth, check_lake, check_table
from v6core.lake.journal import Journal, journal_path
from v6core.lake.maintenance import LakeMaintenance, MaintenanceResult, Progress, log_size, results_frame
from v6core.lake.reader import LakeReader, PortfolioDiff, diff_frames
from v6core.lake.repair import QUARANTINE_DIR, RepairResult, repair_table
from v6core.lake.rows import aggregate_legs, legs_table, snapshot_id
from v6core.lake.schemas import (
    ACCOUNT_HISTORY, ACCOUNT_HISTORY_SCHEMA, AUDIT_SCHEMA, AUDIT_TABLE_CONFIG, FILLS, FILLS_SCHEMA,
    GREEK_COLUMNS, GREEKS_HISTORY, GREEKS_HISTORY_SCHEMA, HISTORY_TABLE_CONFIG, LOCK_FILE, META_ACCOUNT,
    META_APP, META_ID, META_POSITIONS, META_SEQ, META_TIME, META_WRITER, METRIC_COLUMNS, ORDERS_AUDIT, PNL_COLUMNS,
    PORTFOLIO, PORTFOLIO_SCHEMA, SIGNALS, TS, UTC, LakeError, LakeLockedError, LakeLockLostError,
    TableDamagedError, VersionUnavailableError,
    ensure_table, is_table, table_path,
)
from v6core.lake.writer import LakeWriter

__all__ = [
    "ACCOUNT_HISTORY", "ACCOUNT_HISTORY_SCHEMA", "AUDIT_SCHEMA", "AUDIT_TABLE_CONFIG", "FILLS",
    "FILLS_SCHEMA",
    "GREEK_COLUMNS", "GREEKS_HISTORY", "GREEKS_HISTORY_SCHEMA", "HISTORY_TABLE_CONFIG", "LOCK_FILE",
    "META_ACCOUNT", "META_APP", "META_ID", "META_POSITIONS", "META_SEQ", "META_TIME", "META_WRITER",
    "METRIC_COLUMNS",
    "ORDERS_AUDIT", "PNL_COLUMNS", "PORTFOLIO", "PORTFOLIO_SCHEMA", "SIGNALS", "TS", "UTC",
    "AuditEvent", "AuditLog", "FillRow", "LakeError", "LakeLockedError", "LakeLockLostError", "LakeMaintenance",
    "LakeReader",
    "LakeWriter", "MaintenanceResult", "PortfolioDiff", "Progress", "VersionUnavailableError",
    "aggregate_legs", "diff_frames", "ensure_table", "is_table", "legs_table", "log_size", "results_frame",
    "snapshot_id", "table_path",
    "QUARANTINE_DIR", "TABLES", "HealthMonitor", "Journal", "RepairResult", "TableDamagedError",
    "TableHealth",
    "check_lake", "check_table", "journal_path", "repair_table",
]
