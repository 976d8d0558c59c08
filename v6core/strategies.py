"""Group position legs into the strategies a trader would name: pure, deterministic, explained.

Longer than ~450 lines on purpose: one greedy matcher whose shapes read best side by side.

Per account and underlying, a greedy matcher tries the most specific shapes first and takes as
many units of each as the quantities allow, then moves on:

    iron condor / iron butterfly (and their reverse, long-inside versions)
    -> butterfly (1-2-1, one right, one expiry, equal wings)
    -> vertical (credit/debit)  -> straddle  -> strangle       (one expiry before ...)
    -> calendar  -> diagonal                                  (... shapes across expiries)
    -> collar  -> covered call  -> protective put   (100 shares per contract: the multiplier)
    -> single legs (long call, short put, ...)  -> stock  -> custom (anything not a stock/option)

Within one shape the tightest candidate wins (narrowest wings, nearest expiries, lowest strikes,
then conIds), so the result depends only on the set of positions, never on their order. A leg
can be split: 3 short puts of which 2 sit in iron condors leave 1 as a "short put"; each
`Strategy.quantities` says how much of each conId it holds.

Strategy ids are `kind:underlying:hash(account, sorted conIds)`, stable across runs and
across size changes of the same structure.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from functools import lru_cache
from itertools import product

from v6core.models import Leg, PositionGreeks, Strategy

EPS = 1e-9


@dataclass(slots=True, frozen=True)
class _Position:
    """The structural part of a leg: what the matcher needs, hashable for the cache."""

    account: str
    symbol: str
    con_id: int
    sec_type: str
    expiry: date | None
    strike: float | None
    right: str | None
    multiplier: float
    quantity: float

    @property
    def is_option(self) -> bool:
        return (self.sec_type == "OPT" and self.expiry is not None and self.strike is not None
                and self.right in ("C", "P"))

    @property
    def is_stock(self) -> bool:
        return self.sec_type == "STK"

    def describe(self, qty: float) -> str:
        side = "long" if qty > 0 else "short"
        if self.is_option:
            return f"{side} {_num(abs(qty))} {self.expiry:%Y-%m-%d} {_num(self.strike)}{self.right}"
        return f"{side} {_num(abs(qty))} {self.symbol} {self.sec_type}"


@dataclass(slots=True, frozen=True)
class _Match:
    kind: str
    account: str
    underlying: str
    members: tuple[tuple[int, float], ...]     # (con_id, signed quantity held by this strategy)
    explanation: str


def _num(x: float) -> str:
    return f"{x:g}"


class _Book:
    """Remaining signed quantities of one account's positions in one underlying."""

    def __init__(self, positions: Sequence[_Position]) -> None:
        self.positions = {p.con_id: p for p in positions}
        self.left = {p.con_id: p.quantity for p in positions}
        self._options = sorted((p for p in positions if p.is_option),
                               key=lambda p: (p.expiry, p.right, p.strike, p.con_id))
        self._buckets: dict[tuple, list[_Position]] = {}
        for p in self._options:
            self._buckets.setdefault((p.expiry, p.right), []).append(p)
        self._selections: dict[tuple, list[_Position]] = {}   # valid until the next take()
        self.focus: date | None = None

    def options(self, right: str | None = None, sign: int = 0,
                expiry: date | None = None) -> list[_Position]:
        key = (right, sign, expiry)
        selected = self._selections.get(key)
        if selected is None:
            pool = self._buckets.get((expiry, right), ()) if expiry is not None and right is not None \
                else self._options
            selected = [p for p in pool
                        if abs(self.left[p.con_id]) > EPS
                        and (right is None or p.right == right)
                        and (not sign or (self.left[p.con_id] > 0) == (sign > 0))
                        and (expiry is None or p.expiry == expiry)]
            self._selections[key] = selected
        return selected

    def expiries(self) -> list[date]:
        """Expiries still held; only the focused one while `focus` is set."""
        held = sorted({p.expiry for p in self.options()})
        return [e for e in held if e == self.focus] if self.focus is not None else held

    def units(self, legs: Iterable[tuple[_Position, float]]) -> float:
        """How many units of a shape (leg, signed ratio per unit) the book still holds."""
        n = math.inf
        for p, ratio in legs:
            q = self.left[p.con_id]
            if q * ratio <= 0:
                return 0.0
            n = min(n, abs(q) / abs(ratio))
        if math.isinf(n):
            return 0.0
        # Structures come in whole units (contracts); a fraction left over stays single.
        whole = math.floor(n + EPS)
        return float(whole) if whole >= 1 else 0.0

    def take(self, legs: Sequence[tuple[_Position, float]], n: float) -> tuple[tuple[int, float], ...]:
        self._selections.clear()
        held = []
        for p, ratio in legs:
            qty = ratio * n
            self.left[p.con_id] -= qty
            if abs(self.left[p.con_id]) <= EPS:
                self.left[p.con_id] = 0.0
            held.append((p.con_id, qty))
        return tuple(held)


