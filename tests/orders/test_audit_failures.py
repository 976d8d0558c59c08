"""An order placed while the audit log cannot write (issue #11, defect 6): the lake lives on a
real 32 MB tmpfs that fills up right after the "confirmed" row. The order is at the gateway, so
confirm does not fail: the operator is told plainly, the desk keeps following the order, and
every row (sent, status, fill) is written as soon as space is freed, without a restart."""

from __future__ import annotations

import errno
import subprocess

import pytest

from tests.orders.conftest import signal_record, start_stack, wait_until
from v6core import orders
from v6core.orders import OrderDeskError, TicketState


@pytest.fixture
def small_disk(tmp_path):
    mount_point = tmp_path / "lake"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mount_point)], check=True)
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=True)


def fill(path) -> None:
    """Write zeros until the filesystem says ENOSPC."""
    block = b"\0" * (1 << 20)
    with open(path, "wb") as out:
        try:
            while True:
                out.write(block)
                out.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def test_an_order_placed_while_the_disk_is_full_is_followed_and_audited_once_space_returns(own_gw, small_disk):
    stack = start_stack(own_gw, small_disk)
    filler = small_disk / "filler"
    try:
        spot = own_gw.spot("AAPL")
        ticket = stack.desk.draft_from_signal(signal_record("AAPL", "BUY", spot), "sess-a")
        stack.desk.edit(ticket.ticket_id, "sess-a", limit_price=round(spot * 1.05, 2))   # marketable
        stack.desk.preview(ticket.ticket_id, "sess-a")

        def disk_fills_after_confirmed(event: str, ticket_id: str) -> None:
            if event == "confirmed" and ticket_id == ticket.ticket_id and not filler.exists():
                fill(filler)

        orders.AFTER_AUDIT_HOOKS.append(disk_fills_after_confirmed)
        try:
            placed = stack.desk.confirm(ticket.ticket_id, "sess-a")
        finally:
            orders.AFTER_AUDIT_HOOKS.remove(disk_fills_after_confirmed)

        assert len(stack.sim_orders(ticket.ticket_id)) == 1
        assert placed.audit_pending
        assert "Sent to the gateway" in placed.last_message and "could not record" in placed.last_message
        assert "do not send it again" in placed.last_message
        assert stack.desk.audit_backlog >= 1 and stack.desk.audit_error
        # Followed while the lake refuses writes: the fill shows in the ticket.
        wait_until(lambda: stack.desk.ticket(ticket.ticket_id).state == TicketState.FILLED, timeout=90)
        assert stack.events(ticket.ticket_id)[-1] == "confirmed"

        filler.unlink()
        wait_until(lambda: "fill" in stack.events(ticket.ticket_id), timeout=90)
        # the backlog is written first, then the ticket's "not recorded" mark is cleared
        wait_until(lambda: not stack.desk.ticket(ticket.ticket_id).audit_pending, timeout=30)
        events = stack.events(ticket.ticket_id)
        assert events.index("confirmed") < events.index("sent") < events.index("fill")
        assert "filled" in events or "status" in events       # the fill is in the state rows too
        assert stack.desk.audit_backlog == 0 and stack.desk.audit_error == ""
        final = stack.desk.ticket(ticket.ticket_id)
        assert final.state == TicketState.FILLED and not final.audit_pending
        [sim_order] = stack.sim_orders(ticket.ticket_id)
        fills = stack.audit.fills().filter(stack.audit.fills()["ticket_id"] == ticket.ticket_id)
        assert fills["quantity"].sum() == sim_order.filled
    finally:
        if filler.exists():
            filler.unlink()
        stack.close()


def test_a_confirmation_the_audit_cannot_record_is_refused_plainly_and_nothing_is_sent(own_gw, small_disk):
    stack = start_stack(own_gw, small_disk)
    filler = small_disk / "filler"
    try:
        spot = own_gw.spot("AAPL")
        ticket = stack.desk.draft_from_signal(signal_record("AAPL", "BUY", spot), "sess-a")
        stack.desk.edit(ticket.ticket_id, "sess-a", limit_price=round(spot * 0.8, 2))
        stack.desk.preview(ticket.ticket_id, "sess-a")
        fill(filler)
        with pytest.raises(OrderDeskError, match="could not record the confirmation .*nothing was sent"):
            stack.desk.confirm(ticket.ticket_id, "sess-a")
        assert stack.sim_orders(ticket.ticket_id) == []
        filler.unlink()
        placed = stack.desk.confirm(ticket.ticket_id, "sess-a")      # the claim was given back
        assert placed.state in (TicketState.SENT, TicketState.WORKING)
        assert len(stack.sim_orders(ticket.ticket_id)) == 1
        stack.desk.cancel(ticket.ticket_id, "sess-a")
    finally:
        if filler.exists():
            filler.unlink()
        stack.close()
