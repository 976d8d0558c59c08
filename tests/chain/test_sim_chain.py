"""Chains, templates, tickets and rolls through the real ib_async client and the simulator."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pytest
from scipy.stats import norm

from tests.chain.conftest import wait_until
from v6core import risk
from v6core.chainfeed import ChainFeed, ChainLineLimit
from v6core.orders import TicketState, strategy_legs
from v6core.structures import (
    RollPlan, TemplateSpec, build, draft_roll, held_quotes, strikes_around, ticket_risk,
)
from v6core.structures.chain import OptionQuote
from v6core.structures.templates import Structure, StructureLeg
from v6core.structures.drafting import discard_draft, draft_structure

SYMBOL = "QQQ"


def live_slice(stack, symbol: str, expiry: date, count: int = 20, view: str = "test"):
    listing = stack.feed.listing(symbol).result(timeout=10)
    spot = stack.gw.spot(symbol)
    strikes = strikes_around(listing.strikes, spot, count)
    stack.feed.show(view, symbol, expiry, strikes).result(timeout=10)
    stock_quote = stack.gw.quote(listing.stock.con_id)
    stock = OptionQuote(listing.stock, bid=stock_quote["bid"], ask=stock_quote["ask"], delta=1.0)

    def full():
        s = stack.feed.slice(symbol, expiry, strikes, stack.gw.spot(symbol), stock)
        quotes = [*s.calls, *s.puts]
        ok = all(q is not None and q.delta is not None and q.mid is not None for q in quotes)
        return s if ok else None
    return wait_until(full, timeout=20)


def lines(gw) -> int:
    return gw.subscription_counts()["market_data"]


def expiry_near(stack, symbol: str, days: int) -> date:
    today = stack.gw.today
    return min(stack.gw.expiries(symbol), key=lambda d: abs((d - today).days - days))


def sim_delta(stack, con_id: int) -> float:
    """Black-Scholes delta (scipy) at the inputs the simulator prices this option with."""
    x = stack.gw.option_inputs(con_id)
    d1 = (math.log(x["spot"] / x["strike"]) + (x["rate"] + x["iv"] ** 2 / 2) * x["t_years"]) / (
        x["iv"] * math.sqrt(x["t_years"]))
    return float(norm.cdf(d1)) - (0.0 if x["right"] == "C" else 1.0)


def brute_force_strike(stack, s, right: str, target: float) -> float:
    """From the simulator's own deltas (not the feed's), nearest |delta|, ties further OTM."""
    best = None
    for k in s.strikes:
        q = s.option(k, right)
        err = abs(abs(sim_delta(stack, q.contract.con_id)) - target)
        key = (round(err, 12), -k if right == "C" else k)
        if best is None or key < best[0]:
            best = (key, k)
    return best[1]


def test_the_feed_lists_the_gateways_chain_and_streams_only_what_is_shown(chain_stack):
    stack = chain_stack
    listing = stack.feed.listing(SYMBOL).result(timeout=10)
    assert list(listing.expiries) == stack.gw.expiries(SYMBOL)
    assert list(listing.strikes) == stack.gw.strikes(SYMBOL)
    before = lines(stack.gw)
    expiry = expiry_near(stack, SYMBOL, 30)
    stack.gw.freeze()
    try:
        s = live_slice(stack, SYMBOL, expiry, count=10, view="a")
        wait_until(lambda: lines(stack.gw) == before + 20)
        for q in [*s.calls, *s.puts]:
            sim = stack.gw.quote(q.contract.con_id)
            assert (q.bid, q.ask) == (sim["bid"], sim["ask"])
            assert q.open_interest > 0
            assert q.delta == pytest.approx(sim_delta(stack, q.contract.con_id), abs=1e-6)
    finally:
        stack.gw.unfreeze()
    # a second view overlapping the first shares its lines
    listing_strikes = strikes_around(listing.strikes, stack.gw.spot(SYMBOL), 14)
    stack.feed.show("b", SYMBOL, expiry, listing_strikes).result(timeout=10)
    wait_until(lambda: lines(stack.gw) == before + 28)
    # the first session moves on: only the second's lines stay
    stack.feed.release("a").result(timeout=10)
    wait_until(lambda: lines(stack.gw) == before + 28)
    stack.feed.show("b", SYMBOL, expiry, listing_strikes[:4]).result(timeout=10)
    wait_until(lambda: lines(stack.gw) == before + 8)
    stack.feed.release("b").result(timeout=10)
    wait_until(lambda: lines(stack.gw) == before)


def test_the_feed_refuses_more_lines_than_allowed_and_expires_idle_views(chain_stack):
    stack = chain_stack
    small = ChainFeed(stack.runtime, max_lines=30, lease_seconds=4.0)
    expiry = expiry_near(stack, SYMBOL, 30)
    strikes = strikes_around(stack.gw.strikes(SYMBOL), stack.gw.spot(SYMBOL), 20)
    with pytest.raises(ChainLineLimit, match="30 market-data lines"):
        small.show("x", SYMBOL, expiry, strikes).result(timeout=10)
    before = lines(stack.gw)
    small.show("x", SYMBOL, expiry, strikes[:10]).result(timeout=10)
    wait_until(lambda: lines(stack.gw) == before + 20, timeout=3)
    # nobody renews the view: its lease runs out and the lines are cancelled
    wait_until(lambda: lines(stack.gw) == before, timeout=10)
    assert small.views() == {}


class PublicOnly:
    """The runtime as a feed outside it may see it: any private member raises."""

    def __init__(self, runtime):
        self._wrapped = runtime

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(f"the chain feed used the runtime's private member {name!r}")
        return getattr(self._wrapped, name)


def test_the_feed_uses_only_the_runtimes_public_api_and_shares_its_lines(chain_stack):
    """Through `Runtime.on_loop` alone: streams what is shown, reads a contract the runtime
    itself streams (an on-demand quote) from the runtime's ticker instead of a second line."""
    stack = chain_stack
    feed = ChainFeed(PublicOnly(stack.runtime), max_lines=40)
    expiry = expiry_near(stack, SYMBOL, 30)
    feed.listing(SYMBOL).result(timeout=10)
    strikes = strikes_around(stack.gw.strikes(SYMBOL), stack.gw.spot(SYMBOL), 4)
    before = lines(stack.gw)
    feed.show("pub", SYMBOL, expiry, strikes).result(timeout=10)
    wait_until(lambda: lines(stack.gw) == before + 8)
    shared = feed.contract(SYMBOL, expiry, strikes[0], "C")
    stack.runtime.ensure_quotes([shared], "pub-test").result(timeout=10)
    try:
        wait_until(lambda: lines(stack.gw) == before + 8)          # handed over, not doubled
        wait_until(lambda: (q := feed.quote(shared.con_id)) is not None and q.mid is not None)
    finally:
        stack.runtime.release_quotes("pub-test").result(timeout=10)
        feed.release("pub").result(timeout=10)
    wait_until(lambda: lines(stack.gw) == before)