# A shape finder yields candidates: (sort key, [(position, signed ratio)], kind, explain(units)).
Candidate = tuple[tuple, list[tuple[_Position, float]], str, Callable[[float], str]]


def _best(candidates: Iterable[Candidate]) -> Candidate | None:
    return min(candidates, key=lambda c: c[0], default=None)


def _leg_ids(legs: Sequence[tuple[_Position, float]]) -> tuple[int, ...]:
    return tuple(p.con_id for p, _ in legs)


def _iron(book: _Book) -> Iterable[Candidate]:
    for expiry in book.expiries():
        for inner_sign in (-1, 1):
            outer_sign = -inner_sign
            inner_puts = book.options("P", inner_sign, expiry)
            outer_puts = book.options("P", outer_sign, expiry)
            inner_calls = book.options("C", inner_sign, expiry)
            outer_calls = book.options("C", outer_sign, expiry)
            put_pairs = [(i, o) for i, o in product(inner_puts, outer_puts) if o.strike < i.strike]
            call_pairs = [(i, o) for i, o in product(inner_calls, outer_calls) if o.strike > i.strike]
            for (ip, op), (ic, oc) in product(put_pairs, call_pairs):
                if ip.strike > ic.strike:
                    continue
                butterfly = ip.strike == ic.strike
                name = ("iron butterfly" if butterfly else "iron condor")
                if inner_sign > 0:
                    name = "reverse " + name
                legs = [(op, outer_sign), (ip, inner_sign), (ic, inner_sign), (oc, outer_sign)]
                width = (ip.strike - op.strike) + (oc.strike - ic.strike)
                key = (expiry, inner_sign, width, op.strike, ip.strike, ic.strike, oc.strike, _leg_ids(legs))
                body = "short" if inner_sign < 0 else "long"

                def why(n, op=op, ip=ip, ic=ic, oc=oc, body=body, expiry=expiry, butterfly=butterfly):
                    kind = "credit" if body == "short" else "debit"
                    middle = (f"{body} {_num(ip.strike)} straddle body" if butterfly
                              else f"{body} {_num(ip.strike)}P/{_num(ic.strike)}C body")
                    return (f"{_num(n)}x {_num(op.strike)}/{_num(ip.strike)}P put {kind} vertical + "
                            f"{_num(ic.strike)}/{_num(oc.strike)}C call {kind} vertical, all expiring "
                            f"{expiry:%Y-%m-%d}: {middle} with wings at {_num(op.strike)}P and "
                            f"{_num(oc.strike)}C")
                yield key, legs, name, why


def _butterfly(book: _Book) -> Iterable[Candidate]:
    for expiry in book.expiries():
        for right in ("C", "P"):
            opts = book.options(right, 0, expiry)
            by_strike: dict[float, list[_Position]] = {}
            for p in opts:
                by_strike.setdefault(p.strike, []).append(p)
            for body in opts:
                body_sign = -1 if book.left[body.con_id] < 0 else 1
                for low in opts:
                    if low.strike >= body.strike or (book.left[low.con_id] > 0) == (body_sign > 0):
                        continue
                    for high in by_strike.get(2 * body.strike - low.strike, ()):
                        if (book.left[high.con_id] > 0) == (body_sign > 0):
                            continue
                        wing = -body_sign
                        legs = [(low, wing), (body, 2 * body_sign), (high, wing)]
                        side = "long" if wing > 0 else "short"
                        name = f"{side} {'call' if right == 'C' else 'put'} butterfly"
                        key = (expiry, right, body.strike - low.strike, low.strike, _leg_ids(legs))

                        def why(n, low=low, body=body, high=high, side=side, expiry=expiry, right=right):
                            return (f"{_num(n)}x 1-2-1 {_num(low.strike)}/{_num(body.strike)}/"
                                    f"{_num(high.strike)}{right} expiring {expiry:%Y-%m-%d}: {side} the "
                                    f"wings, {'short' if side == 'long' else 'long'} 2x the body, "
                                    f"equal {_num(body.strike - low.strike)}-point wings")
                        yield key, legs, name, why


