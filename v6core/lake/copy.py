"""Copy a lake with its full history to another root: `python -m v6core.lake copy --from A --to s3://…`.

Delta tables are relocatable (the log names files relative to the table), so a byte-for-byte copy
of every object keeps every version, its commit metadata and time, and its checkpoints. Data files
go first and each table's `_delta_log` last, in version order, so a reader of the destination
never sees a commit whose files are not there yet. The writer lock is not copied. A destination
that already holds a table is refused: copying never overwrites history.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from v6core.lake.maintenance import LakeMaintenance
from v6core.lake.schemas import LOCK_FILE, LakeError, is_table
from v6core.lake.storage import LakeRoot, S3Root, open_table, read_frame


@dataclass(slots=True, frozen=True)
class CopiedTable:
    table: str
    files: int
    bytes: int
    versions_checked: int          # versions opened at the destination after the copy
    latest_version: int


def _ordered(files: list[Path], table: Path) -> list[Path]:
    """Data files first, then the log (checkpoints and commits in version order, _last_checkpoint last)."""
    def rank(p: Path) -> tuple[int, str]:
        rel = p.relative_to(table).as_posix()
        if not rel.startswith("_delta_log/"):
            return (0, rel)
        return (2, rel) if rel.endswith("_last_checkpoint") else (1, rel)
    return sorted(files, key=rank)


def _put(source: Path, dest: LakeRoot, rel: str, client: object | None) -> None:
    if isinstance(dest, S3Root):
        client.upload_file(str(source), dest.bucket, f"{dest.key}/{rel}".lstrip("/"))  # type: ignore[attr-defined]
    else:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)


def copy_lake(source: Path, dest: LakeRoot, *, verify: bool = True,
              progress: Callable[[str], None] | None = None) -> list[CopiedTable]:
    """Copy every table under the local `source` lake (and loose files such as journals) to `dest`."""
    if not source.is_dir():
        raise LakeError(f"no lake at {source}")
    tables = LakeMaintenance(source).tables()
    for table in tables:
        if is_table(dest / table.name):
            raise LakeError(f"{dest / table.name} already holds a Delta table; copy refuses to overwrite history")
    client = None
    if isinstance(dest, S3Root):
        from v6core.lake.s3store import s3_client
        client = s3_client(dest)
    # Loose files next to the tables (an audit journal, claims) travel too; the writer lock does not.
    table_dirs = {t.resolve() for t in tables}
    for path in sorted(source.rglob("*")):
        if path.is_file() and path.name != LOCK_FILE and not any(p in table_dirs for p in path.resolve().parents):
            _put(path, dest, path.relative_to(source).as_posix(), client)
    copied = []
    for table in tables:
        files = _ordered([p for p in table.rglob("*") if p.is_file()], table)
        if progress:
            progress(f"{table.name}: {len(files)} files")
        for path in files:
            _put(path, dest, f"{table.name}/{path.relative_to(table).as_posix()}", client)
        checked, latest = _verify(table, dest / table.name) if verify else (0, open_table(dest / table.name).version())
        copied.append(CopiedTable(table.name, len(files), sum(p.stat().st_size for p in files), checked, latest))
    return copied


def _verify(source: Path, dest: LakeRoot) -> tuple[int, int]:
    """Open every version the source can open at the destination too, with the same rows."""
    latest = open_table(source).version()
    if open_table(dest).version() != latest:
        raise LakeError(f"{dest}: latest version {open_table(dest).version()} after the copy, source has {latest}")
    checked = 0
    for version in range(latest + 1):
        try:
            expected = read_frame(source, version=version).height
        except Exception:  # noqa: BLE001 - log entry expired or files vacuumed at the source: nothing to keep
            continue
        got = read_frame(dest, version=version).height
        if got != expected:
            raise LakeError(f"{dest} version {version}: {got} rows after the copy, {expected} at the source")
        checked += 1
    return checked, latest
