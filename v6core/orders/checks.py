"""Pre-trade checks: the tick grid, field validation, and every limit against the live snapshot.

Pure apart from reading the snapshot and the settings: the same rules run at check, at preview
and again at the moment of confirmation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from v6core.config import Settings
from v6core.models import (
    ConnState,
    ContractInfo,
    Greeks,
    GreekSource,
    Leg,
    OrderSpec,
    PortfolioSnapshot,
    PositionGreeks,
    Quote,
    Strategy,
)
from v6core.orders.tickets import ACTIONS, ORDER_TYPES, TIFS, Ticket, utc_now

PENNY_PILOT = frozenset({"SPY", "QQQ", "IWM"})


@dataclass(slots=True, frozen=True)
class CheckResult:
    problems: tuple[str, ...]
    notional: float | None = None
    order_greeks: PositionGreeks | None = None
    quotes: tuple[Quote, ...] = ()
    needs_typed_confirmation: bool = False
    warnings: tuple[str, ...] = ()     # shown before confirm; they do not block

    @property
    def ok(self) -> bool:
        return not self.problems


# ---------------------------------------------------------------------------------------------
# Pure rules: tick grid, validation, order Greeks


def min_tick(contract: ContractInfo, price: float | None) -> float:
    """Minimum price increment: stocks $0.01; options $0.01 below $3 and $0.05 from $3, except the
    penny-pilot names (SPY, QQQ, IWM) at $0.01 throughout; combos trade in $0.01."""
    if contract.sec_type != "OPT":
        return 0.01
    if contract.symbol.upper() in PENNY_PILOT:
        return 0.01
    return 0.05 if price is not None and abs(price) >= 3.0 else 0.01


def tick_decimals(tick: float) -> int:
    """Decimals a price on this tick grid is written with (0.01 -> 2, 0.05 -> 2, 0.001 -> 3)."""
    text = f"{tick:.10f}".rstrip("0")
    return len(text.split(".")[1]) if "." in text else 0


def round_to_tick(price: float, tick: float) -> float:
    return round(round(price / tick) * tick, tick_decimals(tick))


def on_tick_grid(price: float, tick: float) -> bool:
    """Exactly on the grid: the price is the grid's own number (184.05, not 184.050000001)."""
    return price == round_to_tick(price, tick)


def within_float_noise_of_grid(price: float, tick: float) -> bool:
    """Off the grid by no more than binary-float noise (184.050000001): such a price is rounded."""
    steps = price / tick
    return abs(steps - round(steps)) < 1e-6


def snap_limit_price(contract: ContractInfo, price: float | None) -> tuple[float | None, str]:
    """The limit price that will be sent, and a sentence if it differs from what was entered.

    A price off the grid only by float noise is rounded onto it (and the operator told); any
    other off-grid price, or one below a tick, is left as entered for the checks to refuse."""
    if price is None or not math.isfinite(price) or price == 0:
        return price, ""
    tick = min_tick(contract, price)
    rounded = round_to_tick(price, tick)
    if rounded == price or rounded == 0 or not within_float_noise_of_grid(price, tick):
        return price, ""
    return rounded, (f"Limit price {price!r} was rounded to {rounded:.{tick_decimals(tick)}f}, "
                     f"the nearest ${tick:.{tick_decimals(tick)}f} tick.")


def validate_fields(action: str, quantity: float, order_type: str, limit_price: float | None,
                    tif: str, contract: ContractInfo) -> list[str]:
    """Field-level problems, each a sentence the operator can act on."""
    problems: list[str] = []
    if action not in ACTIONS:
        problems.append(f"Action must be BUY or SELL (got {action!r}).")
    if quantity is None or not math.isfinite(quantity) or quantity <= 0:
        problems.append("Quantity must be a positive number.")
    elif quantity != int(quantity):
        problems.append(f"Quantity must be a whole number (got {quantity:g}).")
    if order_type not in ORDER_TYPES:
        problems.append(f"Order type must be LMT or MKT (got {order_type!r}).")
    if tif not in TIFS:
        problems.append(f"Time in force must be DAY or GTC (got {tif!r}).")
    if order_type == "LMT":
        if limit_price is None or not math.isfinite(limit_price):
            problems.append("A limit price is required for a LMT order.")
        elif contract.sec_type != "BAG" and limit_price <= 0:
            problems.append(f"Limit price must be positive (got {limit_price:g}).")
        else:
            tick = min_tick(contract, limit_price)
            if contract.sec_type != "BAG" and limit_price < tick:
                problems.append(f"Limit price {limit_price!r} is below one tick: {contract.label} trades in "
                                f"steps of ${tick:.{tick_decimals(tick)}f}.")
            elif not on_tick_grid(limit_price, tick):
                problems.append(
                    f"Limit price {limit_price!r} is not on the tick grid: {contract.label} trades in "
                    f"steps of ${tick:.{tick_decimals(tick)}f} at this price (nearest "
                    f"{round_to_tick(limit_price, tick):.{tick_decimals(tick)}f}).")
    return problems