def _vertical(book: _Book) -> Iterable[Candidate]:
    for expiry in book.expiries():
        for right in ("C", "P"):
            for long_leg, short_leg in product(book.options(right, 1, expiry), book.options(right, -1, expiry)):
                if long_leg.strike == short_leg.strike:
                    continue
                # Credit when the leg sold is the dearer one: the lower call, the higher put.
                credit = (short_leg.strike < long_leg.strike) if right == "C" else (short_leg.strike > long_leg.strike)
                word = "call" if right == "C" else "put"
                name = f"{word} {'credit' if credit else 'debit'} vertical"
                legs = sorted([(long_leg, 1.0), (short_leg, -1.0)], key=lambda x: x[0].strike)
                width = abs(long_leg.strike - short_leg.strike)
                key = (expiry, right, width, legs[0][0].strike, _leg_ids(legs))

                def why(n, long_leg=long_leg, short_leg=short_leg, expiry=expiry, right=right, credit=credit):
                    return (f"{_num(n)}x long {_num(long_leg.strike)}{right} / short {_num(short_leg.strike)}{right}, "
                            f"same expiry {expiry:%Y-%m-%d}, equal size: the short leg is the "
                            f"{'dearer' if credit else 'cheaper'} one, so it is opened for a "
                            f"{'credit' if credit else 'debit'}")
                yield key, legs, name, why


def _time_spreads(book: _Book, same_strike: bool) -> Iterable[Candidate]:
    for right in ("C", "P"):
        for a, b in product(book.options(right, 1), book.options(right, -1)):
            if a.expiry == b.expiry or (a.strike == b.strike) != same_strike:
                continue
            near, far = (a, b) if a.expiry < b.expiry else (b, a)
            long_far = far is a
            word = "call" if right == "C" else "put"
            name = f"{'long' if long_far else 'short'} {word} {'calendar' if same_strike else 'diagonal'}"
            legs = [(near, 1.0 if near is a else -1.0), (far, 1.0 if far is a else -1.0)]
            key = (near.expiry, (far.expiry - near.expiry).days, abs(a.strike - b.strike), right,
                   min(a.strike, b.strike), _leg_ids(legs))

            def why(n, near=near, far=far, long_far=long_far, right=right, same_strike=same_strike):
                strikes = (f"same strike {_num(near.strike)}{right}" if same_strike else
                           f"strikes {_num(near.strike)}{right} near / {_num(far.strike)}{right} far")
                return (f"{_num(n)}x {'short' if long_far else 'long'} {near.expiry:%Y-%m-%d} against "
                        f"{'long' if long_far else 'short'} {far.expiry:%Y-%m-%d}, {strikes}, equal size")
            yield key, legs, name, why


def _calendar(book: _Book) -> Iterable[Candidate]:
    return _time_spreads(book, same_strike=True)


def _diagonal(book: _Book) -> Iterable[Candidate]:
    return _time_spreads(book, same_strike=False)


def _straddle_strangle(book: _Book, straddle: bool) -> Iterable[Candidate]:
    for expiry in book.expiries():
        for sign in (1, -1):
            for put, call in product(book.options("P", sign, expiry), book.options("C", sign, expiry)):
                if straddle != (put.strike == call.strike) or put.strike > call.strike:
                    continue
                side = "long" if sign > 0 else "short"
                name = f"{side} {'straddle' if straddle else 'strangle'}"
                legs = [(put, float(sign)), (call, float(sign))]
                key = (expiry, -sign, call.strike - put.strike, put.strike, _leg_ids(legs))

                def why(n, put=put, call=call, side=side, expiry=expiry):
                    return (f"{_num(n)}x {side} {_num(put.strike)}P and {_num(call.strike)}C, same expiry "
                            f"{expiry:%Y-%m-%d}, equal size")
                yield key, legs, name, why


def _straddle(book: _Book) -> Iterable[Candidate]:
    return _straddle_strangle(book, straddle=True)


def _strangle(book: _Book) -> Iterable[Candidate]:
    return _straddle_strangle(book, straddle=False)


def _stocks(book: _Book, sign: int) -> list[_Position]:
    return sorted((p for p in book.positions.values()
                   if p.is_stock and book.left[p.con_id] * sign > EPS), key=lambda p: p.con_id)


