"""The greedy matcher: shapes taken most specific first, leftovers as single legs, stable ids."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from datetime import date
from functools import lru_cache

from v6core.models import Leg
from v6core.strategies.book import EPS, Candidate, _Book, _Match, _num, _Position
from v6core.strategies.shapes import ONE_EXPIRY_SHAPES, OTHER_SHAPES


def _best(candidates: Iterable[Candidate]) -> Candidate | None:
    return min(candidates, key=lambda c: c[0], default=None)


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