def bracket_problems(ticket: Ticket) -> list[str]:
    """A bracket's exits against its entry: BUY needs stop < limit < target, SELL the reverse,
    every price on the contract's tick grid. Combos get none: a combo's stop would be simulated
    by IB on a net price whose spread triggers it on noise, and a vertical's risk is defined
    already (the signal's stop and target are underlying prices, not combo prices)."""
    if not ticket.bracket:
        return []
    if ticket.is_combo:
        return ["A bracket (take-profit and stop orders) is for shares or a single contract, not "
                "a combo: a defined-risk structure caps its loss already. Untick the bracket."]
    if ticket.order_type != "LMT":
        return ["A bracket needs a LMT entry order (its children are placed against the limit)."]
    problems = []
    prices = {"stop": ticket.stop, "target": ticket.target}
    for name, price in prices.items():
        if price is None or not math.isfinite(price) or price <= 0:
            problems.append(f"A bracket needs a positive {name} price (got {price!r}).")
        elif not on_tick_grid(price, tick := min_tick(ticket.contract, price)):
            problems.append(f"Bracket {name} {price!r} is not on the tick grid: {ticket.contract.label} "
                            f"trades in steps of ${tick:.{tick_decimals(tick)}f} (nearest "
                            f"{round_to_tick(price, tick):.{tick_decimals(tick)}f}).")
    limit = ticket.limit_price
    if problems or limit is None or not math.isfinite(limit):
        return problems
    stop, target = ticket.stop, ticket.target
    if ticket.action == "BUY" and not stop < limit < target:
        problems.append(f"A BUY bracket needs stop < limit < target (got stop {stop:g}, limit "
                        f"{limit:g}, target {target:g}).")
    if ticket.action == "SELL" and not target < limit < stop:
        problems.append(f"A SELL bracket needs target < limit < stop (got target {target:g}, limit "
                        f"{limit:g}, stop {stop:g}).")
    return problems


def sign(action: str) -> int:
    return 1 if action == "BUY" else -1


def order_legs(spec: OrderSpec) -> list[tuple[ContractInfo, float]]:
    """(contract, signed quantity in contracts/shares) for each leg the order would trade."""
    if spec.contract.sec_type == "BAG":
        return [(leg.contract, sign(spec.action) * sign(leg.action) * leg.ratio * spec.quantity)
                for leg in spec.combo_legs]
    return [(spec.contract, sign(spec.action) * spec.quantity)]


def legs_awaiting_data(settings: Settings, ticket: Ticket, snapshot: PortfolioSnapshot) -> list[str]:
    """Labels of the ticket's legs whose quote or Greeks have not reached the snapshot yet (a leg
    just subscribed streams within a second or two). The checks would block on them; the desk
    waits briefly for them first (`Reviewer.check`), never instead of the checks."""
    if not ticket.quantity:
        return []
    waiting = []
    for contract, _ in order_legs(ticket.spec):
        quote = quote_for(snapshot, contract)
        if quote is None or quote.time is None or _leg_greeks(snapshot, contract, settings.risk_free_rate) is None:
            waiting.append(contract.label)
    return waiting


def leg_greeks(snapshot: PortfolioSnapshot, contract: ContractInfo, rate: float = 0.0) -> Greeks | None:
    """Per-contract Greeks of an order leg as the checks see them: a held leg's own, else
    Black-Scholes at the quoted IV (None when neither is there yet)."""
    return _leg_greeks(snapshot, contract, rate)


