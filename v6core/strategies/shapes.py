"""Shape finders: the candidate iron condors, butterflies, verticals, ... a book still holds."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import product

from v6core.strategies.book import EPS, Candidate, _Book, _num, _Position


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
