"""The Trade page's chain: which strikes to show, the chain as a table, the stock's quote and
spot, and the legs drafted so far in this session (moved from pages/trade.py, unchanged)."""

from __future__ import annotations

from datetime import date

import pandas as pd
import streamlit as st

from pages.components import common
from pages.components.common import session_id
from v6core.greeks import NEW_YORK
from v6core.structures import OptionQuote, strikes_around
from v6core.structures.chain import ChainSlice

LEGS_KEY = "v6_trade_legs"          # {con_id: signed quantity per unit}
KIND_KEY = "v6_trade_kind"
ORIGIN_KEY = "v6_trade_origin"      # "chain" or "roll"
STRIKE_STEPS = {1: "every listed strike", 2: "every 2nd", 5: "every 5th", 10: "every 10th"}


def view_id(suffix: str = "") -> str:
    return f"{session_id()}{':' + suffix if suffix else ''}"


def today() -> date:
    return common.utcnow().astimezone(NEW_YORK).date()


def shown_strikes(listed, spot: float, count: int, every: int) -> list[float]:
    """`count` strikes around spot, every `every`-th listed one (wider views within the line limit)."""
    listed = sorted(listed)
    if every > 1 and listed:
        anchor = min(range(len(listed)), key=lambda i: abs(listed[i] - spot))
        listed = [k for i, k in enumerate(listed) if (i - anchor) % every == 0]
    return strikes_around(listed, spot, count)


def stock_quote(snapshot, listing) -> OptionQuote:
    q = snapshot.quote(listing.stock.con_id)
    return OptionQuote(listing.stock, bid=q.bid if q else None, ask=q.ask if q else None, delta=1.0,
                       time=q.time if q else None)


def spot_of(snapshot, listing) -> float | None:
    und = snapshot.underlying(listing.symbol)
    if und is not None and und.spot:
        return und.spot
    q = snapshot.quote(listing.stock.con_id)
    return q.mark if q is not None else None


def chain_frame(chain: ChainSlice, held: dict[int, float]) -> pd.DataFrame:
    rows = []
    for k, c, p in zip(chain.strikes, chain.calls, chain.puts):
        def side(q, prefix):
            return {f"{prefix} OI": q.open_interest if q else None, f"{prefix} Δ": q.delta if q else None,
                    f"{prefix} IV %": q.iv * 100 if q and q.iv else None,
                    f"{prefix} bid": q.bid if q else None, f"{prefix} ask": q.ask if q else None,
                    f"{prefix} mid": q.mid if q else None,
                    f"{prefix} held": held.get(q.contract.con_id) if q else None}
        call, put = side(c, "Call"), side(p, "Put")
        rows.append({**{k2: call[k2] for k2 in ("Call held", "Call OI", "Call Δ", "Call IV %", "Call bid",
                                               "Call mid", "Call ask")},
                     "Strike": k,
                     **{k2: put[k2] for k2 in ("Put bid", "Put mid", "Put ask", "Put IV %", "Put Δ", "Put OI",
                                              "Put held")}})
    return pd.DataFrame(rows)


_NUM = st.column_config.NumberColumn
CHAIN_COLUMNS = {
    "Strike": _NUM(format="%.2f", pinned=True),
    **{f"{s} {c}": _NUM(format=f) for s in ("Call", "Put") for c, f in (
        ("bid", "%.2f"), ("ask", "%.2f"), ("mid", "%.3f"), ("IV %", "%.1f"), ("Δ", "%+.2f"),
        ("OI", "%,d"), ("held", "%+g"))},
}


def add_legs(symbol: str, legs: dict[int, int], kind: str, replace: bool, origin: str = "chain") -> None:
    current = {} if replace or st.session_state.get("v6_trade_symbol_of_legs") != symbol else \
        dict(st.session_state.get(LEGS_KEY, {}))
    for con_id, qty in legs.items():
        current[con_id] = current.get(con_id, 0) + qty
    st.session_state[LEGS_KEY] = {c: q for c, q in current.items() if q}
    st.session_state["v6_trade_symbol_of_legs"] = symbol
    st.session_state[KIND_KEY] = kind if replace or len(current) == len(legs) else "custom"
    st.session_state[ORIGIN_KEY] = origin
