"""After a SIGKILL and a restart, the audit keeps IB's identity of an order that filled while v6
was down (issue #17, defect 4): every row written after the restart carries IB's order id and
perm id, and the fill price equals the gateway's executions."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.orders.conftest import start_stack, wait_until
from v6core.orders import TicketState

ROOT = Path(__file__).resolve().parents[2]


def test_rows_after_a_kill_and_restart_carry_ibs_ids_and_the_executions_price(own_gw, tmp_path):
    lake = tmp_path / "lake"
    child = subprocess.Popen([sys.executable, "-m", "tests.orders.rest_child", str(own_gw.port), str(lake)],
                             cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        info = json.loads(child.stdout.readline())
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    ticket_id = info["ticket_id"]
    assert info["order_id"] and info["perm_id"]
    own_gw.set_spot("AAPL", round(info["limit_price"] * 0.95, 2))
    wait_until(lambda: [o.status for o in own_gw.orders() if o.order_ref == ticket_id] == ["Filled"])
    executions = [f for f in own_gw.fills() if f["order_ref"] == ticket_id]
    average = sum(f["quantity"] * f["price"] for f in executions) / sum(f["quantity"] for f in executions)

    restarted_at = datetime.now(timezone.utc)
    stack = start_stack(own_gw, lake)
    try:
        wait_until(lambda: stack.desk.ticket(ticket_id).state == TicketState.FILLED, timeout=30)
        wait_until(lambda: "fill" in stack.events(ticket_id), timeout=30)
        ticket = stack.desk.ticket(ticket_id)
        assert (ticket.order_id, ticket.perm_id) == (info["order_id"], info["perm_id"])
        assert ticket.avg_fill_price == pytest.approx(average)

        trail = stack.audit.audit(ticket_id)
        after = [r for r in trail.rows(named=True) if r["ts"] >= restarted_at]
        assert {r["event"] for r in after} >= {"status", "fill"}
        for row in after:
            assert (row["event"], row["order_id"], row["perm_id"]) == (row["event"], info["order_id"],
                                                                       info["perm_id"])
        for row in (r for r in after if r["event"] == "status"):
            detail = json.loads(row["detail"])
            assert detail["state"] == "filled" and detail["filled"] == 2
            assert detail["avg_fill_price"] == pytest.approx(average)
        fills = stack.audit.fills().filter(stack.audit.fills()["ticket_id"] == ticket_id)
        assert sorted(fills["exec_id"].to_list()) == sorted(f["exec_id"] for f in executions)
        assert set(fills["order_id"].to_list()) == {info["order_id"]}
        assert set(fills["perm_id"].to_list()) == {info["perm_id"]}
        assert sorted(fills["price"].to_list()) == sorted(f["price"] for f in executions)
    finally:
        stack.close()
