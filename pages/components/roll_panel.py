"""The Trade page's roll panel: a strategy sent from Positions, drafted as one combo that closes
it and opens it at later expiries and/or other strikes (moved from pages/trade.py, unchanged)."""

from __future__ import annotations

import streamlit as st

from pages.components import structure_risk as sr
from pages.components.common import plain
from pages.components.trade_chain import add_legs, spot_of, today, view_id
from v6core.chainfeed import ChainLineLimit
from v6core.orders import strategy_legs
from v6core.structures import ROLL_MODES, RollPlan, StructureError, draft_roll, held_quotes


def roll_panel(services, strategy, listing, strikes: list[float]) -> None:
    snapshot = services.runtime.snapshot()
    legs = strategy_legs(strategy, snapshot.legs)
    options = [leg for leg in legs if leg.contract.is_option]
    st.subheader(f"Roll {strategy.kind} · {strategy.underlying}")
    st.caption(plain(strategy.explanation))
    held_expiries = sorted({leg.contract.expiry for leg in options})
    targets = {}
    cols = st.columns(len(held_expiries) + 2)
    for i, held in enumerate(held_expiries):
        later = [e for e in listing.expiries if e > held] or [held]
        default = min(range(len(later)), key=lambda j: abs((later[j] - held).days - 28))
        targets[held] = cols[i].selectbox(f"Roll {held:%Y-%m-%d} to", later, index=default,
                                          key=f"roll_to_{held}",
                                          format_func=lambda d: f"{d:%Y-%m-%d} · {(d - today()).days} DTE")
    mode = cols[-2].selectbox("Strikes", ROLL_MODES, key="roll_mode")
    shift = cols[-1].number_input("Shift strikes by ($)", value=0.0, step=1.0, key="roll_shift")
    c = st.columns(2)
    if c[0].button("Draft roll", key="roll_draft", type="primary"):
        feed = services.chains
        spot = spot_of(snapshot, listing)
        try:
            # The roll's quotes need lines: this session's chain gives its own back meanwhile (the
            # chain fragment takes them again on its next run).
            feed.release(view_id()).result(timeout=15)
            chains = {}
            if mode == "same strikes":
                roll_strikes = sorted({min(listing.strikes, key=lambda k: abs(k - leg.contract.strike - shift))
                                       for leg in options} | {leg.contract.strike for leg in options})
            else:
                roll_strikes = strikes
            for i, (held, target) in enumerate(targets.items()):
                feed.show(view_id(f"roll{i}"), listing.symbol, target, roll_strikes).result(timeout=15)
                chains[held] = feed.wait_slice(listing.symbol, target, roll_strikes, spot)
            quotes = held_quotes(options, {leg.contract.con_id: snapshot.quote(leg.contract.con_id)
                                           for leg in options if snapshot.quote(leg.contract.con_id)})
            roll = draft_roll(legs, RollPlan(chains, mode, float(shift)), quotes, kind=strategy.kind)
            feed.show_contracts(view_id("ticket"), [leg.contract for leg in roll.legs]).result(timeout=15)
            for i in range(len(targets)):
                feed.release(view_id(f"roll{i}"))
        except (StructureError, ChainLineLimit) as exc:
            st.error(plain(exc))
            return
        add_legs(listing.symbol, {leg.contract.con_id: leg.quantity for leg in roll.legs}, kind="roll",
                 replace=True, origin="roll")
        st.session_state["trade_units"] = roll.units
        st.session_state.pop("v6_trade_ticket", None)
    if c[1].button("Cancel roll", key="roll_cancel"):
        st.session_state.pop(sr.ROLL_KEY, None)
        st.rerun()
