"""The lake on a real S3 API (moto server): write, time travel, diff, audit, maintenance, secrets."""

from __future__ import annotations

import polars as pl
import pytest

from tests.lake.factory import STEP, T0, snapshot_at
from v6core.config import Settings
from v6core.lake import (
    ACCOUNT_HISTORY, GREEKS_HISTORY, PORTFOLIO, AuditEvent, AuditLog, LakeLockedError, LakeMaintenance,
    LakeReader, LakeWriter, VersionUnavailableError, table_path,
)
from v6core.lake.storage import S3Root, open_table

from tests.s3.conftest import SECRET_KEY


def _write(root, count: int) -> None:
    writer = LakeWriter(root, batch_size=3)
    try:
        for i in range(count):
            writer.write_snapshot(snapshot_at(i))
    finally:
        writer.stop()


def test_write_time_travel_and_diff_on_s3(s3_lake):
    _write(s3_lake, 8)
    reader = LakeReader(s3_lake)
    versions = reader.versions()
    assert versions["version"].to_list() == list(range(8))
    assert versions["snapshot_time"].to_list() == [T0 + i * STEP for i in range(8)]
    for i in (0, 3, 7):
        legs = reader.portfolio(i)
        assert legs["quantity"].to_list() == [leg.quantity for leg in snapshot_at(i).legs]
    # by date-time: the snapshot current at that moment (recorded times, not object mtimes)
    assert reader.version_at(T0 + 3 * STEP + STEP / 2) == 3
    assert reader.version_at(T0 - STEP) is None
    diff = reader.diff(2, 3)     # i=3 closes the TSLA spread
    assert set(diff.legs_with("closed")["con_id"].to_list()) == {2001, 2002}
    assert reader.greeks_history().height == 8
    assert reader.account_history()["version"].to_list() == list(range(8))
    with pytest.raises(VersionUnavailableError):
        reader.portfolio(99)


def test_audit_trail_on_s3_survives_a_new_process(s3_lake):
    log = AuditLog(s3_lake)
    events = [AuditEvent("T1", "drafted"), AuditEvent("T1", "confirmed")]
    assert log.append_audit(events) == 2
    assert log.append_audit(events) == 0      # retried: not written twice
    assert AuditLog(S3Root(str(s3_lake), s3_lake.storage_options)).audit("T1")["event"].to_list() == \
        ["drafted", "confirmed"]


def test_maintenance_on_s3(s3_lake):
    _write(s3_lake, 12)
    maintenance = LakeMaintenance(s3_lake)
    names = [p.name for p in maintenance.tables()]
    assert names == [PORTFOLIO, GREEKS_HISTORY, ACCOUNT_HISTORY]
    retention = maintenance.retention()
    assert (retention["log_bytes"] > 0).all()
    checkpoint = {r.table: r for r in maintenance.checkpoint()}
    assert checkpoint[PORTFOLIO].detail == "checkpoint at version 11"
    assert open_table(table_path(s3_lake, PORTFOLIO)).version() == 11
    assert checkpoint[PORTFOLIO].log_bytes_after > checkpoint[PORTFOLIO].log_bytes_before  # the checkpoint file
    compact = {r.table: r for r in maintenance.compact()}
    assert "files merged" in compact[GREEKS_HISTORY].detail
    assert LakeReader(s3_lake).greeks_history().height == 12            # compaction keeps every row
    set_retention = maintenance.set_log_retention(1)
    assert {r.table for r in set_retention} == {PORTFOLIO, GREEKS_HISTORY, ACCOUNT_HISTORY}
    conf = open_table(table_path(s3_lake, PORTFOLIO)).metadata().configuration
    assert conf["delta.logRetentionDuration"] == "interval 3600 seconds"
    dry = {r.table: r for r in maintenance.vacuum(0, dry_run=True)}
    assert len(dry[PORTFOLIO].files) == 11       # every overwritten version's file, nothing deleted
    assert LakeReader(s3_lake).portfolio(0).height > 0
    done = {r.table: r for r in maintenance.vacuum(0, dry_run=False)}
    assert len(done[PORTFOLIO].files) == 11
    reader = LakeReader(s3_lake)
    with pytest.raises(VersionUnavailableError):
        reader.portfolio(0)
    assert reader.portfolio().height == len(snapshot_at(11).legs)