TEMPLATE_CASES = [
    (TemplateSpec("single", side="buy", right="C", delta=0.30), [("C", 0.30)]),
    (TemplateSpec("vertical", side="sell", right="P", delta=0.30, width=5), [("P", 0.30)]),
    (TemplateSpec("strangle", side="sell", delta=0.20), [("P", 0.20), ("C", 0.20)]),
    (TemplateSpec("iron condor", delta=0.20, width=5), [("P", 0.20), ("C", 0.20)]),
    (TemplateSpec("calendar", side="buy", right="C", delta=0.40), [("C", 0.40)]),
    (TemplateSpec("diagonal", side="buy", right="P", delta=0.30, width=5), [("P", 0.30)]),
    (TemplateSpec("covered call", delta=0.25), [("C", 0.25)]),
    (TemplateSpec("cash-secured put", delta=0.25), [("P", 0.25)]),
]


def test_each_template_puts_its_key_strikes_at_the_target_delta(chain_stack):
    stack = chain_stack
    stack.gw.freeze()
    try:
        near = live_slice(stack, SYMBOL, expiry_near(stack, SYMBOL, 30), count=60, view="tpl")
        far = live_slice(stack, SYMBOL, expiry_near(stack, SYMBOL, 60), count=60, view="tpl-far")
        for spec, keys in TEMPLATE_CASES:
            structure = build(spec, near, far)
            first_expiry = [leg for leg in structure.legs if leg.contract.expiry == near.expiry]
            for right, target in keys:
                want = brute_force_strike(stack, near, right, target)
                assert any(leg.contract.right == right and leg.contract.strike == want
                           for leg in first_expiry), \
                    f"{spec.kind}: no {right} leg at {want} in {[leg.label for leg in structure.legs]}"
    finally:
        stack.feed.release("tpl").result(timeout=10)
        stack.feed.release("tpl-far").result(timeout=10)
        stack.gw.unfreeze()