def _stock_hedges(book: _Book, shape: str) -> Iterable[Candidate]:
    """Long stock with, per contract, `multiplier` shares: collar, covered call, protective put."""
    for stock in _stocks(book, 1):
        if shape == "collar":
            pairs = [(p, c) for p, c in product(book.options("P", 1), book.options("C", -1))
                     if p.expiry == c.expiry and p.multiplier == c.multiplier and p.strike <= c.strike]
        elif shape == "covered call":
            pairs = [(None, c) for c in book.options("C", -1)]
        else:
            pairs = [(p, None) for p in book.options("P", 1)]
        for put, call in pairs:
            opts = [o for o in (put, call) if o is not None]
            mult = opts[0].multiplier
            legs = [(stock, mult)] + [(o, 1.0 if o is put else -1.0) for o in opts]
            key = (opts[0].expiry, tuple(o.strike for o in opts), _leg_ids(legs))

            def why(n, stock=stock, put=put, call=call, mult=mult, shape=shape):
                parts = [f"long {_num(n * mult)} {stock.symbol} shares"]
                if put is not None:
                    parts.append(f"long {_num(n)} {put.expiry:%Y-%m-%d} {_num(put.strike)}P")
                if call is not None:
                    parts.append(f"short {_num(n)} {call.expiry:%Y-%m-%d} {_num(call.strike)}C")
                return " + ".join(parts) + f": {_num(mult)} shares per contract ({shape})"
            yield key, legs, shape, why


def _collar(book: _Book) -> Iterable[Candidate]:
    return _stock_hedges(book, "collar")


def _covered_call(book: _Book) -> Iterable[Candidate]:
    return _stock_hedges(book, "covered call")


def _protective_put(book: _Book) -> Iterable[Candidate]:
    return _stock_hedges(book, "protective put")


# Shapes within one expiry, then shapes across expiries or with stock, most specific first.
ONE_EXPIRY_SHAPES = (_iron, _butterfly, _vertical, _straddle, _strangle)
OTHER_SHAPES = (_calendar, _diagonal, _collar, _covered_call, _protective_put)


def _take_greedily(book: _Book, shape, account: str, symbol: str, matches: list[_Match]) -> None:
    while True:
        best = _best(c for c in shape(book) if book.units(c[1]) >= 1)
        if best is None:
            return
        _, legs, kind, why = best
        n = book.units(legs)
        members = book.take(legs, n)
        matches.append(_Match(kind, account, symbol, members, why(n)))


def _match_book(account: str, symbol: str, positions: Sequence[_Position]) -> list[_Match]:
    book = _Book(positions)
    matches: list[_Match] = []
    for shape in ONE_EXPIRY_SHAPES:
        # Candidates sort by expiry first and taking legs of one expiry never creates a
        # candidate in another, so matching expiry by expiry gives the same result, faster.
        for expiry in book.expiries():
            book.focus = expiry
            _take_greedily(book, shape, account, symbol, matches)
        book.focus = None
    for shape in OTHER_SHAPES:
        _take_greedily(book, shape, account, symbol, matches)
    for p in sorted(book.positions.values(), key=lambda p: (not p.is_option, p.expiry or date.min,
                                                              p.right or "", p.strike or 0.0, p.con_id)):
        q = book.left[p.con_id]
        if abs(q) <= EPS:
            continue
        side = "long" if q > 0 else "short"
        if p.is_option:
            kind = f"{side} {'call' if p.right == 'C' else 'put'}"
            why = f"{p.describe(q)}: a single option leg that pairs with nothing else held"
        elif p.is_stock:
            kind = f"{side} stock"
            why = f"{side} {_num(abs(q))} shares not covering any option"
        else:
            kind = "custom"
            why = (f"{p.describe(q)}: security type {p.sec_type!r} or incomplete option details "
                   f"(expiry/strike/right) fit no named strategy")
        matches.append(_Match(kind, account, symbol, ((p.con_id, q),), why))
        book.left[p.con_id] = 0.0
    return matches


def _strategy_id(match: _Match) -> str:
    ids = ",".join(str(c) for c in sorted(c for c, _ in match.members))
    digest = hashlib.sha1(f"{match.account}|{ids}".encode()).hexdigest()[:10]
    return f"{match.kind.replace(' ', '-')}:{match.underlying}:{digest}"