def test_second_writer_is_read_only_through_the_store(s3_lake):
    first = LakeWriter(s3_lake)
    first.acquire()
    try:
        second = LakeWriter(S3Root(str(s3_lake), s3_lake.storage_options))
        with pytest.raises(LakeLockedError, match="written by .* pid"):
            second.acquire()
        assert LakeReader(s3_lake).versions().height == 0   # reading needs no lease
    finally:
        first.stop()
    second.acquire()        # released: the other process may write now
    second.write_snapshot(snapshot_at(0))
    second.stop()
    assert LakeReader(s3_lake).latest_version() == 0


def test_credentials_are_never_shown(moto_server, monkeypatch):
    monkeypatch.setenv("V6_LAKE_URI", "s3://some-bucket/desk")
    monkeypatch.setenv("V6_S3_ENDPOINT_URL", moto_server.endpoint)
    monkeypatch.setenv("V6_S3_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("V6_S3_SECRET_ACCESS_KEY", SECRET_KEY)
    settings = Settings(_env_file=None)
    root = settings.lake_root()
    assert isinstance(root, S3Root) and str(root) == "s3://some-bucket/desk"
    assert root.storage_options["AWS_SECRET_ACCESS_KEY"] == SECRET_KEY
    assert root.storage_options["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] == "false"
    assert root.storage_options["AWS_CONDITIONAL_PUT"] == "etag"
    for text in (repr(root), str(root), repr(settings), str(settings.model_dump())):
        assert SECRET_KEY not in text and "AKIDEXAMPLE" not in text
    assert root.redact(f"boom {SECRET_KEY} AKIDEXAMPLE") == "boom *** ***"


def test_local_paths_stay_the_default(tmp_path, monkeypatch):
    monkeypatch.delenv("V6_LAKE_URI", raising=False)
    assert Settings(_env_file=None).lake_root() == Settings.model_fields["lake_path"].default
    monkeypatch.setenv("V6_LAKE_PATH", str(tmp_path / "lake"))
    assert Settings(_env_file=None).lake_root() == tmp_path / "lake"
    monkeypatch.setenv("V6_LAKE_URI", str(tmp_path / "other"))
    assert Settings(_env_file=None).lake_root() == tmp_path / "other"


def test_health_finds_a_data_file_deleted_from_the_bucket(moto_server, s3_lake):
    from v6core.lake import AuditEvent, AuditLog, TableDamagedError
    from v6core.lake.health import check_lake
    from v6core.lake.s3store import s3_client

    log = AuditLog(s3_lake)
    for i in range(3):
        log.append_audit([AuditEvent(f"T{i}", "drafted")])
    path = table_path(s3_lake, "orders_audit")
    assert all(t.ok for t in check_lake(s3_lake))
    victim = sorted(open_table(path).file_uris())[1].rsplit("/", 1)[-1]
    s3_client(s3_lake).delete_object(Bucket=s3_lake.bucket, Key=f"{path.key}/{victim}")

    health = {t.table: t for t in check_lake(s3_lake)}
    audit = health["orders_audit"]
    assert not audit.ok and audit.blocks_trading
    assert audit.problem == f"1 data file(s) of version {open_table(path).version()} are missing (first: {victim})"
    assert all(t.ok for name, t in health.items() if name != "orders_audit")
    # a fresh process's desk is refused with the table named and the repair command to run
    with pytest.raises(TableDamagedError) as refused:
        AuditLog(S3Root(str(s3_lake), s3_lake.storage_options)).audit()
    assert f"The orders_audit table is damaged: {audit.problem}" in str(refused.value)
    assert f"run `python -m v6core.lake --lake {s3_lake} repair orders_audit`" in str(refused.value)
    # the named command repairs it in place on S3: the missing file leaves the table, the journal
    # (this host's disk) gives back the acknowledged events it held, nothing else changes
    from tests.s3.test_copy_s3 import _cli

    dry = _cli(moto_server, "--lake", str(s3_lake), "repair", "orders_audit", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"would remove {victim}" in dry.stdout and not check_lake(s3_lake)[3].ok
    done = _cli(moto_server, "--lake", str(s3_lake), "repair", "orders_audit")
    assert done.returncode == 0, done.stderr
    assert f"removed from the table: {victim}" in done.stdout and "1 journal row(s) appended" in done.stdout
    assert all(t.ok for t in check_lake(s3_lake))
    assert sorted(AuditLog(s3_lake).audit()["ticket_id"].to_list()) == ["T0", "T1", "T2"]
