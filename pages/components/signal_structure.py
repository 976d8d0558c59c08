"""The Signals page's second way to draft a signal: a defined-risk vertical on the signal's
underlying (v6core.structures.drafting.draft_signal_structure), through the desk like every
ticket. Only ever shown for an actionable signal; the caller has checked that.

Defaults a trader would pick: a credit vertical (bullish: a put credit spread), the short leg at
0.30 delta, the nearest expiry at least 21 days out, about $5 wide in whole strikes. No bracket on
a vertical: its loss is capped by the long leg, and the signal's stop and target are levels of
the underlying, not prices of the combo.
"""

from __future__ import annotations

import math
from datetime import date

import streamlit as st

from pages.components import common
from v6core.greeks import NEW_YORK
from v6core.structures.chain import OptionQuote, strikes_around

MIN_DTE = 21
DEFAULT_DELTA = 0.30
DEFAULT_WIDTH = 5.0            # dollars, rounded to whole strikes
SHOWN_STRIKES = 40             # around spot: enough for a 0.30-delta leg and its wing
STYLES = {"credit": "credit (sell the spread)", "debit": "debit (buy the spread)"}


def _today() -> date:
    return common.utcnow().astimezone(NEW_YORK).date()


def default_expiry(expiries: tuple[date, ...], today: date) -> date | None:
    """The nearest expiry at least MIN_DTE days out (else the last one listed)."""
    later = [e for e in expiries if (e - today).days >= MIN_DTE]
    return later[0] if later else (expiries[-1] if expiries else None)


def strike_step(strikes: tuple[float, ...], spot: float) -> float:
    """The listed strikes' spacing around spot."""
    near = strikes_around(list(strikes), spot, 6)
    steps = [round(b - a, 4) for a, b in zip(near, near[1:]) if b > a]
    return min(steps) if steps else 1.0


def vertical_controls(services, record, spot: float | None):
    """The vertical's inputs and its "Create vertical ticket" button, for an actionable signal;
    the drafted ticket when the button drafted one, else None."""
    feed = getattr(services, "chains", None)
    st.markdown("**Or as a defined-risk option vertical**")
    if feed is None:
        st.caption("Option chains are not available in this app.")
        return None
    try:
        listing = feed.listing(record.symbol).result(timeout=15)
    except Exception as exc:                  # no options listed, unknown symbol, not connected
        st.error(f"No option chain for {common.plain(record.symbol)}: {common.plain(exc)}")
        return None
    today = _today()
    expiry = default_expiry(listing.expiries, today)
    if expiry is None:
        st.error(f"The gateway lists no expiries for {common.plain(record.symbol)}.")
        return None
    key = f"v6_vertical_{record.record_id}"
    bullish = record.action.value == "BUY"
    cols = st.columns(4)
    style = cols[0].selectbox(
        "Vertical", list(STYLES), format_func=STYLES.get, key=f"{key}_style",
        help=("Bullish: a put credit spread or a call debit spread." if bullish else
              "Bearish: a call credit spread or a put debit spread."))
    delta = cols[1].number_input("Target delta", min_value=0.05, max_value=0.95, value=DEFAULT_DELTA,
                                 step=0.05, key=f"{key}_delta",
                                 help="|delta| of the short leg (credit) or the long leg (debit)")
    step = strike_step(listing.strikes, spot or listing.strikes[len(listing.strikes) // 2])
    width_strikes = int(cols[2].number_input(
        "Width (strikes)", min_value=1, max_value=20, value=max(1, round(DEFAULT_WIDTH / step)),
        step=1, key=f"{key}_width", help=f"Strikes here are ${step:g} apart"))
    choices = [e for e in listing.expiries if e >= today]
    expiry = cols[3].selectbox("Expiry", choices, index=choices.index(expiry) if expiry in choices else 0,
                               key=f"{key}_expiry",
                               format_func=lambda d: f"{d:%Y-%m-%d} · {(d - today).days} DTE")
    st.caption(f"Width ${width_strikes * step:g}. No bracket on a vertical: the long leg caps its loss; "
               "the signal's stop and target are underlying levels to watch.")
    if spot is None or not math.isfinite(spot):
        st.caption(f"No live price for {common.plain(record.symbol)} yet: the vertical can be drafted "
                   "once it is quoted.")
        return None
    available = getattr(services.orders, "trading_available", True)
    if not st.button("Create vertical ticket", key=f"{key}_create", disabled=not available,
                     help="Drafts the vertical as one combo ticket; you review and confirm it on Orders."):
        return None
    return _draft(services, record, listing, expiry, spot, style, float(delta), width_strikes * step)


def _draft(services, record, listing, expiry: date, spot: float, style: str, delta: float,
           width: float):
    from v6core.structures.drafting import draft_signal_structure

    feed = services.chains
    view = f"signals:{common.session_id()}"
    strikes = strikes_around(list(listing.strikes), spot, SHOWN_STRIKES)
    snapshot = services.runtime.snapshot()
    stock = snapshot.quote(listing.stock.con_id)
    stock_quote = OptionQuote(listing.stock, bid=stock.bid if stock else None,
                              ask=stock.ask if stock else None, delta=1.0)
    try:
        with st.spinner(f"Reading the {expiry:%Y-%m-%d} chain of {record.symbol}…"):
            feed.show(view, listing.symbol, expiry, strikes).result(timeout=15)
            chain = feed.wait_slice(listing.symbol, expiry, strikes, spot, stock_quote)
            ticket = draft_signal_structure(services.orders, record, chain, common.session_id(),
                                            delta=delta, width=width, style=style)
    except Exception as exc:    # the desk's and the chain's refusals are for the operator to read
        st.error("No vertical was drafted:")
        st.text(str(exc) or type(exc).__name__)
        return None
    finally:
        try:      # the ticket's legs are streamed for the ticket itself (draft_structure watches them)
            feed.release(view)
        except Exception:
            pass
    return ticket