def _leg_greeks(snapshot: PortfolioSnapshot, contract: ContractInfo, rate: float = 0.0) -> Greeks | None:
    if contract.sec_type == "STK":
        from v6core.greeks import STOCK_GREEKS

        return STOCK_GREEKS
    held = next((leg for leg in snapshot.legs if leg.contract.con_id == contract.con_id), None)
    if held is not None:
        return held.greeks if not held.flags else None
    return _quoted_greeks(snapshot, contract, rate)


def _quoted_greeks(snapshot: PortfolioSnapshot, contract: ContractInfo, rate: float) -> Greeks | None:
    """An option not held (a ticket opening it): Black-Scholes at its quoted IV and the spot."""
    from v6core.greeks import bs_greeks, year_fraction

    quote = snapshot.quote(contract.con_id) if contract.con_id else None
    spot = _spot(snapshot, contract.symbol)
    if (quote is None or not quote.iv or not spot or contract.expiry is None or not contract.strike
            or contract.right not in ("C", "P")):
        return None
    g = bs_greeks(spot, contract.strike, year_fraction(contract.expiry, utc_now()), rate, quote.iv,
                  contract.right == "C")
    values = [float(g[k][0]) for k in ("delta", "gamma", "theta", "vega")]
    if not all(math.isfinite(v) for v in values):
        return None
    return Greeks(*values, iv=quote.iv, und_price=spot, source=GreekSource.COMPUTED)


def strategy_legs(strategy: Strategy, legs: Iterable[Leg]) -> list[Leg]:
    """The strategy's legs, each with the quantity this strategy holds (a leg can be split
    between strategies, e.g. 2 of 3 short puts in a condor)."""
    by_con_id = {leg.contract.con_id: leg for leg in legs}
    quantities = strategy.quantities if len(strategy.quantities) == len(strategy.con_ids) else (
        tuple(by_con_id[c].quantity if c in by_con_id else 0.0 for c in strategy.con_ids))
    return [replace(by_con_id[c], quantity=q) for c, q in zip(strategy.con_ids, quantities)
            if c in by_con_id and q]


def quote_for(snapshot: PortfolioSnapshot, contract: ContractInfo) -> Quote | None:
    """The contract's live quote; a stock not held is quoted through its underlying summary."""
    quote = snapshot.quote(contract.con_id) if contract.con_id else None
    if quote is None and contract.sec_type == "STK":
        und = snapshot.underlying(contract.symbol)
        if und is not None and und.spot:
            quote = Quote(con_id=contract.con_id, last=und.spot, time=und.quote_time)
    return quote


def _spot(snapshot: PortfolioSnapshot, symbol: str) -> float | None:
    und = snapshot.underlying(symbol)
    if und is not None and und.spot:
        return und.spot
    for leg in snapshot.legs:
        if leg.contract.sec_type == "STK" and leg.contract.symbol == symbol:
            return leg.mark
    return None


# ---------------------------------------------------------------------------------------------
# Limits against the live snapshot