@lru_cache(maxsize=32)
def _plan(structure: tuple[_Position, ...]) -> tuple[tuple[str, _Match], ...]:
    """Matches with their ids for a whole book; cached because grouping ignores prices."""
    groups: dict[tuple[str, str], list[_Position]] = {}
    for p in structure:
        groups.setdefault((p.account, p.symbol), []).append(p)
    planned: list[tuple[str, _Match]] = []
    seen: dict[str, int] = {}
    for (account, symbol) in sorted(groups):
        for m in _match_book(account, symbol, groups[(account, symbol)]):
            sid = _strategy_id(m)
            seen[sid] = seen.get(sid, 0) + 1
            if seen[sid] > 1:                     # the same legs twice in one shape: keep ids unique
                sid = f"{sid}#{seen[sid]}"
            planned.append((sid, m))
    return tuple(planned)


def _structure(legs: Sequence[Leg]) -> tuple[_Position, ...]:
    merged: dict[tuple[str, int], _Position] = {}
    for leg in legs:
        c = leg.contract
        q = float(leg.quantity) if leg.quantity is not None and math.isfinite(leg.quantity) else 0.0
        key = (leg.account, c.con_id)
        if key in merged:                          # the same contract reported twice: one position
            q += merged[key].quantity
        merged[key] = _Position(leg.account, c.symbol, c.con_id, c.sec_type, c.expiry, c.strike,
                                c.right, float(c.multiplier or 1.0), q)
    return tuple(sorted((p for p in merged.values() if abs(p.quantity) > EPS),
                        key=lambda p: (p.account, p.symbol, p.con_id)))


def _counts_in_totals(leg: Leg) -> bool:
    return leg.greeks is not None and not leg.flags


def _or_zero(x: float | None) -> float:
    return x if x is not None and math.isfinite(x) else 0.0


def _aggregate(legs: Sequence[Leg]) -> tuple[list[Strategy], dict[tuple[str, int], str]]:
    """Strategies with their Greeks/P&L, and which strategy holds most of each (account, conId)."""
    plan = _plan(_structure(legs))
    by_key: dict[tuple[str, int], list[Leg]] = {}
    for leg in legs:
        by_key.setdefault((leg.account, leg.contract.con_id), []).append(leg)

    strategies: list[Strategy] = []
    owner: dict[tuple[str, int], tuple[float, str]] = {}
    for sid, m in plan:
        totals = [0.0] * 6
        upnl = dpnl = value = 0.0
        for con_id, qty in m.members:
            same = by_key.get((m.account, con_id), [])
            total_qty = sum(_or_zero(leg.quantity) for leg in same)
            share = qty / total_qty if total_qty else 0.0
            for leg in same:
                if _counts_in_totals(leg):
                    g = leg.position_greeks
                    for i, x in enumerate((g.delta, g.gamma, g.theta, g.vega, g.dollar_delta, g.beta_delta)):
                        totals[i] += x * share
                upnl += _or_zero(leg.unrealized_pnl) * share
                dpnl += _or_zero(leg.daily_pnl) * share
                value += _or_zero(leg.market_value) * share
            if abs(qty) > owner.get((m.account, con_id), (0.0, ""))[0] + EPS:
                owner[(m.account, con_id)] = (abs(qty), sid)
        strategies.append(Strategy(
            strategy_id=sid, kind=m.kind, underlying=m.underlying,
            con_ids=tuple(c for c, _ in m.members), greeks=PositionGreeks(*totals),
            unrealized_pnl=upnl, daily_pnl=dpnl, market_value=value, explanation=m.explanation,
            quantities=tuple(q for _, q in m.members)))
    return strategies, {key: sid for key, (_, sid) in owner.items()}


def group_strategies(legs: Sequence[Leg]) -> list[Strategy]:
    """Deterministic, explained strategies for `legs` (see the module doc for the rules).

    Greeks per strategy add up its legs' `position_greeks` (pro rata for a split leg), leaving
    out legs without Greeks or with flags; P&L and market value add up what the legs report.
    """
    return _aggregate(legs)[0]


def group_and_tag(legs: Sequence[Leg]) -> tuple[list[Strategy], list[Leg]]:
    """`group_strategies(legs)` plus the legs (same order) with `strategy_id` set.

    A leg split between strategies is tagged with the one holding most of it (ties: the
    first in the strategy order). Legs with zero quantity get no strategy.
    """
    strategies, owner = _aggregate(legs)
    tagged = [replace(leg, strategy_id=owner.get((leg.account, leg.contract.con_id), ""))
              for leg in legs]
    return strategies, tagged
