"""The ticket's risk before confirm: the structure alone and the portfolio before/after it, on
one underlying's price grid, through the same engine as the Greeks & risk page (`v6core.risk`).

The after-ticket graph is *defined* as the risk of the portfolio's legs plus the ticket's legs
(each valued at its mid, Greeks and IV from the chain), so it is the graph the page will show
once the ticket fills at mid and the quotes stand still.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np

from v6core import risk
from v6core.greeks import STOCK_GREEKS, position_greeks, year_fraction
from v6core.models import Greeks, GreekSource, Leg, PositionGreeks
from v6core.structures.chain import StructureError
from v6core.structures.payoff import PayoffSummary, analyse
from v6core.structures.templates import Structure

TICKET_ACCOUNT = "ticket"


def structure_legs(structure: Structure, now: datetime, spot: float, betas: Mapping[str, float],
                   spy_price: float | None) -> list[Leg]:
    """The structure's legs (all units) as position legs, priced at mid, for the risk engine."""
    legs: list[Leg] = []
    beta = float(betas.get(structure.underlying, 1.0))
    for leg, qty in structure.scaled():
        c, q = leg.contract, leg.quote
        mid = q.mid if q is not None else None
        if leg.is_option:
            if q is None or q.delta is None:
                raise StructureError(f"no Greeks yet for {c.label}")
            greeks = Greeks(q.delta, q.gamma or 0.0, q.theta or 0.0, q.vega or 0.0, iv=q.iv,
                            und_price=q.und_price or spot, source=GreekSource.IB)
            dte = max((c.expiry - now.date()).days, 0)
        else:
            greeks, dte = STOCK_GREEKS, None
            mid = mid if mid is not None else spot
        mult = c.multiplier if leg.is_option else 1.0
        legs.append(Leg(
            account=TICKET_ACCOUNT, contract=c, quantity=float(qty), avg_price=mid or 0.0, mark=mid,
            market_value=(mid or 0.0) * qty * mult, unrealized_pnl=0.0, realized_pnl=0.0,
            daily_pnl=0.0, dte=dte, greeks=greeks,
            position_greeks=position_greeks(greeks, qty, mult, spot, beta, spy_price),
            quote_time=q.time if q is not None else None, strategy_id="ticket"))
    return legs


def greeks_of(legs: Sequence[Leg]) -> PositionGreeks:
    total = PositionGreeks()
    for leg in legs:
        if leg.greeks is not None and not leg.flags:
            total = total + leg.position_greeks
    return total


@dataclass(slots=True, frozen=True)
class TicketRisk:
    underlying: str
    spot: float
    grid: np.ndarray
    expiry: date | None                  # what "at expiry" means on the before/after graphs
    at: datetime | None                  # the T+n moment, when one was asked for
    ticket: dict[str, np.ndarray]        # curves of the structure alone
    before: dict[str, np.ndarray]        # the underlying's book before the ticket
    after: dict[str, np.ndarray]         # ... and with the ticket's legs added
    summary: PayoffSummary
    greeks_before: PositionGreeks        # the whole portfolio
    greeks_after: PositionGreeks
    ticket_legs: tuple[Leg, ...]