def evaluate(settings: Settings, ticket: Ticket, snapshot: PortfolioSnapshot) -> CheckResult:
    """Every pre-trade rule against the current snapshot."""
    s = settings
    problems = validate_fields(ticket.action, ticket.quantity, ticket.order_type,
                               ticket.limit_price, ticket.tif, ticket.contract)
    problems += bracket_problems(ticket)
    conn = snapshot.connection
    if conn.state != ConnState.CONNECTED:
        problems.append(f"Gateway is {conn.state.value}: orders are blocked until it is connected"
                        + (f" (last error: {conn.last_error})." if conn.last_error else "."))
    needs_typed = False
    if not conn.is_paper:
        if not s.live_trading_enabled:
            problems.append(f"Account {conn.account or snapshot.account.account} is a LIVE account and "
                            "live trading is locked (set V6_LIVE_TRADING_ENABLED=true to unlock it).")
        else:
            needs_typed = True
    symbol = ticket.contract.symbol.upper()
    if symbol not in s.allowed_symbols:
        problems.append(f"{symbol} is not an allowed symbol (allowed: {', '.join(s.allowed_symbols)}).")
    if ticket.is_combo and not ticket.combo_legs:
        problems.append("A combo order needs its legs.")
    if ticket.quantity and ticket.quantity > s.max_order_quantity:
        problems.append(f"Quantity {ticket.quantity:g} is above the limit of {s.max_order_quantity:g}.")
    if ticket.is_combo and ticket.combo_legs:
        biggest = max(leg.ratio for leg in ticket.combo_legs) * (ticket.quantity or 0)
        if biggest > s.max_order_quantity:
            problems.append(f"A leg of this combo trades {biggest:g} contracts, above the limit of "
                            f"{s.max_order_quantity:g}.")

    now = utc_now()
    quotes: list[Quote] = []
    leg_contracts = [c for c, _ in order_legs(ticket.spec)] if ticket.quantity else [ticket.contract]
    for contract in leg_contracts:
        quote = quote_for(snapshot, contract)
        if quote is None or quote.time is None:
            problems.append(f"No live quote for {contract.label}: orders on it are blocked.")
            continue
        quotes.append(quote)
        age = (now - quote.time).total_seconds()
        if age > s.stale_after:
            problems.append(f"The quote for {contract.label} is {age:.1f} s old (stale after "
                            f"{s.stale_after:g} s): orders are blocked until it is fresh.")

    notional = None
    order_greeks = None
    if ticket.quantity and ticket.quantity > 0 and ticket.action in ACTIONS:
        notional = _notional(ticket, quotes)
        if notional is None:
            problems.append("The order's notional cannot be computed (no limit price and no quote).")
        elif notional > s.max_order_notional:
            problems.append(f"Notional ${notional:,.0f} is above the limit of ${s.max_order_notional:,.0f}.")
        order_greeks, missing = _order_greeks(settings, ticket, snapshot)
        if missing:
            problems.append("No Greeks for " + ", ".join(missing)
                            + ": the change in portfolio delta cannot be checked.")
        elif abs(order_greeks.delta) > s.max_delta_change:
            problems.append(f"This order changes portfolio delta by {order_greeks.delta:+,.1f} shares, "
                            f"above the limit of {s.max_delta_change:g}.")
    warnings: list[str] = []
    if ticket.quantity and ticket.quantity > 0 and ticket.action in ACTIONS:
        blocked, told = exposure_findings(ticket, snapshot)
        problems.extend(blocked)
        warnings.extend(told)
        warnings.extend(price_findings(ticket, quotes))
    return CheckResult(problems=tuple(problems), notional=notional, order_greeks=order_greeks,
                       quotes=tuple(quotes), needs_typed_confirmation=needs_typed, warnings=tuple(warnings))


def exposure_findings(ticket: Ticket, snapshot: PortfolioSnapshot) -> tuple[list[str], list[str]]:
    """What the order leaves in each leg. A close ticket that would open or grow a position is
    refused (it says "close"); any order that leaves a short option beyond what was short before
    is called out by name, naked calls (not covered by shares held) first."""
    held: dict[int, float] = {}
    for leg in snapshot.legs:
        held[leg.contract.con_id] = held.get(leg.contract.con_id, 0.0) + leg.quantity
    shares = {leg.contract.symbol: leg.quantity for leg in snapshot.legs if leg.contract.sec_type == "STK"}
    problems: list[str] = []
    warnings: list[str] = []
    short_calls: dict[str, float] = {}
    for contract, change in order_legs(ticket.spec):
        before = held.get(contract.con_id, 0.0) if contract.con_id else 0.0
        after = before + change
        if ticket.origin == "close" and (before == 0 or after * before < 0 or abs(after) > abs(before)):
            side = "short" if after < 0 else "long"
            problems.append(
                f"This close ticket would leave you {side} {abs(after):g} {contract.label} (held {before:+g}, "
                f"the order {'buys' if change > 0 else 'sells'} {abs(change):g}): it opens a position beyond "
                f"the close. Close at most {abs(before):g}, or draft an opening order for the rest.")
        if contract.sec_type == "OPT" and after < 0 and after < before:
            if contract.right == "C":
                short_calls[contract.symbol] = short_calls.get(contract.symbol, 0.0) + after * contract.multiplier
            else:
                warnings.append(f"Uncovered short put: this order leaves {abs(after):g} {contract.label} short "
                                f"(assignment buys {abs(after) * contract.multiplier:,.0f} shares).")
        if contract.sec_type == "STK" and after < 0 and after < before:
            warnings.append(f"Short stock: this order leaves {abs(after):g} {contract.symbol} shares short.")
    for symbol, short_shares in short_calls.items():
        covered = max(0.0, shares.get(symbol, 0.0))
        if covered < abs(short_shares):
            warnings.insert(0, f"Naked short call: this order leaves calls on {abs(short_shares):,.0f} {symbol} "
                               f"shares short with {covered:,.0f} shares held to cover them (unlimited risk).")
    return problems, warnings


