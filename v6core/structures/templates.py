"""Strategy templates: the legs of a named structure, placed on a chain by target delta or by
strike and width. Pure: reads `ChainSlice` values, returns a frozen `Structure`.

Placement (delta = |delta| of the key leg, e.g. 0.30; width = strike distance in $):

    single           one option: `right`, buy or sell, at delta or strike
    vertical         sell: short at delta, long `width` further out of the money (a credit);
                     buy: long at delta, short `width` further out (a debit)
    strangle         put at -delta, call at +delta (or put at strike, call `width` above)
    straddle         put and call at the strike nearest spot (or at `strike`)
    iron condor      sell: short put and call at delta, long wings `width` beyond each
    butterfly        body at delta / strike (ATM by default), wings `width` each side, 1-2-1;
                     buy = long the wings
    calendar         one strike (delta in the near expiry); buy = sell near, buy far
    diagonal         near leg at delta, far leg `width` nearer the money; buy = sell near, buy far
    covered call     +multiplier shares and a short call at delta
    cash-secured put a short put at delta (cash for strike x multiplier set aside)

Every leg's strike is a listed one: `width` lands on the listed strike nearest it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

from v6core.models import ContractInfo
from v6core.structures.chain import ChainSlice, OptionQuote, StructureError

TEMPLATES = ("single", "vertical", "strangle", "straddle", "iron condor", "butterfly",
             "calendar", "diagonal", "covered call", "cash-secured put")
TWO_EXPIRIES = frozenset({"calendar", "diagonal"})


@dataclass(slots=True, frozen=True)
class StructureLeg:
    """A leg per unit of the structure: signed quantity (contracts, or shares for stock)."""

    contract: ContractInfo
    quantity: int
    quote: OptionQuote | None = None

    @property
    def is_option(self) -> bool:
        return self.contract.sec_type == "OPT"

    @property
    def label(self) -> str:
        return f"{'+' if self.quantity > 0 else ''}{self.quantity} {self.contract.label}"


@dataclass(slots=True, frozen=True)
class Structure:
    """A named set of legs on one underlying, traded `units` times."""

    kind: str
    underlying: str
    legs: tuple[StructureLeg, ...]
    units: int = 1
    description: str = ""

    @property
    def expiries(self) -> tuple[date, ...]:
        return tuple(sorted({leg.contract.expiry for leg in self.legs if leg.contract.expiry}))

    def scaled(self) -> list[tuple[StructureLeg, int]]:
        """Each leg with its total signed quantity (per-unit quantity x units)."""
        return [(leg, leg.quantity * self.units) for leg in self.legs]

    def net_mid(self) -> float | None:
        """Combo price of one unit at the legs' mids: sum of signed ratio x mid (per share for
        options, per share of stock for stock legs). Positive = a debit, negative = a credit."""
        total = 0.0
        for leg in self.legs:
            mid = leg.quote.mid if leg.quote is not None else None
            if mid is None:
                return None
            total += leg.quantity * mid
        return total

    def premium(self, price: float | None = None) -> float | None:
        """Dollars paid (+) or received (-) for all units: at the legs' mids, or at the combo
        `price` for an options-only structure (a stock leg's combo price mixes units, so a
        structure with stock is always valued leg by leg at mid)."""
        if price is None or any(not leg.is_option for leg in self.legs):
            total = 0.0
            for leg in self.legs:
                mid = leg.quote.mid if leg.quote is not None else None
                if mid is None:
                    return None
                total += leg.quantity * mid * (leg.contract.multiplier if leg.is_option else 1.0)
            return total * self.units
        multiplier = max(leg.contract.multiplier for leg in self.legs)
        return price * multiplier * self.units


@dataclass(slots=True, frozen=True)
class TemplateSpec:
    """What the operator picked: template, side, where to place it, how many."""

    kind: str
    side: str = "sell"                    # "buy" (long the structure) or "sell" (short it)
    right: str = "P"                      # single, vertical, butterfly, calendar, diagonal
    delta: float | None = 0.30            # |delta| of the key leg; None places by strike
    strike: float | None = None           # the key leg's strike (overrides delta)
    width: float = 5.0                    # $ between the key strike and the wing / other leg
    units: int = 1

    def __post_init__(self) -> None:
        if self.kind not in TEMPLATES:
            raise StructureError(f"unknown template {self.kind!r}; one of {', '.join(TEMPLATES)}")
        if self.side not in ("buy", "sell"):
            raise StructureError("side must be 'buy' or 'sell'")
        if self.right not in ("C", "P"):
            raise StructureError("right must be 'C' or 'P'")
        if self.delta is None and self.strike is None and self.kind not in ("straddle", "butterfly"):
            raise StructureError("give a target delta or a strike")
        if self.delta is not None and not 0 < abs(self.delta) < 1:
            raise StructureError("target delta must be between 0 and 1 (e.g. 0.30)")
        if not (math.isfinite(self.width) and self.width > 0):
            raise StructureError("width must be a positive number of dollars")
        if self.units < 1:
            raise StructureError("units must be at least 1")


def _key(chain: ChainSlice, spec: TemplateSpec, right: str, default_atm: bool = False) -> OptionQuote:
    if spec.strike is not None:
        return chain.require(spec.strike, right)
    if spec.delta is None or default_atm:
        return chain.require(chain.atm_strike(), right)
    return chain.by_delta(right, spec.delta)


def _out(right: str) -> int:
    """Direction of 'further out of the money' in strike: up for calls, down for puts."""
    return 1 if right == "C" else -1


def _legs(*pairs: tuple[OptionQuote, int]) -> tuple[StructureLeg, ...]:
    return tuple(StructureLeg(q.contract, qty, q) for q, qty in pairs)


def _put_call_pair(chain: ChainSlice, spec: TemplateSpec, width: float) -> tuple[OptionQuote, OptionQuote]:
    """The short put and call of a strangle or iron condor: by strike (the call `width` above the
    put) or by target delta."""
    if spec.strike is not None:
        return chain.require(spec.strike, "P"), chain.require(chain.offset(spec.strike, width), "C")
    return chain.by_delta("P", spec.delta), chain.by_delta("C", spec.delta)


def build(spec: TemplateSpec, chain: ChainSlice, far: ChainSlice | None = None) -> Structure:
    """The structure `spec` describes on `chain` (and `far`, the later expiry, for time spreads)."""
    k, s, r, w = spec.kind, 1 if spec.side == "buy" else -1, spec.right, spec.width
    if k in TWO_EXPIRIES:
        if far is None or far.expiry <= chain.expiry:
            raise StructureError(f"a {k} needs a later second expiry than {chain.expiry:%Y-%m-%d}")
    if k == "single":
        legs = _legs((_key(chain, spec, r), s))
    elif k == "cash-secured put":
        legs = _legs((_key(chain, spec, "P"), -1))
    elif k == "covered call":
        if chain.stock is None:
            raise StructureError(f"no {chain.symbol} stock quote for a covered call")
        call = _key(chain, spec, "C")
        shares = int(call.contract.multiplier)
        legs = (StructureLeg(chain.stock.contract, shares, chain.stock),) + _legs((call, -1))
    elif k == "vertical":
        near = _key(chain, spec, r)
        wing = chain.require(chain.offset(near.contract.strike, _out(r) * w), r)
        legs = _legs((near, s), (wing, -s))
    elif k == "iron condor":
        put, call = _put_call_pair(chain, spec, w)
        if put.contract.strike >= call.contract.strike:
            raise StructureError("the put strike must be below the call strike; lower the delta")
        put_wing = chain.require(chain.offset(put.contract.strike, -w), "P")
        call_wing = chain.require(chain.offset(call.contract.strike, w), "C")
        legs = _legs((put_wing, -s), (put, s), (call, s), (call_wing, -s))
    elif k == "strangle":
        put, call = _put_call_pair(chain, spec, w)
        if put.contract.strike >= call.contract.strike:
            raise StructureError("a strangle's put strike must be below its call strike")
        legs = _legs((put, s), (call, s))
    elif k == "straddle":
        strike = spec.strike if spec.strike is not None else chain.atm_strike()
        legs = _legs((chain.require(strike, "P"), s), (chain.require(strike, "C"), s))
    elif k == "butterfly":
        body = _key(chain, spec, r, default_atm=spec.strike is None and spec.delta is None)
        b = body.contract.strike
        low, high = chain.offset(b, -w), chain.offset(b, w)
        if not math.isclose(b - low, high - b):
            raise StructureError(f"no equal wings {w:g} around {b:g}: listed {low:g}/{b:g}/{high:g}")
        legs = _legs((chain.require(low, r), s), (body, -2 * s), (chain.require(high, r), s))
    elif k == "calendar":
        near = _key(chain, spec, r)
        legs = _legs((near, -s), (far.require(near.contract.strike, r), s))
    else:   # diagonal
        near = _key(chain, spec, r)
        legs = _legs((near, -s), (far.require(far.offset(near.contract.strike, -_out(r) * w), r), s))
    return Structure(kind=k, underlying=chain.symbol, legs=legs, units=spec.units,
                     description=describe(k, spec.side, legs))


def describe(kind: str, side: str, legs: tuple[StructureLeg, ...]) -> str:
    parts = ", ".join(leg.label for leg in legs)
    return f"{'long' if side == 'buy' else 'short'} {kind}: {parts}"


def single_leg(quote: OptionQuote, quantity: int) -> Structure:
    """A leg added by clicking a chain cell (buy at the ask: +, sell at the bid: -)."""
    leg = StructureLeg(quote.contract, quantity, quote)
    return Structure(kind="single", underlying=quote.contract.symbol, legs=(leg,),
                     description=leg.label)


def combine(structures: list[Structure], kind: str = "custom") -> Structure:
    """Legs of several structures on one underlying, summed per contract (zero ones dropped)."""
    if not structures:
        raise StructureError("nothing to combine")
    if len({s.underlying for s in structures}) != 1:
        raise StructureError("one underlying per ticket")
    totals: dict[int, list] = {}
    for s in structures:
        for leg, qty in s.scaled():
            entry = totals.setdefault(leg.contract.con_id, [leg, 0])
            entry[1] += qty
    legs = tuple(StructureLeg(leg.contract, qty, leg.quote) for leg, qty in totals.values() if qty)
    if not legs:
        raise StructureError("the legs cancel out")
    name = structures[0].kind if len(structures) == 1 else kind
    return Structure(kind=name, underlying=structures[0].underlying, legs=legs,
                     description=", ".join(leg.label for leg in legs))
