"""The claim store itself, and confirm's cost: a claim is won by exactly one caller among
threads and processes, names its holder, and a confirm never reads the audit history."""

from __future__ import annotations

import multiprocessing
import os
import threading

import pytest

from tests.orders.conftest import ready, settings_for, signal_record
from v6core.lake import AuditLog
from v6core.orders import AlreadyConfirmed, LocalClaimStore, OrderDesk, OrderDeskError, TicketState
from v6core.runtime import Runtime
from v6core.sim import SimGateway


def test_one_of_twenty_threads_wins_a_claim_and_the_record_names_it(tmp_path):
    store = LocalClaimStore.for_lake(tmp_path)
    barrier = threading.Barrier(20)
    wins: list[int] = []

    def race(i: int) -> None:
        barrier.wait()
        if store.claim("T-abc.confirm", {"pid": os.getpid(), "thread": i}):
            wins.append(i)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    assert store.holder("T-abc.confirm") == {"pid": os.getpid(), "thread": wins[0]}
    assert (tmp_path / "_claims" / "T-abc.confirm").is_file()
    assert store.holder("T-other.confirm") is None
    store.release("T-abc.confirm")
    assert store.holder("T-abc.confirm") is None
    with pytest.raises(ValueError):
        store.claim("../escape", {})


def _race_keys(directory: str, keys: list[str], start, results) -> None:
    store = LocalClaimStore(directory)
    start.wait()
    results.put([k for k in keys if store.claim(k, {"pid": os.getpid()})])


def test_each_key_is_won_by_exactly_one_of_six_processes(tmp_path):
    keys = [f"T-{i:04d}.confirm" for i in range(100)]
    ctx = multiprocessing.get_context("fork")      # no threads run in this test yet
    start, results = ctx.Barrier(6), ctx.Queue()
    procs = [ctx.Process(target=_race_keys, args=(str(tmp_path / "_claims"), keys, start, results))
             for _ in range(6)]
    for p in procs:
        p.start()
    won = [k for _ in procs for k in results.get(timeout=120)]
    for p in procs:
        p.join(timeout=30)
    assert sorted(won) == keys          # every key won once, none twice


@pytest.fixture
def sim_runtime(tmp_path):
    """A real simulator and runtime on a lake in tmp_path."""
    gw = SimGateway(seed=7, host="127.0.0.1", port=0, tick_rate=3.0)
    gw.start()
    runtime = Runtime(settings_for(gw.port, tmp_path / "lake"))
    runtime.start()
    try:
        assert runtime.wait_for(ready, timeout=60) is not None
        yield gw, runtime
    finally:
        runtime.stop()
        gw.stop()


def _aapl_spot(runtime) -> float:
    return next(leg.mark for leg in runtime.snapshot().legs
                if leg.contract.sec_type == "STK" and leg.contract.symbol == "AAPL")


class CountingAudit(AuditLog):
    """The real audit log, counting reads of the whole history."""

    reads = 0

    def audit(self, ticket_id=None):
        CountingAudit.reads += 1
        return super().audit(ticket_id)


def test_confirm_reads_no_audit_history(tmp_path, sim_runtime):
    _, runtime = sim_runtime
    desk = OrderDesk(runtime.settings, runtime, CountingAudit(tmp_path / "lake"), request_timeout=10.0)
    spot = _aapl_spot(runtime)
    ticket = desk.draft_from_signal(signal_record("AAPL", "BUY", spot), "s")
    desk.edit(ticket.ticket_id, "s", limit_price=round(spot * 0.8, 2))
    desk.preview(ticket.ticket_id, "s")
    CountingAudit.reads = 0
    sent = desk.confirm(ticket.ticket_id, "s")
    assert sent.state in (TicketState.SENT, TicketState.WORKING)
    assert CountingAudit.reads == 0, "confirm read the audit history (O(history) per click)"
    desk.cancel(ticket.ticket_id, "s")


def test_a_draft_discarded_in_one_process_cannot_be_confirmed_by_another(tmp_path, sim_runtime):
    """Two desks on one lake hold the same draft (another process is one more desk on the lake):
    a discard takes the confirmation claim, so the other desk's confirm is refused and nothing
    reaches the gateway; and a ticket confirmed first cannot be discarded afterwards."""
    gw, runtime = sim_runtime
    here = OrderDesk(runtime.settings, runtime, AuditLog(tmp_path / "lake"), request_timeout=10.0)
    spot = _aapl_spot(runtime)
    drafted = [here.draft_from_signal(signal_record("AAPL", "BUY", spot), "s") for _ in range(2)]
    for ticket in drafted:
        here.edit(ticket.ticket_id, "s", limit_price=round(spot * 0.8, 2))
    # The other process loads the same tickets from the shared audit trail at its start.
    there = OrderDesk(runtime.settings, runtime, AuditLog(tmp_path / "lake"), request_timeout=10.0)
    there.recover()
    discarded, confirmed = drafted
    for ticket in drafted:
        there.preview(ticket.ticket_id, "t")

    assert here.discard(discarded.ticket_id, "s").state == TicketState.DISCARDED
    with pytest.raises(OrderDeskError, match="discarded"):
        there.confirm(discarded.ticket_id, "t")

    sent = there.confirm(confirmed.ticket_id, "t")
    assert sent.state in (TicketState.SENT, TicketState.WORKING)
    with pytest.raises(AlreadyConfirmed, match="cannot be discarded"):
        here.discard(confirmed.ticket_id, "s")
    refs = [order.order_ref for order in gw.orders()]
    assert discarded.ticket_id not in refs and refs.count(confirmed.ticket_id) == 1
    there.cancel(confirmed.ticket_id, "t")
