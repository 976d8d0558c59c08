"""Issue #11 defect 3: one corrupt commit must not stop the app, and the repair loses no audit event.

Real corrupt files: garbage over the latest portfolio commit and over the latest orders_audit
commit, and a deleted orders_audit data file. The app starts and names the damaged table with what
it means for trading; ticket actions fail with that sentence, not a raw DeltaError; the repair
command (with a dry run) brings the table back; every audit event that was acknowledged is there.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from tests.app.conftest import navigation_like_a_running_server  # noqa: F401 - autouse for AppTest
from tests.lake.factory import T0, snapshot_at
from tests.safety.lake_support import connected, shown_texts, sim_services, wait_until
from v6core.lake import (
    ORDERS_AUDIT, PORTFOLIO, QUARANTINE_DIR, AuditEvent, AuditLog, LakeReader, LakeWriter, TableDamagedError,
    check_table,
)
from v6core.orders import TradingUnavailable

REPO = Path(__file__).resolve().parents[2]
GARBAGE = b"\x00\x17 not json {{{ garbage written over a commit \xff\n"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "v6core.lake", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


def _commits(table: Path) -> list[Path]:
    return sorted((table / "_delta_log").glob("*.json"))


def _write_history(root: Path, count: int) -> None:
    writer = LakeWriter(root, batch_size=2)
    try:
        for i in range(count):
            writer.write_snapshot(snapshot_at(i))
        writer.flush()
    finally:
        writer.stop()


def _acknowledge(root: Path, batches: int, prefix: str = "T") -> list[str]:
    """Append `batches` audit commits of two events each; the ids of every acknowledged event."""
    audit, ids = AuditLog(root), []
    for b in range(batches):
        events = [AuditEvent(f"{prefix}{b}", name, ts=T0 + timedelta(seconds=2 * b + k))
                  for k, name in enumerate(("drafted", "checked"))]
        assert audit.append_audit(events) == 2          # returned: acknowledged as durable
        ids += [e.event_id for e in events]
    return ids


def _audit_ids(root: Path) -> list[str]:
    return AuditLog(root).audit()["event_id"].to_list()


def test_garbage_over_the_latest_portfolio_commit(tmp_path):
    root = tmp_path / "lake"
    _write_history(root, 6)
    latest = _commits(root / PORTFOLIO)[-1]
    latest.write_bytes(GARBAGE)

    with sim_services(root) as services:             # starts whatever state the table is in
        connected(services)
        assert services.writer is not None and services.audit is not None
        [portfolio] = [t for t in services.table_health() if t.table == PORTFOLIO]
        assert not portfolio.ok and "log cannot be read" in portfolio.problem
        wait_until(lambda: services.writer.last_error, timeout=30)     # the writer says it is failing
        _, sidebar, main = shown_texts("overview")
        for texts in (sidebar, main):
            assert any("Lake table portfolio is damaged" in t and "trading is not affected" in t
                       and "repair portfolio" in t for t in texts), texts
        at, _, history_errors = shown_texts("pages/history.py")
        assert any("The portfolio table is damaged" in t and "repair portfolio" in t for t in history_errors)
        assert not any("unexpected error" in t for t in history_errors), history_errors

    dry = _cli("--lake", str(root), "repair", PORTFOLIO, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would move" in dry.stdout and latest.read_bytes() == GARBAGE     # a dry run changes nothing
    done = _cli("--lake", str(root), "repair", PORTFOLIO)
    assert done.returncode == 0, done.stderr
    assert check_table(root / PORTFOLIO).ok
    [moved] = list((root / QUARANTINE_DIR / PORTFOLIO).glob(f"*/_delta_log/{latest.name}"))
    assert moved.read_bytes() == GARBAGE                                     # moved aside, never deleted
    assert LakeReader(root).versions()["seq"].to_list() == [0, 1, 2, 3, 4]
    writer = LakeWriter(root)                          # recording resumes after the kept versions
    try:
        assert writer.write_snapshot(snapshot_at(6)) == 6
    finally:
        writer.stop()
    assert LakeReader(root).versions()["seq"].to_list() == [0, 1, 2, 3, 4, 6]


def test_garbage_over_the_latest_orders_audit_commit(tmp_path):
    root = tmp_path / "lake"
    acknowledged = _acknowledge(root, 4)
    latest = _commits(root / ORDERS_AUDIT)[-1]
    latest.write_bytes(GARBAGE)                       # the last two acknowledged events are in it

    with sim_services(root) as services:
        connected(services)
        leg = services.runtime.snapshot().legs[0]
        with pytest.raises(TradingUnavailable) as refused:
            services.orders.draft_close(leg, as_combo=False, session_id="s1")
        assert "The orders_audit table is damaged" in str(refused.value)
        assert "Trading is paused" in str(refused.value) and "repair orders_audit" in str(refused.value)
        _, sidebar, main = shown_texts("overview")
        for texts in (sidebar, main):
            assert any("Lake table orders_audit is damaged" in t and "Trading is paused" in t for t in texts)

    dry = _cli("--lake", str(root), "repair", ORDERS_AUDIT, "--dry-run")
    assert dry.returncode == 0 and latest.read_bytes() == GARBAGE, dry.stderr
    done = _cli("--lake", str(root), "repair", ORDERS_AUDIT)
    assert done.returncode == 0, done.stderr
    ids = _audit_ids(root)
    assert set(acknowledged) <= set(ids) and len(ids) == len(set(ids))       # none lost, none twice
    assert list((root / QUARANTINE_DIR / ORDERS_AUDIT).glob(f"*/_delta_log/{latest.name}"))
    # Trading works again on the repaired table.
    assert AuditLog(root).append_audit([AuditEvent("T9", "drafted")]) == 1


def test_a_deleted_orders_audit_data_file(tmp_path):
    root = tmp_path / "lake"
    acknowledged = _acknowledge(root, 5)
    commits = _commits(root / ORDERS_AUDIT)
    added = [json.loads(line)["add"]["path"] for line in commits[2].read_text().splitlines()
             if "add" in json.loads(line)]
    (root / ORDERS_AUDIT / added[0]).unlink()          # the events of the second append vanish

    with pytest.raises(TableDamagedError, match="orders_audit table is damaged.*data file"):
        AuditLog(root).audit()
    # Appended while damaged: journaled first, refused by the table, kept for the repair.
    late = AuditEvent("T7", "drafted")
    with pytest.raises(TableDamagedError):
        AuditLog(root).append_audit([late])

    files_before = {p.name for p in (root / ORDERS_AUDIT).glob("*.parquet")}
    done = _cli("--lake", str(root), "repair", ORDERS_AUDIT)
    assert done.returncode == 0, done.stderr
    assert check_table(root / ORDERS_AUDIT).ok
    assert files_before <= {p.name for p in (root / ORDERS_AUDIT).glob("*.parquet")}   # nothing deleted
    ids = _audit_ids(root)
    assert set(acknowledged) | {late.event_id} == set(ids) and len(ids) == len(set(ids))