def test_iron_condor_ticket_fills_as_one_combo_and_matches_its_after_graph(chain_stack):
    stack = chain_stack
    stack.gw.freeze()
    try:
        expiry = expiry_near(stack, SYMBOL, 60)
        s = live_slice(stack, SYMBOL, expiry, count=100, view="ic")
        ic = build(TemplateSpec("iron condor", delta=0.20, width=5, units=2), s)
        snapshot = stack.snapshot()
        spot = stack.gw.spot(SYMBOL)
        now = datetime.now(timezone.utc)
        betas = stack.settings.betas
        spy = stack.gw.spot("SPY")
        predicted = ticket_risk(ic, snapshot.legs, spot, now, stack.settings.risk_free_rate, betas, spy,
                                expiry=expiry, portfolio_greeks=snapshot.totals)
        # price at the natural so the simulator fills it at once
        natural = sum(leg.quantity * (leg.quote.ask if leg.quantity > 0 else leg.quote.bid) for leg in ic.legs)
        ticket = draft_structure(stack.desk, ic, "s1", limit=round(natural, 2))
        assert ticket.is_combo and ticket.quantity == 2
        wait_until(lambda: all(stack.snapshot().quote(leg.contract.con_id) for leg in ic.legs))
        stack.desk.preview(ticket.ticket_id, "s1")
        stack.desk.confirm(ticket.ticket_id, "s1")
        orders = wait_until(lambda: stack.sim_orders(ticket.ticket_id))
        assert len(orders) == 1 and len(orders[0].combo_legs) == 4
        wait_until(lambda: stack.desk.ticket(ticket.ticket_id).state == TicketState.FILLED)
        held = {p.contract.con_id: p.quantity for p in stack.gw.positions()}
        for leg in ic.legs:
            assert held[leg.contract.con_id] == leg.quantity * 2
        ids = {leg.contract.con_id for leg in ic.legs}

        def grouped():
            snap = stack.snapshot()
            return next((st for st in snap.strategies if set(st.con_ids) == ids), None)
        strategy = wait_until(grouped)
        assert strategy.kind == "iron condor"
        # the after-ticket graph is the risk of the portfolio the fill produced
        snap = stack.snapshot()
        actual = risk.risk_curves([leg for leg in snap.legs if leg.contract.symbol == SYMBOL], predicted.grid,
                                  now, stack.settings.risk_free_rate, spots={SYMBOL: spot}, expiry=expiry)
        np.testing.assert_allclose(actual["t0_pnl"], predicted.after["t0_pnl"], atol=1.0)
        # at expiry each leg is measured from its mark: the fill's marks vs the ticket's mids
        spread = sum(abs(leg.quantity) * 2 * 100 * (leg.quote.ask - leg.quote.bid) / 2 for leg in ic.legs)
        np.testing.assert_allclose(actual["expiry_pnl"], predicted.after["expiry_pnl"], atol=spread + 1.0)
    finally:
        stack.feed.release("ic").result(timeout=10)
        stack.gw.unfreeze()


