"""Bring a damaged table back to its last readable version, moving what cannot be read aside.

`python -m v6core.lake --lake PATH repair TABLE [--dry-run]`, with v6 stopped (it takes the writer lock):
1. find the newest version whose log replays and whose data files all exist (and read);
2. move every log entry after it (commits, checkpoints, `_last_checkpoint` past it) to
   `<lake>/_quarantine/<table>/<UTC time>/`; nothing is ever deleted;
3. write an empty commit in place of each moved one, so version numbers are never reused (the
   aggregate tables and every reader keep referring to the versions they knew);
4. for the audit tables, append from the journal every acknowledged row the table lacks.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from deltalake import DeltaTable, write_deltalake

from v6core.lake.health import check_table, local_path
from v6core.lake.storage import S3Root, is_delta_table, lake_root, open_table, write_table
from v6core.lake.journal import Journal, journal_path
from v6core.lake.schemas import (
    AUDIT_SCHEMA, FILLS, FILLS_SCHEMA, ORDERS_AUDIT, UTC, LakeError, fsync_commit,
)

QUARANTINE_DIR = "_quarantine"
_JOURNALED = {ORDERS_AUDIT: (AUDIT_SCHEMA, "event_id"), FILLS: (FILLS_SCHEMA, "exec_id")}
_LOG_ENTRY = re.compile(r"^(\d{20})\.(json|checkpoint\.parquet|checkpoint\.\d+\.\d+\.parquet)$")


@dataclass(slots=True, frozen=True)
class RepairResult:
    table: str
    dry_run: bool
    latest_version: int | None          # newest commit file before the repair
    readable_version: int | None        # the version the table is brought back to (None: it was fine)
    moved: tuple[str, ...]              # log entries moved aside (relative to the table folder)
    quarantine: str                     # where they went ("" on a dry run or when nothing moved)
    replayed: int                       # journal rows appended (audit tables)
    detail: str
    action: str = "move"                # what was done to each of `moved`: "move" (aside) or "remove" (from the log)


def _log_versions(path: Path) -> dict[int, list[Path]]:
    entries: dict[int, list[Path]] = {}
    for entry in (path / "_delta_log").iterdir():
        match = _LOG_ENTRY.match(entry.name)
        if match:
            entries.setdefault(int(match.group(1)), []).append(entry)
    return entries


def _readable(path: Path, version: int) -> bool:
    """The version's log replays, its data files exist and its rows read."""
    try:
        dt = DeltaTable(str(path), version=version)
        for uri in dt.file_uris():
            local = local_path(uri)
            if local is not None and not local.exists():
                return False
        dt.to_pyarrow_table()
        return True
    except Exception:  # noqa: BLE001 - any failure means: not this version
        return False


def _first_adding(path: Path, files: set[str], versions: list[int]) -> int | None:
    """The oldest commit that adds one of `files` (its versions and later ones cannot be read)."""
    for version in versions:
        try:
            lines = (path / "_delta_log" / f"{version:020d}.json").read_text(encoding="utf-8").splitlines()
            for line in lines:
                add = json.loads(line).get("add") if line.strip() else None
                if add and add.get("path") in files:
                    return version
        except (OSError, ValueError):
            continue
    return None


def _missing_files(path: Path) -> set[str]:
    """Data files (relative paths) the latest version needs but the folder lacks; empty if the log fails."""
    try:
        uris = DeltaTable(str(path)).file_uris()
    except Exception:  # noqa: BLE001 - the log itself is the damage
        return set()
    locals_ = [local_path(uri) for uri in uris]
    return {os.path.relpath(p, path) for p in locals_ if p is not None and not p.exists()}


def _last_readable(path: Path, versions: list[int]) -> int | None:
    candidates = versions
    missing = _missing_files(path)
    if missing:
        first = _first_adding(path, missing, versions)
        if first is not None:                    # every version from that commit on needs the file
            candidates = [v for v in versions if v < first]
    for version in reversed(candidates):
        if _readable(path, version):
            return version
    return None


def _replay(root: Path, name: str, dry_run: bool) -> int:
    if name not in _JOURNALED:
        return 0
    schema, key = _JOURNALED[name]
    journal = Journal(journal_path(root / name), schema)
    rows = journal.read()
    if rows.num_rows == 0:
        return 0
    present = set(open_table(root / name).to_pyarrow_table(columns=[key])[key].to_pylist())
    keep, seen = [], set(present)
    for i, k in enumerate(rows[key].to_pylist()):
        if k not in seen:
            seen.add(k)
            keep.append(i)
    if keep and not dry_run:
        write_table(root / name, rows.take(keep), mode="append")
        fsync_commit(root / name, open_table(root / name).version())
    return len(keep)


def _filler(moved_to: Path) -> bytes:
    info = {"commitInfo": {"timestamp": int(time.time() * 1000), "operation": "v6 repair",
                           "operationParameters": {"moved_aside_to": str(moved_to)}}}
    return (json.dumps(info) + "\n").encode("utf-8")


