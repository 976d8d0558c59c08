"""Rolling: one combo that closes held legs and opens the same structure at a later expiry
and/or other strikes. Pure: reads held `Leg`s and chain slices, returns a `Structure`.

- same strikes: each option leg reopens at its own strike in the target expiry;
- same delta: each reopens at the strike whose |delta| in the target expiry is nearest the
  leg's delta now (IB's per-contract delta of the held leg);
- `strike_shift` moves every reopened strike by that many dollars (to the nearest listed one).

Stock legs (a covered call's shares) are not rolled: they stay held. Quantities close exactly
what is held and reopen the same signed quantities; the combo is reduced to whole units.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import reduce

from v6core.models import Leg, Quote
from v6core.structures.chain import ChainSlice, OptionQuote, StructureError
from v6core.structures.templates import Structure, StructureLeg

ROLL_MODES = ("same strikes", "same delta")


@dataclass(slots=True, frozen=True)
class RollPlan:
    """What the operator chose: where each expiry goes and how strikes are picked."""

    targets: Mapping[date, ChainSlice]       # held expiry -> chain of the expiry it rolls to
    mode: str = "same strikes"
    strike_shift: float = 0.0

    def __post_init__(self) -> None:
        if self.mode not in ROLL_MODES:
            raise StructureError(f"roll mode must be one of {', '.join(ROLL_MODES)}")


def quote_from_leg(leg: Leg) -> OptionQuote:
    """A held leg's market as the runtime reports it (mark on both sides when no quote is given)."""
    g = leg.greeks
    return OptionQuote(leg.contract, bid=leg.mark, ask=leg.mark,
                       iv=g.iv if g is not None else None, delta=g.delta if g is not None else None,
                       und_price=g.und_price if g is not None else None, time=leg.quote_time)


def held_quotes(legs: Sequence[Leg], quotes_by_id: Mapping[int, Quote]) -> dict[int, OptionQuote]:
    """Held legs' live bid/ask (the snapshot's quotes) with their Greeks, by conId."""
    out: dict[int, OptionQuote] = {}
    for leg in legs:
        q = quotes_by_id.get(leg.contract.con_id)
        base = quote_from_leg(leg)
        if q is not None and q.bid is not None and q.ask is not None:
            base = OptionQuote(leg.contract, bid=q.bid, ask=q.ask, iv=base.iv, delta=base.delta,
                               und_price=base.und_price, time=q.time)
        out[leg.contract.con_id] = base
    return out


def _reopen(leg: Leg, held_delta: float | None, chain: ChainSlice, plan: RollPlan) -> OptionQuote:
    c = leg.contract
    if plan.mode == "same delta":
        if held_delta is None or not math.isfinite(held_delta):
            raise StructureError(f"no delta for {c.label}: roll it by same strikes")
        strike = chain.by_delta(c.right, abs(held_delta)).contract.strike
    else:
        strike = c.strike
    if plan.strike_shift:
        wanted = strike + plan.strike_shift
        strike = min(chain.strikes, key=lambda k: (abs(k - wanted), k))
    elif plan.mode == "same strikes" and chain.option(strike, c.right) is None:
        raise StructureError(f"{strike:g}{c.right} is not listed in {chain.expiry:%Y-%m-%d}")
    return chain.require(strike, c.right)


def draft_roll(held: Sequence[Leg], plan: RollPlan,
               quotes: Mapping[int, OptionQuote] | None = None, kind: str = "") -> Structure:
    """One structure closing `held` (signed quantities as held) and reopening it per `plan`.

    `quotes`: live quotes of the held contracts by conId (else each leg's mark stands in).
    """
    options = [leg for leg in held if leg.contract.is_option and leg.quantity]
    if not options:
        raise StructureError("nothing to roll: no option legs held")
    if len({leg.contract.symbol for leg in options}) != 1:
        raise StructureError("a roll is one underlying")
    if any(leg.quantity != int(leg.quantity) for leg in options):
        raise StructureError("fractional positions cannot be rolled as a combo")
    quotes = quotes or {}
    totals: dict[int, list] = {}
    for leg in options:
        c = leg.contract
        chain = plan.targets.get(c.expiry)
        if chain is None:
            raise StructureError(f"no target expiry chosen for the {c.expiry:%Y-%m-%d} legs")
        if chain.expiry <= c.expiry and plan.strike_shift == 0 and plan.mode == "same strikes":
            raise StructureError("a roll to the same expiry and strikes changes nothing")
        now_quote = quotes.get(c.con_id) or quote_from_leg(leg)
        held_delta = now_quote.delta if now_quote.delta is not None else (
            leg.greeks.delta if leg.greeks is not None else None)
        new = _reopen(leg, held_delta, chain, plan)
        qty = int(leg.quantity)
        totals.setdefault(c.con_id, [now_quote, 0])[1] -= qty
        totals.setdefault(new.contract.con_id, [new, 0])[1] += qty
    legs = [(q, n) for q, n in totals.values() if n]
    if not legs:
        raise StructureError("the roll closes and reopens the same contracts: nothing to trade")
    unit = reduce(math.gcd, (abs(n) for _, n in legs))
    structure_legs = tuple(StructureLeg(q.contract, n // unit, q) for q, n in legs)
    described = ", ".join(leg.label for leg in structure_legs)
    return Structure(kind="roll", underlying=options[0].contract.symbol, legs=structure_legs,
                     units=unit, description=f"roll {kind + ' ' if kind else ''}({described})")
