"""Checkpoint, compaction, vacuum and log retention: the log shrinks, reads stay correct, CLI works."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from tests.lake.factory import snapshot_at
from v6core.lake import (
    GREEKS_HISTORY, PORTFOLIO, LakeMaintenance, LakeReader, LakeWriter, VersionUnavailableError,
    legs_table, log_size,
)
from v6core.lake.__main__ import main

REPO = Path(__file__).resolve().parents[2]
COUNT = 105


@pytest.fixture(scope="module")
def long_lake(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("maint") / "lake"
    writer = LakeWriter(root)
    for i in range(COUNT):
        writer.write_snapshot(snapshot_at(i))
        if i % 10 == 9:
            writer.flush()
    writer.stop()
    return root


def _sorted_greeks(root: Path) -> pl.DataFrame:
    return pl.read_delta(str(root / GREEKS_HISTORY)).sort("version", "level", "key")


def test_maintenance_keeps_reads_correct_and_shrinks_the_log(long_lake, capsys):
    root = long_lake
    log_dir = root / PORTFOLIO / "_delta_log"
    # Automatic checkpointing (delta.checkpointInterval = 100) happened while writing.
    assert [p.name for p in log_dir.glob("*.checkpoint.parquet")] == [f"{99:020d}.checkpoint.parquet"]

    maintenance = LakeReader(root).maintenance
    retention = maintenance.retention()
    assert set(retention["table"]) == {"account_history", "greeks_history", "portfolio"}
    assert retention.filter(pl.col("table") == "portfolio")["deleted_file_retention_hours"].item() == 168.0

    # The CLI shows the retention it keeps before a (dry-run) vacuum and lists the files.
    assert main(["--lake", str(root), "vacuum", "--retention-hours", "0", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.index("vacuum_keeps_hours") < out.index("would delete 104 files")
    assert LakeReader(root).portfolio(3).equals(pl.from_arrow(legs_table(snapshot_at(3))))

    greeks_before = _sorted_greeks(root)
    files_before = len(list((root / GREEKS_HISTORY).glob("*.parquet")))
    steps: list[tuple[int, int, str]] = []
    compacted = maintenance.compact(progress=lambda i, n, name: steps.append((i, n, name)))
    assert steps[-1] == (3, 3, "done")
    assert "skipped" in next(r.detail for r in compacted if r.table == PORTFOLIO)
    assert "11 files merged into 1" in next(r.detail for r in compacted if r.table == GREEKS_HISTORY)
    assert _sorted_greeks(root).equals(greeks_before)

    vacuumed = maintenance.vacuum(retention_hours=0, dry_run=False)
    assert len(next(r.files for r in vacuumed if r.table == PORTFOLIO)) == COUNT - 1
    assert len(list((root / GREEKS_HISTORY).glob("*.parquet"))) < files_before
    reader = LakeReader(root)
    with pytest.raises(VersionUnavailableError, match="vacuum"):
        reader.portfolio(3)
    # Vacuum commits are not snapshots: the version list and the latest portfolio are unchanged.
    assert reader.versions()["seq"].to_list() == list(range(COUNT))
    assert reader.portfolio(reader.latest_version()).equals(pl.from_arrow(legs_table(snapshot_at(COUNT - 1))))
    # The long-range aggregates survive.
    assert reader.greeks_history()["version"].to_list() == list(range(COUNT))
    assert reader.account_history().height == COUNT

    before = log_size(root / PORTFOLIO)
    maintenance.set_log_retention(0)
    results = maintenance.checkpoint()
    portfolio = next(r for r in results if r.table == PORTFOLIO)
    assert portfolio.log_bytes_after < before / 10
    assert log_size(root / PORTFOLIO) == portfolio.log_bytes_after
    reader = LakeReader(root)
    assert pl.read_delta(str(root / PORTFOLIO)).equals(pl.from_arrow(legs_table(snapshot_at(COUNT - 1))))
    assert reader.greeks_history().height == COUNT

    # A writer opened after the log was pruned still knows the last snapshot it must not repeat.
    writer = LakeWriter(root)
    last = writer.write_snapshot(snapshot_at(COUNT - 1))
    assert writer.write_snapshot(snapshot_at(COUNT)) == last + 1
    writer.stop()
    reader = LakeReader(root)
    assert reader.versions()["seq"].to_list() == [COUNT]
    assert reader.portfolio(last + 1).equals(pl.from_arrow(legs_table(snapshot_at(COUNT))))


def test_cli_runs_as_a_module(small_lake):
    root, snapshots = small_lake
    run = subprocess.run([sys.executable, "-m", "v6core.lake", "--lake", str(root), "versions", "--last", "0"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert f"{len(snapshots)} snapshot versions" in run.stdout
    run = subprocess.run([sys.executable, "-m", "v6core.lake", "--lake", str(root), "checkpoint"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "_delta_log total:" in run.stdout
    assert LakeMaintenance(root).retention()["log_bytes"].sum() > 0