def repair_table(root: Path | str, name: str, *, dry_run: bool = False) -> RepairResult:
    """Repair one table (see the module docstring). The caller holds the lake's writer lock."""
    root = lake_root(root)
    if isinstance(root, S3Root):
        return _repair_s3(root, name, dry_run)
    path = root / name
    if not (path / "_delta_log").is_dir():
        raise LakeError(f"no table {name!r} under {root}")
    entries = _log_versions(path)
    commits = sorted(v for v, files in entries.items() if any(f.suffix == ".json" for f in files))
    latest = commits[-1] if commits else None
    health = check_table(path)
    if health.ok:
        replayed = _replay(root, name, dry_run)
        verb = "would append" if dry_run else "appended"
        return RepairResult(name, dry_run, latest, None, (), "", replayed,
                            f"readable at version {health.version}; {verb} {replayed} journal row(s)")
    readable = _last_readable(path, commits)
    if readable is None:
        raise LakeError(f"{name}: no version of the table can be read ({health.problem}); nothing changed")
    moved_paths = sorted((f for v, files in entries.items() if v > readable for f in files), key=lambda p: p.name)
    last_checkpoint = path / "_delta_log" / "_last_checkpoint"
    if last_checkpoint.exists():
        try:
            pointed = int(json.loads(last_checkpoint.read_text(encoding="utf-8"))["version"])
        except (OSError, ValueError, KeyError, TypeError):
            pointed = readable + 1                   # unreadable pointer: move it aside too
        if pointed > readable:
            moved_paths.append(last_checkpoint)
    moved = tuple(os.path.relpath(p, path) for p in moved_paths)
    quarantine = root / QUARANTINE_DIR / name / datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    if dry_run:
        replay_note = "; journal rows are replayed after the roll-back" if name in _JOURNALED else ""
        return RepairResult(name, True, latest, readable, moved, "", 0,
                            f"{health.problem}; would move {len(moved)} log entries aside and bring the "
                            f"table back to version {readable}{replay_note}")
    (quarantine / "_delta_log").mkdir(parents=True, exist_ok=True)
    for source, relative in zip(moved_paths, moved):
        shutil.move(str(source), str(quarantine / relative))
    for version in (v for v in commits if v > readable):
        fd = os.open(path / "_delta_log" / f"{version:020d}.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, _filler(quarantine))
            os.fsync(fd)
        finally:
            os.close(fd)
    fsync_commit(path, latest if latest is not None else readable)
    after = check_table(path)
    if not after.ok:
        raise LakeError(f"{name}: still damaged after moving {len(moved)} entries to {quarantine}: {after.problem}")
    replayed = _replay(root, name, dry_run=False)
    return RepairResult(name, False, latest, readable, moved, str(quarantine), replayed,
                        f"back to version {readable} ({_span(readable + 1, latest)} now empty); "
                        f"{len(moved)} log entries moved to {quarantine}; {replayed} journal row(s) appended")


def _repair_s3(root: S3Root, name: str, dry_run: bool) -> RepairResult:
    """On object storage log entries cannot be moved aside atomically; what is repaired in place is
    the common damage, data files deleted from the bucket: a commit removes them from the table
    (delta's FSCK; nothing is deleted) and the audit tables get their journaled rows back."""
    path = root / name
    if not is_delta_table(path):
        raise LakeError(f"no table {name!r} under {root}")
    health = check_table(path)
    if health.ok:
        replayed = _replay(root, name, dry_run)
        verb = "would append" if dry_run else "appended"
        return RepairResult(name, dry_run, health.version, None, (), "", replayed,
                            f"readable at version {health.version}; {verb} {replayed} journal row(s)")
    if health.version is None:     # the log itself does not replay
        raise LakeError(f"{name}: {health.problem}; a damaged log on S3 is not repaired in place (copy the "
                        f"table's prefix to a local folder and repair it there); nothing changed")
    dt = open_table(path)
    files = tuple(dt.repair(dry_run=dry_run).get("files_removed", ()))
    note = "; journal rows are replayed after" if name in _JOURNALED else ""
    if dry_run:
        return RepairResult(name, True, health.version, health.version, files, "", 0,
                            f"{health.problem}; would remove {len(files)} missing data file(s) from the "
                            f"table{note}", action="remove")
    after = check_table(path)
    if not after.ok:
        raise LakeError(f"{name}: still damaged after removing {len(files)} missing file(s): {after.problem}")
    replayed = _replay(root, name, dry_run=False)
    return RepairResult(name, False, health.version, after.version, files, "", replayed,
                        f"{len(files)} missing data file(s) removed from the table (version {after.version}); "
                        f"{replayed} journal row(s) appended", action="remove")


def _span(first: int, last: int | None) -> str:
    return f"version {first} is" if last is None or last == first else f"versions {first}..{last} are"


def describe(result: RepairResult) -> str:
    lines = [f"{result.table}: {result.detail}"]
    done = {"move": "moved", "remove": "removed from the table:"}[result.action]
    lines += [f"  {'would ' + result.action if result.dry_run else done} {entry}" for entry in result.moved]
    return "\n".join(lines)

