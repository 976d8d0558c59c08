"""One expiry of an option chain as plain frozen values: what templates, rolls and the Trade
page read. Built by the chain feed from the gateway's quotes (or by tests by hand).

Deltas are IB's per-contract deltas (calls in [0, 1], puts in [-1, 0]); prices per share.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import date, datetime

from v6core.models import ContractInfo


class StructureError(ValueError):
    """A structure cannot be built from this chain (missing strike, no deltas, bad spec)."""


def _finite(x: float | None) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


@dataclass(slots=True, frozen=True)
class OptionQuote:
    """One contract's live market: bid/ask, IB's model Greeks, open interest when served."""

    contract: ContractInfo
    bid: float | None = None
    ask: float | None = None
    iv: float | None = None
    delta: float | None = None
    gamma: float | None = None
    theta: float | None = None
    vega: float | None = None
    open_interest: float | None = None
    und_price: float | None = None
    time: datetime | None = None

    @property
    def mid(self) -> float | None:
        if _finite(self.bid) and _finite(self.ask) and self.ask >= self.bid >= 0 and self.ask > 0:
            return (self.bid + self.ask) / 2
        return None


@dataclass(slots=True, frozen=True)
class ChainSlice:
    """Calls and puts of one underlying and expiry, aligned by strike (ascending)."""

    symbol: str
    expiry: date
    spot: float
    strikes: tuple[float, ...]
    calls: tuple[OptionQuote | None, ...]
    puts: tuple[OptionQuote | None, ...]
    stock: OptionQuote | None = None          # the underlying (covered calls), delta 1
    _index: dict[float, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (len(self.strikes) == len(self.calls) == len(self.puts)):
            raise ValueError("strikes, calls and puts must be aligned")
        if list(self.strikes) != sorted(self.strikes):
            raise ValueError("strikes must ascend")
        object.__setattr__(self, "_index", {round(k, 4): i for i, k in enumerate(self.strikes)})

    def option(self, strike: float, right: str) -> OptionQuote | None:
        i = self._index.get(round(float(strike), 4))
        if i is None:
            return None
        return (self.calls if right == "C" else self.puts)[i]

    def require(self, strike: float, right: str) -> OptionQuote:
        q = self.option(strike, right)
        if q is None:
            raise StructureError(f"{self.symbol} {self.expiry:%Y-%m-%d} {strike:g}{right} is not listed")
        return q

    def atm_strike(self) -> float:
        if not self.strikes:
            raise StructureError(f"{self.symbol} {self.expiry:%Y-%m-%d} lists no strikes")
        return min(self.strikes, key=lambda k: (abs(k - self.spot), k))

    def by_delta(self, right: str, target: float) -> OptionQuote:
        """The listed option whose |delta| is nearest `target` (ties: the further out of the money)."""
        side = self.calls if right == "C" else self.puts
        candidates = [q for q in side if q is not None and _finite(q.delta)]
        if not candidates:
            raise StructureError(f"no {right} deltas yet for {self.symbol} {self.expiry:%Y-%m-%d}")
        otm_first = (lambda q: -q.contract.strike) if right == "C" else (lambda q: q.contract.strike)
        best = min(candidates, key=lambda q: (abs(abs(q.delta) - abs(target)), otm_first(q)))
        # at the edge of the strikes shown, a nearer delta may lie beyond them: never guess
        lowest, highest = candidates[0], candidates[-1]
        far_otm = highest if right == "C" else lowest
        deep_itm = lowest if right == "C" else highest
        if (best is far_otm and abs(best.delta) > abs(target)) or \
                (best is deep_itm and abs(best.delta) < abs(target)):
            raise StructureError(f"delta {abs(target):.2f} lies beyond the {right} strikes shown "
                                 f"({lowest.contract.strike:g}-{highest.contract.strike:g}); show more strikes")
        return best

    def offset(self, strike: float, distance: float) -> float:
        """The listed strike nearest `strike + distance`, never `strike` itself (distance != 0)."""
        if distance == 0:
            return strike
        wanted = strike + distance
        beyond = [k for k in self.strikes if (k > strike if distance > 0 else k < strike)]
        if not beyond:
            raise StructureError(f"no strike {'above' if distance > 0 else 'below'} {strike:g} "
                                 f"in {self.symbol} {self.expiry:%Y-%m-%d}")
        return min(beyond, key=lambda k: (abs(k - wanted), abs(k - strike)))

    def around(self, center: float, count: int) -> ChainSlice:
        """The `count` strikes nearest `center` (what the page shows and subscribes)."""
        if count >= len(self.strikes):
            return self
        i = bisect_left(self.strikes, center)
        lo = max(0, min(i - count // 2, len(self.strikes) - count))
        sl = slice(lo, lo + count)
        return ChainSlice(self.symbol, self.expiry, self.spot, self.strikes[sl], self.calls[sl],
                          self.puts[sl], self.stock)


def strikes_around(strikes: list[float] | tuple[float, ...], center: float, count: int) -> list[float]:
    """The `count` listed strikes nearest `center`, ascending."""
    ordered = sorted(strikes)
    if count >= len(ordered):
        return ordered
    i = bisect_left(ordered, center)
    lo = max(0, min(i - count // 2, len(ordered) - count))
    return ordered[lo:lo + count]