def test_review_right_after_drafting_waits_for_the_new_legs_greeks_and_still_blocks_missing_ones(chain_stack):
    """A ticket reviewed the moment it is drafted: its legs were just subscribed by the runtime
    and their IV has not streamed yet. The desk waits briefly for them instead of blocking with
    "the change in portfolio delta cannot be checked"; a leg that never streams is still blocked."""
    import dataclasses
    import threading
    import time

    from v6core.orders import TicketBlocked
    from v6core.orders.checks import legs_awaiting_data

    stack = chain_stack
    expiry = expiry_near(stack, SYMBOL, 90)          # not held, not shown by other tests
    spot = stack.gw.spot(SYMBOL)
    far = max(stack.gw.strikes(SYMBOL))
    stack.feed.show("fresh", SYMBOL, expiry, [far]).result(timeout=10)   # loads the expiry's contracts
    try:
        # two puts nobody has streamed yet in this process (ib_async keeps a ticker's last data)
        below = [k for k in stack.gw.strikes(SYMBOL) if k < spot * 0.97][-6:]
        short, long_ = (stack.feed.contract(SYMBOL, expiry, k, "P") for k in (below[-1], below[0]))

        def quoted(info):
            q = stack.gw.quote(info.con_id)
            return OptionQuote(info, bid=q["bid"], ask=q["ask"], delta=sim_delta(stack, info.con_id),
                               iv=stack.gw.option_inputs(info.con_id)["iv"])
        vertical = Structure("put credit vertical", SYMBOL,
                             (StructureLeg(short, -1, quoted(short)), StructureLeg(long_, 1, quoted(long_))),
                             units=1, description="test vertical")
        # their Greeks are late (as under load in CI): they stream 2 s after the draft
        stack.gw.faults.withhold_greeks([short.con_id, long_.con_id])
        ticket = draft_structure(stack.desk, vertical, "s-fresh")
        assert legs_awaiting_data(stack.settings, ticket, stack.snapshot())
        threading.Timer(2.0, stack.gw.faults.clear).start()
        previewed = stack.desk.preview(ticket.ticket_id, "s-fresh")
        assert previewed.state == TicketState.PREVIEWED
        assert not legs_awaiting_data(stack.settings, previewed, stack.snapshot())
        assert previewed.preview.order_greeks.delta != 0
        stack.desk.discard(ticket.ticket_id, "s-fresh")

        # the check is not weakened: a leg that never streams still blocks, after the brief wait
        ghost = dataclasses.replace(vertical.legs[0].contract, con_id=987654321)
        broken = dataclasses.replace(vertical, legs=(dataclasses.replace(vertical.legs[0], contract=ghost),
                                                     *vertical.legs[1:]))
        ticket = draft_structure(stack.desk, broken, "s-fresh")
        started = time.monotonic()
        with pytest.raises(TicketBlocked) as blocked:
            stack.desk.preview(ticket.ticket_id, "s-fresh")
        assert time.monotonic() - started >= 5.0
        text = " ".join(blocked.value.problems)
        assert f"No live quote for {ghost.label}" in text
        assert vertical.legs[1].contract.label not in text          # the streamed leg passes
        assert "the change in portfolio delta cannot be checked" in text
        stack.desk.discard(ticket.ticket_id, "s-fresh")
    finally:
        stack.gw.faults.clear()
        stack.feed.release("fresh").result(timeout=10)


def test_rolling_the_condor_closes_exactly_what_is_held_in_one_combo(chain_stack):
    stack = chain_stack

    def held_condor():   # the condor filled above, once a snapshot groups it (later under load)
        snapshot = stack.snapshot()
        return next(((st, snapshot) for st in snapshot.strategies
                     if st.kind == "iron condor" and st.underlying == SYMBOL), None)

    condor, snapshot = wait_until(held_condor, timeout=30)
    legs = strategy_legs(condor, snapshot.legs)
    old_expiry = legs[0].contract.expiry
    later = min(d for d in stack.gw.expiries(SYMBOL) if d > old_expiry + timedelta(days=6))
    stack.gw.freeze()
    try:
        target = live_slice(stack, SYMBOL, later, count=100, view="roll")
        snap = stack.snapshot()
        live = held_quotes(legs, {leg.contract.con_id: snap.quote(leg.contract.con_id) for leg in legs
                                  if snap.quote(leg.contract.con_id) is not None})
        roll = draft_roll(legs, RollPlan({old_expiry: target}, "same strikes"), live, kind=condor.kind)
        trades = {leg.contract.con_id: leg.quantity * roll.units for leg in roll.legs}
        for leg in legs:
            assert trades[leg.contract.con_id] == -leg.quantity
            new = target.require(leg.contract.strike, leg.contract.right)
            assert trades[new.contract.con_id] == leg.quantity
        assert len(trades) == 8
        natural = sum(leg.quantity * (leg.quote.ask if leg.quantity > 0 else leg.quote.bid)
                      for leg in roll.legs if leg.quote.bid is not None)
        ticket = draft_structure(stack.desk, roll, "s1", origin="roll", limit=round(natural, 2))
        wait_until(lambda: all(stack.snapshot().quote(leg.contract.con_id) for leg in roll.legs))
        stack.desk.preview(ticket.ticket_id, "s1")
        stack.desk.confirm(ticket.ticket_id, "s1")
        orders = wait_until(lambda: stack.sim_orders(ticket.ticket_id))
        assert len(orders) == 1 and len(orders[0].combo_legs) == 8
        wait_until(lambda: stack.desk.ticket(ticket.ticket_id).state == TicketState.FILLED)
        held = {p.contract.con_id: p.quantity for p in stack.gw.positions()}
        for leg in legs:
            assert held.get(leg.contract.con_id, 0) == 0
            assert held[target.require(leg.contract.strike, leg.contract.right).contract.con_id] == leg.quantity
    finally:
        stack.feed.release("roll").result(timeout=10)
        stack.gw.unfreeze()


