"""Command line for the Delta lake: `python -m v6core.lake [--lake PATH] COMMAND`.

Commands: versions, checkpoint, compact, vacuum, health, repair.

Maintenance works on every table folder under the lake root and prints the `_delta_log` size of each
table before and after. Vacuum prints the retention it keeps before it deletes anything.
`--lake` also takes `s3://bucket/prefix` (endpoint and credentials from V6_S3_* or the AWS environment).
`copy --from data/lake --to s3://bucket/prefix` copies a local lake with its full history and opens
every version at the destination before it says done.
`health` names damaged tables; `repair TABLE [--dry-run]` (v6 stopped) brings one back to its last
readable version, moving what it cannot read to `<lake>/_quarantine/` (never deleting it) and, for
the audit tables, appending from the journal every acknowledged row the table lacks. On S3 it
repairs data files deleted from the bucket in place (a commit removes them from the table; the
journal gives the audit tables their rows back); a damaged log on S3 is repaired on a local copy.
--lake defaults to the configured lake (V6_LAKE_PATH, else data/lake).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from v6core.lake.health import TABLES, check_lake
from v6core.lake.maintenance import LakeMaintenance, MaintenanceResult, results_frame
from v6core.lake.reader import LakeReader
from v6core.lake.repair import describe, repair_table
from v6core.lake.copy import copy_lake
from v6core.lake.schemas import LakeError, LakeLockedError
from v6core.lake.storage import LakeRoot, S3Root, is_s3_uri, lake_root, redact
from v6core.lake.s3store import S3WriterLease
from v6core.lake.writer import WriterLock


def _print_frame(frame: pl.DataFrame) -> None:
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=160, fmt_str_lengths=80):
        print(frame)


def _progress(i: int, n: int, name: str) -> None:
    if i < n:
        print(f"[{i + 1}/{n}] {name} ...", file=sys.stderr, flush=True)


def _report(results: list[MaintenanceResult], list_files: bool = False) -> None:
    _print_frame(results_frame(results))
    before = sum(r.log_bytes_before for r in results)
    after = sum(r.log_bytes_after for r in results)
    print(f"_delta_log total: {before:,} bytes before, {after:,} bytes after")
    if list_files:
        for r in results:
            for f in r.files:
                print(f"{r.table}/{f}")


def _configured_lake() -> LakeRoot:
    try:
        from v6core.config import load_settings

        return load_settings().lake_root()
    except Exception:  # noqa: BLE001 - a broken setting elsewhere must not stop a repair
        return Path("data/lake")


def _root(value: str) -> LakeRoot:
    """A folder, or an S3 root with its options from V6_S3_* settings or the AWS environment."""
    if not is_s3_uri(value):
        return lake_root(value)
    from v6core.config import load_settings
    return load_settings(lake_uri=value).lake_root()


def _copy(source: Path, dest: LakeRoot, verify: bool) -> int:
    try:
        copied = copy_lake(source, dest, verify=verify, progress=lambda text: print(text, file=sys.stderr, flush=True))
    except LakeError as exc:
        print(redact(str(exc), dest), file=sys.stderr)
        return 2
    for c in copied:
        print(f"{c.table}: {c.files} files, {c.bytes:,} bytes, latest version {c.latest_version}, "
              f"{c.versions_checked} versions opened at {dest}/{c.table}")
    return 0


def _health(lake: Path) -> int:
    damaged = 0
    for health in check_lake(lake):
        state = "ok" if health.ok else f"DAMAGED: {health.problem}. {health.meaning}"
        print(f"{health.table:16} {state}")
        damaged += not health.ok
    if damaged:
        print(f"repair with: python -m v6core.lake --lake {lake} repair TABLE [--dry-run] (v6 stopped)")
    return 1 if damaged else 0


def _repair(lake: Path | S3Root, table: str, dry_run: bool) -> int:
    lock = WriterLock(lake) if isinstance(lake, Path) else S3WriterLease(lake)
    try:
        if not dry_run:
            lock.acquire()                      # v6 must not write while log entries move
        print(describe(repair_table(lake, table, dry_run=dry_run)))
    except LakeLockedError as exc:
        print(f"repair {table}: stop v6 first, it is writing this lake ({exc})", file=sys.stderr)
        return 1
    except LakeError as exc:
        print(f"repair {table}: {exc}", file=sys.stderr)
        return 1
    finally:
        lock.release()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m v6core.lake", description=__doc__.splitlines()[0])
    parser.add_argument("--lake", default=None,
                        help="lake root folder or s3://bucket/prefix (default: the configured one)")
    sub = parser.add_subparsers(dest="command", required=True)
    copy = sub.add_parser("copy", help="copy a local lake with its full history (e.g. to s3://…)")
    copy.add_argument("--from", dest="source", type=Path, required=True, help="local lake folder")
    copy.add_argument("--to", dest="dest", required=True, help="destination root: s3://bucket/prefix or a folder")
    copy.add_argument("--no-verify", action="store_true", help="do not open every version afterwards")
    versions = sub.add_parser("versions", help="list portfolio snapshot versions")
    versions.add_argument("--last", type=int, default=20, help="show only the newest N (0: all)")
    checkpoint = sub.add_parser("checkpoint", help="checkpoint every table and drop expired log entries")
    checkpoint.add_argument("--log-retention-hours", type=float, default=None,
                            help="first set each history table's log retention to N hours "
                                 "(versions older than that can no longer be opened)")
    sub.add_parser("compact", help="merge small files of appended tables")
    vacuum = sub.add_parser("vacuum", help="delete unreferenced data files past the retention")
    vacuum.add_argument("--retention-hours", type=float, default=None,
                        help="keep files removed less than N hours ago (default: each table's own)")
    vacuum.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")
    sub.add_parser("health", help="check every table: does its log replay, are its data files there")
    repair = sub.add_parser("repair",
                            help="bring a damaged table back to its last readable version (stop v6 first)")
    repair.add_argument("table", choices=TABLES)
    repair.add_argument("--dry-run", action="store_true", help="say what would be moved, change nothing")
    args = parser.parse_args(argv)
    if args.command == "copy":
        return _copy(args.source, _root(args.dest), verify=not args.no_verify)
    args.lake = _configured_lake() if args.lake is None else _root(args.lake)

    if not args.lake.is_dir():
        print(f"no lake at {args.lake}", file=sys.stderr)
        return 2
    if args.command == "health":
        return _health(args.lake)
    if args.command == "repair":
        return _repair(args.lake, args.table, args.dry_run)
    maintenance = LakeMaintenance(args.lake)
    if args.command == "versions":
        frame = LakeReader(args.lake).versions()
        print(f"{frame.height} snapshot versions")
        _print_frame(frame.tail(args.last) if args.last else frame)
    elif args.command == "checkpoint":
        if args.log_retention_hours is not None:
            _report(maintenance.set_log_retention(args.log_retention_hours, progress=_progress))
        _report(maintenance.checkpoint(progress=_progress))
    elif args.command == "compact":
        _report(maintenance.compact(progress=_progress))
    else:
        print("retention kept by vacuum (hours), per table:")
        retention = maintenance.retention()
        if args.retention_hours is not None:
            retention = retention.with_columns(
                pl.when(pl.col("append_only"))
                .then(pl.max_horizontal(pl.col("deleted_file_retention_hours"), pl.lit(args.retention_hours)))
                .otherwise(pl.lit(args.retention_hours)).alias("vacuum_keeps_hours"))
        else:
            retention = retention.with_columns(pl.col("deleted_file_retention_hours").alias("vacuum_keeps_hours"))
        _print_frame(retention.select("table", "vacuum_keeps_hours", "log_retention_hours", "append_only"))
        results = maintenance.vacuum(args.retention_hours, dry_run=args.dry_run, progress=_progress)
        _report(results, list_files=args.dry_run)
    return 0


def _exit_now(code: int) -> None:
    """Leave without interpreter teardown: the work is fsynced and printed by now, and a native
    thread of the Delta/Arrow runtime sometimes aborts the process while Python finalizes
    ("terminate called without an active exception", exit -6), which would turn a finished
    repair into a reported failure."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    try:
        status = main()
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
    _exit_now(status or 0)
