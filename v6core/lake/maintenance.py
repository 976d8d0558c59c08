"""Maintenance over every table under the lake root: checkpoint, log retention, compaction, vacuum."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from deltalake import DeltaTable

from v6core.lake.schemas import PORTFOLIO, is_table


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