def test_a_saved_draft_can_be_edited_and_discarded_with_an_audit_trail(chain_stack):
    stack = chain_stack
    s = live_slice(stack, SYMBOL, expiry_near(stack, SYMBOL, 30), count=40, view="draft")
    try:
        vertical = build(TemplateSpec("vertical", side="sell", right="P", delta=0.3, width=5), s)
        ticket = draft_structure(stack.desk, vertical, "s2")
        assert ticket.limit_price == pytest.approx(round(vertical.net_mid(), 2))
        edited = stack.desk.edit(ticket.ticket_id, "s2", limit_price=ticket.limit_price - 0.05)
        assert edited.state == TicketState.DRAFTED
        dropped = discard_draft(stack.desk, ticket.ticket_id, "s2")
        assert not dropped.editable
        assert stack.events(ticket.ticket_id)[:2] == ["drafted", "edited"]
        assert len(stack.events(ticket.ticket_id)) == 3
        assert stack.sim_orders(ticket.ticket_id) == []
    finally:
        stack.feed.release("draft").result(timeout=10)


@pytest.mark.parametrize("action,style,right,short", [
    ("BUY", "credit", "P", True), ("SELL", "credit", "C", True),
    ("BUY", "debit", "C", False), ("SELL", "debit", "P", False),
])
def test_a_signal_drafts_a_defined_risk_vertical_at_the_target_delta_through_the_desk(
        chain_stack, action, style, right, short):
    """An actionable signal as a vertical on its underlying's live chain: the key leg at the
    strike whose simulator delta is nearest the target, the other 5 $ further out, one combo
    ticket through the desk's checks and what-if; stop/target ride along only as a bracket."""
    from tests.orders.conftest import signal_record
    from v6core.orders import OrderDeskError
    from v6core.structures.drafting import draft_signal_structure, signal_structure

    stack = chain_stack
    expiry = expiry_near(stack, SYMBOL, 45)
    stack.gw.freeze()
    try:
        s = live_slice(stack, SYMBOL, expiry, count=80, view="sig")
        record = signal_record(SYMBOL, action, stack.gw.spot(SYMBOL))
        structure = signal_structure(record, s, delta=0.30, width=5, style=style)
        key = next(leg for leg in structure.legs if (leg.quantity < 0) == short)
        other = next(leg for leg in structure.legs if leg is not key)
        assert {leg.contract.right for leg in structure.legs} == {right}
        assert key.contract.strike == brute_force_strike(stack, s, right, 0.30)
        further = 1 if right == "C" else -1      # the other leg further out of the money (the wing / the sold leg)
        assert other.contract.strike == key.contract.strike + further * 5
        premium = structure.premium()
        assert (premium < 0) == (style == "credit")                 # credit received / debit paid
        ticket = draft_signal_structure(stack.desk, record, s, "s-sig", delta=0.30, width=5, style=style,
                                        bracket=(action == "BUY"))
        assert ticket.is_combo and ticket.origin == "signal structure" and ticket.signal_id == record.record_id
        if action == "BUY":
            assert (ticket.stop, ticket.target) == (record.stop, record.target)
        else:
            assert (ticket.stop, ticket.target) == (None, None)
        previewed = stack.desk.preview(ticket.ticket_id, "s-sig")
        assert previewed.state == TicketState.PREVIEWED
        stack.desk.discard(ticket.ticket_id, "s-sig")
        # bad inputs: a clear error, no ticket
        with pytest.raises(Exception, match="style must be one of credit, debit"):
            signal_structure(record, s, style="naked")
        with pytest.raises(OrderDeskError, match="not actionable"):
            signal_structure(signal_record(SYMBOL, action, 100.0, confidence="LOW"), s)
        with pytest.raises(Exception, match="the signal is on AAPL"):
            signal_structure(signal_record("AAPL", action, 100.0), s)
    finally:
        stack.feed.release("sig").result(timeout=10)
        stack.gw.unfreeze()
