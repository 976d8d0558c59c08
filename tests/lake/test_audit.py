"""orders_audit and fills: append-only, long retention, durable, idempotent appends."""

from __future__ import annotations

from datetime import date, datetime, timezone

import polars as pl
import pytest
from deltalake import DeltaTable, write_deltalake

import v6core.lake as lake
from v6core.lake import AuditEvent, AuditLog, FillRow
from v6core.models import ContractInfo, FillView

UTC = timezone.utc


def _event(ticket: str, event: str, minute: int, **kw) -> AuditEvent:
    return AuditEvent(ticket_id=ticket, event=event, ts=datetime(2026, 11, 21, 15, minute, tzinfo=UTC),
                      session_id="s1", **kw)


def _fill(exec_id: str, day: int = 21, qty: float = 1.0) -> FillRow:
    return FillRow(ts=datetime(2026, 11, day, 15, 0, tzinfo=UTC), exec_id=exec_id, ticket_id="T1",
                   order_id=7, perm_id=900, con_id=1001, symbol="AAPL", local_symbol="AAPL  261218P00210000",
                   side="BOT", quantity=qty, price=1.25, commission=0.65, realized_pnl=None, account="DU1")


def test_audit_trail_is_recorded_in_order_and_filtered_by_ticket(lake_root):
    log = AuditLog(lake_root)
    events = [_event("T1", "drafted", 1), _event("T1", "confirmed", 2),
              _event("T2", "drafted", 3), _event("T1", "sent", 4, order_id=7, perm_id=900, status="Submitted")]
    assert log.append_audit(events) == 4
    trail = log.audit("T1")
    assert trail["event"].to_list() == ["drafted", "confirmed", "sent"]
    assert trail["order_id"].to_list() == [None, None, 7]
    assert trail["ts"].dtype == pl.Datetime("us", "UTC")
    assert log.audit().height == 4
    # A fresh instance (another process after a restart) reads the same committed rows.
    assert AuditLog(lake_root).audit("T2")["event"].to_list() == ["drafted"]


def test_retried_audit_append_is_idempotent(lake_root, monkeypatch):
    log = AuditLog(lake_root)
    first = _event("T1", "drafted", 1)
    assert log.append_audit([first]) == 1
    assert log.append_audit([first]) == 0
    real = lake.audit.write_deltalake

    def lands_then_raises(*args, **kwargs):
        real(*args, **kwargs)
        raise OSError("timeout after commit")

    confirmed = _event("T1", "confirmed", 2)
    monkeypatch.setattr(lake.audit, "write_deltalake", lands_then_raises)
    with pytest.raises(OSError):
        log.append_audit([confirmed])
    monkeypatch.setattr(lake.audit, "write_deltalake", real)
    assert log.append_audit([confirmed, _event("T1", "sent", 3)]) == 1
    assert log.audit("T1")["event"].to_list() == ["drafted", "confirmed", "sent"]


def test_fills_are_deduplicated_by_exec_id(lake_root):
    log = AuditLog(lake_root)
    assert log.append_fills([_fill("e1"), _fill("e2"), _fill("e2")]) == 2
    assert log.append_fills([_fill("e2"), _fill("e3", day=20)]) == 1
    assert AuditLog(lake_root).append_fills([_fill("e1")]) == 0     # another instance knows them too
    assert sorted(log.fills()["exec_id"].to_list()) == ["e1", "e2", "e3"]
    assert log.fills(day=date(2026, 11, 20))["exec_id"].to_list() == ["e3"]
    view = FillView(exec_id="e4", order_id=8, perm_id=901, order_ref="T9",
                    contract=ContractInfo(con_id=5, symbol="SPY", sec_type="STK"), side="SLD",
                    quantity=10, price=600.5, time=datetime(2026, 11, 21, 16, 0, tzinfo=UTC), commission=1.0)
    assert log.append_fills([view], account="DU1") == 1
    row = log.fills().filter(pl.col("exec_id") == "e4").row(0, named=True)
    assert (row["ticket_id"], row["side"], row["quantity"], row["account"]) == ("T9", "SLD", 10.0, "DU1")


def test_audit_tables_are_append_only_with_long_retention(lake_root):
    log = AuditLog(lake_root)
    log.append_audit([_event("T1", "drafted", 1)])
    log.append_fills([_fill("e1")])
    for name in (lake.ORDERS_AUDIT, lake.FILLS):
        path = str(lake_root / name)
        conf = DeltaTable(path).metadata().configuration
        assert conf["delta.appendOnly"] == "true"
        assert conf["delta.logRetentionDuration"] == "interval 3650 days"
        assert conf["delta.deletedFileRetentionDuration"] == "interval 3650 days"
        before = pl.read_delta(path)
        with pytest.raises(Exception, match="append-only"):
            DeltaTable(path).delete()
        with pytest.raises(Exception, match="append-only"):
            write_deltalake(path, before.head(1).to_arrow(), mode="overwrite")
        assert pl.read_delta(path).equals(before)


def test_naive_timestamps_are_refused(lake_root):
    with pytest.raises(ValueError, match="timezone-aware"):
        AuditLog(lake_root).append_audit([AuditEvent(ticket_id="T1", event="drafted", ts=datetime(2026, 11, 21))])


def test_vacuum_never_shortens_the_audit_retention(lake_root):
    from v6core.lake import LakeMaintenance

    log = AuditLog(lake_root)
    log.append_audit([_event("T1", "drafted", 1)])
    log.append_audit([_event("T1", "confirmed", 2)])
    log.append_fills([_fill("e1")])
    maintenance = LakeMaintenance(lake_root)
    maintenance.compact()
    results = {r.table: r for r in maintenance.vacuum(retention_hours=0, dry_run=False)}
    assert results[lake.ORDERS_AUDIT].detail == "keeps 87600 h; deleted 0 files"
    assert "skipped" in maintenance.set_log_retention(0)[0].detail
    assert log.audit("T1")["event"].to_list() == ["drafted", "confirmed"]
    assert pl.read_delta(str(lake_root / lake.ORDERS_AUDIT), version=1).height == 1   # time travel intact


def test_two_processes_interleaving_appends_read_each_data_file_once_and_never_duplicate(lake_root, monkeypatch):
    a, b = AuditLog(lake_root), AuditLog(lake_root)       # two processes on one lake
    reads: list[str] = []
    real_read = lake.audit.pq.read_table

    def counting_read(path, *args, **kwargs):
        reads.append(str(path))
        return real_read(path, *args, **kwargs)

    monkeypatch.setattr(lake.audit.pq, "read_table", counting_read)
    events = {name: [_event(f"T{i}", name, i) for i in range(6)] for name in ("a", "b")}
    for i in range(6):
        assert a.append_audit([events["a"][i]]) == 1
        assert b.append_audit([events["b"][i]]) == 1
    # each commit of one process made the other read that one new file, not the whole table again
    assert len(reads) == len(set(reads)) == 11
    everything = events["a"] + events["b"]
    assert a.append_audit(everything) == 0 and b.append_audit(everything) == 0     # retried: never twice
    DeltaTable(str(lake_root / "orders_audit")).optimize.compact()                 # files rewritten
    assert a.append_audit(everything) == 0 and AuditLog(lake_root).append_audit(everything) == 0
    assert sorted(a.audit()["event_id"].to_list()) == sorted(e.event_id for e in everything)