FAR_FROM_MID = 0.05       # a limit further than this fraction of mid from it is worth a word


def price_findings(ticket: Ticket, quotes: Sequence[Quote]) -> list[str]:
    """Re-price at review: the limit against the live mid (a combo's net mid from its legs)."""
    if ticket.order_type != "LMT" or ticket.limit_price is None:
        return []
    by_id = {q.con_id: q for q in quotes}
    if ticket.is_combo:
        mids = [(leg, by_id.get(leg.contract.con_id)) for leg in ticket.combo_legs]
        if not mids or any(q is None or q.mid is None for _, q in mids):
            return []
        mid = sum(sign(leg.action) * leg.ratio * q.mid for leg, q in mids)
        natural = None
    else:
        quote = by_id.get(ticket.contract.con_id) or (quotes[0] if len(quotes) == 1 else None)
        if quote is None or quote.mid is None:
            return []
        mid = quote.mid
        natural = quote.ask if ticket.action == "BUY" else quote.bid
    tick = min_tick(ticket.contract, ticket.limit_price)
    distance = abs(ticket.limit_price - mid)
    if distance <= max(3 * tick, FAR_FROM_MID * abs(mid)):
        return []
    side = "above" if ticket.limit_price > mid else "below"
    nat = f", natural {natural:.2f}" if natural is not None else ""
    return [f"Limit {ticket.limit_price:.2f} is {distance:.2f} {side} the live mid {mid:.2f}{nat}: "
            "the market has moved since the ticket was drafted, or the price is far off. Re-price it "
            "before confirming if that is not intended."]


def _notional(ticket: Ticket, quotes: Sequence[Quote]) -> float | None:
    """Premium at risk: |price| x quantity x multiplier (gross over a combo's legs)."""
    marks = {q.con_id: q.mark for q in quotes}
    if not ticket.is_combo:
        price = ticket.limit_price if ticket.order_type == "LMT" else marks.get(ticket.contract.con_id)
        if price is None:
            return None
        return abs(price) * ticket.quantity * ticket.contract.multiplier
    total = 0.0
    for leg in ticket.combo_legs:
        mark = marks.get(leg.contract.con_id)
        if mark is None:
            return None
        total += abs(mark) * leg.ratio * ticket.quantity * leg.contract.multiplier
    if ticket.order_type == "LMT" and ticket.limit_price is not None:
        total = max(total, abs(ticket.limit_price) * ticket.quantity * ticket.contract.multiplier)
    return total


def _order_greeks(settings: Settings, ticket: Ticket,
                  snapshot: PortfolioSnapshot) -> tuple[PositionGreeks, list[str]]:
    from v6core.greeks import position_greeks

    total = PositionGreeks()
    missing: list[str] = []
    spy = _spot(snapshot, "SPY")
    for contract, quantity in order_legs(ticket.spec):
        greeks = _leg_greeks(snapshot, contract, settings.risk_free_rate)
        spot = _spot(snapshot, contract.symbol)
        if spot is None and contract.sec_type == "STK":
            quote = quote_for(snapshot, contract)
            spot = quote.mark if quote else None
        if greeks is None:
            missing.append(contract.label)
            continue
        beta = settings.betas.get(contract.symbol, 1.0)
        total = total + position_greeks(greeks, quantity, contract.multiplier, spot, beta, spy)
    return total, missing