def ticket_risk(structure: Structure, portfolio: Sequence[Leg], spot: float, now: datetime,
                rate: float, betas: Mapping[str, float], spy_price: float | None, *,
                price: float | None = None, at: datetime | None = None,
                expiry: date | None = None, iv_shift: float = 0.0,
                width_pct: float = 15.0, points: int = 121,
                portfolio_greeks: PositionGreeks | None = None) -> TicketRisk:
    """Everything the review shows about `structure` against the `portfolio` legs.

    `portfolio_greeks`: the portfolio's totals as the snapshot reports them (default: summed
    from `portfolio`). `expiry` defaults to the nearest expiry among the underlying's legs
    before and after the ticket.
    """
    if not (math.isfinite(spot) and spot > 0):
        raise StructureError(f"no price for {structure.underlying}")
    symbol = structure.underlying
    added = structure_legs(structure, now, spot, betas, spy_price)
    held = [leg for leg in portfolio if leg.contract.symbol == symbol]
    spots = {symbol: spot}
    before_book = risk.prepare_risk(held, now, rate, spots)
    after_book = risk.prepare_risk([*held, *added], now, rate, spots)
    ticket_book = risk.prepare_risk(added, now, rate, spots)
    if expiry is None:
        alive = risk.expiries(after_book)
        expiry = alive[0] if alive else None
    if at is not None and year_fraction(now.date(), at) < 0:
        at = None
    grid = risk.spot_grid(spot, width_pct, points)
    kwargs = dict(iv_shift=iv_shift, at=at, expiry=expiry)
    before_g = portfolio_greeks if portfolio_greeks is not None else greeks_of(portfolio)
    return TicketRisk(
        underlying=symbol, spot=spot, grid=grid, expiry=expiry, at=at,
        ticket=risk.risk_curves(ticket_book, grid, now, rate, **kwargs),
        before=risk.risk_curves(before_book, grid, now, rate, **kwargs),
        after=risk.risk_curves(after_book, grid, now, rate, **kwargs),
        summary=analyse(structure, spot, now, rate, price),
        greeks_before=before_g, greeks_after=before_g + greeks_of(added),
        ticket_legs=tuple(added))


def order_structure(ticket, snapshot, rate: float = 0.0) -> tuple[Structure, float | None]:
    """An order-desk ticket as a Structure quoted from the snapshot (bid/ask, IV, and the Greeks
    the desk's checks use), with its limit as the structure's signed price per unit (+ debit).
    Raises StructureError for a ticket that trades no option."""
    from v6core.orders.checks import leg_greeks, order_legs, quote_for, sign
    from v6core.structures.chain import OptionQuote
    from v6core.structures.templates import StructureLeg

    spec = ticket.spec
    legs = order_legs(spec)
    if not any(c.is_option for c, _ in legs):
        raise StructureError("the ticket trades no option")
    units = int(round(spec.quantity or 0))
    if units <= 0:
        raise StructureError("the ticket has no quantity")
    out = []
    for contract, qty in legs:
        q = quote_for(snapshot, contract)
        g = leg_greeks(snapshot, contract, rate) if contract.is_option else None
        quote = OptionQuote(contract, bid=q.bid if q else None, ask=q.ask if q else None,
                            iv=(g.iv if g is not None and g.iv else (q.iv if q else None)),
                            delta=g.delta if g is not None else (1.0 if not contract.is_option else None),
                            gamma=g.gamma if g is not None else None, theta=g.theta if g is not None else None,
                            vega=g.vega if g is not None else None,
                            und_price=g.und_price if g is not None else None, time=q.time if q else None)
        out.append(StructureLeg(contract, int(round(qty / units)), quote))
    price = None if ticket.limit_price is None else ticket.limit_price * sign(spec.action)
    symbol = spec.contract.symbol
    kind = ticket.description.split(":")[0] if ticket.description else "ticket"
    return Structure(kind, symbol, tuple(out), units=units, description=ticket.description), price


def order_ticket_risk(ticket, snapshot, settings, now: datetime) -> TicketRisk:
    """The review's risk of a desk ticket: its structure against the snapshot's portfolio
    (before -> after graphs on its underlying, Greeks before -> after)."""
    rate = settings.risk_free_rate
    structure, price = order_structure(ticket, snapshot, rate)
    und = snapshot.underlying(structure.underlying)
    spot = und.spot if und is not None and und.spot else None
    if spot is None:
        stock = next((leg for leg in snapshot.legs if leg.contract.sec_type == "STK"
                      and leg.contract.symbol == structure.underlying), None)
        spot = stock.mark if stock is not None else None
    if not spot:
        raise StructureError(f"no price for {structure.underlying}")
    spy = snapshot.underlying("SPY")
    return ticket_risk(structure, snapshot.legs, spot, now, rate, settings.betas,
                       spy.spot if spy is not None else None,
                       price=price,
                       portfolio_greeks=snapshot.totals)
