"""The matcher's data: a position's structure, a match, and the book of quantities still unmatched."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date

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
