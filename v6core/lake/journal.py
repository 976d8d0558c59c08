"""An fsynced append-only JSON-lines journal beside each audit table, to rebuild it from.

The audit trail promises that no event it acknowledged is ever lost. A Delta table alone cannot keep
that promise when its latest commit is overwritten or one of its data files disappears: the repair
brings the table back to its last readable version, and the events of the versions it drops are
replayed from here. Each append is one write() of whole lines and one fsync, made before the Delta
commit; a line torn by a crash was never acknowledged and is skipped on reading.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

log = logging.getLogger(__name__)

JOURNAL_DIR = "_journal"


def journal_path(table_path: Path) -> Path:
    """`<lake>/_journal/<table>.jsonl`: outside every table folder, so maintenance never touches it."""
    return table_path.parent / JOURNAL_DIR / f"{table_path.name}.jsonl"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Journal:
    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path, self.schema = path, schema
        self._time_fields = [f.name for f in schema if pa.types.is_timestamp(f.type)]

    def exists(self) -> bool:
        return self.path.is_file()

    def append(self, rows: pa.Table) -> None:
        """Write the rows as JSON lines and fsync them before returning."""
        if rows.num_rows == 0:
            return
        lines = []
        for row in rows.to_pylist():
            for name in self._time_fields:
                if isinstance(row.get(name), datetime):
                    row[name] = row[name].isoformat()
            lines.append(json.dumps(row, separators=(",", ":"), allow_nan=True))
        data = ("\n".join(lines) + "\n").encode("utf-8")
        created = not self.path.exists()
        if created:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data                  # never glue a line onto a torn one
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            _fsync_dir(self.path.parent)

    def read(self) -> pa.Table:
        """Every complete row, in the order written (duplicates included; the table dedups by key)."""
        if not self.exists():
            return self.schema.empty_table()
        rows: list[dict[str, Any]] = []
        skipped = 0
        with self.path.open("r", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if not line.endswith("\n") or not line.strip():
                    skipped += bool(line.strip())
                    continue
                try:
                    row = json.loads(line)
                    for name in self._time_fields:
                        if row.get(name) is not None:
                            row[name] = datetime.fromisoformat(row[name])
                except (ValueError, TypeError):
                    skipped += 1
                    continue
                rows.append(row)
        if skipped:
            log.warning("journal %s: skipped %d torn or unreadable line(s)", self.path, skipped)
        return pa.Table.from_pylist(rows, schema=self.schema)
