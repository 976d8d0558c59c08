"""How a ticket's risk looks: payoff figures, before/after risk graphs, Greeks before → after.
Formatting only; every number comes from `v6core.structures` (not a page itself)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from pages.components import common
from pages.components.common import plain
from v6core.structures import Structure, StructureError, TicketRisk, order_structure, order_ticket_risk
from v6core.structures.drafting import net_label

ROLL_KEY = "v6_roll_strategy"        # the strategy the Trade page is asked to roll
TRADE_PAGE = "pages/trade.py"


def legs_frame(structure: Structure) -> pd.DataFrame:
    rows = []
    for leg, qty in structure.scaled():
        q = leg.quote
        rows.append({
            "Leg": leg.contract.label, "Qty": qty,
            "Bid": q.bid if q else None, "Ask": q.ask if q else None, "Mid": q.mid if q else None,
            "IV %": q.iv * 100 if q and q.iv else None, "Delta/contract": q.delta if q else None,
        })
    return pd.DataFrame(rows)


LEG_COLUMNS = {
    "Qty": st.column_config.NumberColumn(format="%+d"),
    "Bid": st.column_config.NumberColumn(format="%.2f"),
    "Ask": st.column_config.NumberColumn(format="%.2f"),
    "Mid": st.column_config.NumberColumn(format="%.3f"),
    "IV %": st.column_config.NumberColumn(format="%.1f"),
    "Delta/contract": st.column_config.NumberColumn(format="%+.3f"),
}


def _money(value: float | None, unlimited: str) -> str:
    return unlimited if value is None else common.fmt_money(value, signed=True)


def summary_metrics(tr: TicketRisk, price: float | None) -> None:
    s = tr.summary
    cols = st.columns(6)
    cols[0].metric("Net", net_label(price), help="Combo price per unit and share: debit paid or credit received")
    cols[1].metric("Max profit", _money(s.max_profit, "unlimited"), help=f"At {s.horizon:%Y-%m-%d} expiry")
    cols[2].metric("Max loss", _money(s.max_loss, "unlimited"), help=f"At {s.horizon:%Y-%m-%d} expiry")
    cols[3].metric("Breakevens", ", ".join(f"{b:,.2f}" for b in s.breakevens) or common.DASH)
    cols[4].metric("Probability of profit", common.fmt_pct(s.pop * 100 if s.pop is not None else None),
                   help="At the first expiry, lognormal at the legs' implied vols (smile at each breakeven)")
    cols[5].metric("Premium", common.fmt_money(s.premium, signed=True),
                   help="Dollars paid (+) or received (−) for all units")


def risk_chart(tr: TicketRisk, title: str = "") -> go.Figure:
    """One constructor call with plain dicts: plotly validates the figure once (add_scatter and
    add_vline validate and re-lay-out on every call, ~30 ms for this chart)."""
    expiry = f"at {tr.expiry:%Y-%m-%d} expiry" if tr.expiry else "at expiry"
    series = [("Portfolio before", tr.before, "#9e9e9e"), ("Portfolio after", tr.after, "#1f77b4"),
              ("This ticket", tr.ticket, "#ff7f0e")]
    grid = tr.grid.tolist()
    data = []
    for name, curves, color in series:
        data.append(dict(type="scatter", x=grid, y=curves["expiry_pnl"].tolist(), name=f"{name}, {expiry}",
                         line=dict(color=color, width=2)))
        data.append(dict(type="scatter", x=grid, y=curves["t0_pnl"].tolist(), name=f"{name}, today (T+0)",
                         line=dict(color=color, width=1, dash="dot")))
        if "at_pnl" in curves and tr.at is not None:
            data.append(dict(type="scatter", x=grid, y=curves["at_pnl"].tolist(), name=f"{name}, {tr.at:%Y-%m-%d}",
                             line=dict(color=color, width=1, dash="dash")))
    shapes, notes = [], []
    for x, color, dash, width, text in [*((b, "#ff7f0e", "dot", 1, f"BE {b:,.2f}") for b in tr.summary.breakevens),
                                        (tr.spot, "black", "solid", 1, "spot")]:
        shapes.append(dict(type="line", xref="x", yref="paper", x0=x, x1=x, y0=0, y1=1,
                           line=dict(color=color, dash=dash, width=width)))
        notes.append(dict(x=x, xref="x", y=1, yref="paper", text=text, showarrow=False, yanchor="bottom"))
    shapes.append(dict(type="line", xref="paper", yref="y", x0=0, x1=1, y0=0, y1=0,
                       line=dict(color="black", width=0.5)))
    return go.Figure(data=data, layout=dict(
        title=dict(text=title or f"{tr.underlying}: risk before and after the ticket"),
        xaxis=dict(title=dict(text=f"{tr.underlying} price")), yaxis=dict(title=dict(text="P&L ($)")),
        height=420, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h"),
        shapes=shapes, annotations=notes))


def greeks_frame(tr: TicketRisk) -> pd.DataFrame:
    names = ("delta", "gamma", "theta", "vega", "dollar_delta", "beta_delta")
    return pd.DataFrame({
        "Greek": [common.GREEK_LABELS.get(n, n) for n in names],
        "Before": [common.fmt_greek(n, getattr(tr.greeks_before, n)) for n in names],
        "After": [common.fmt_greek(n, getattr(tr.greeks_after, n)) for n in names],
    })


def show(tr: TicketRisk, price: float | None, key: str = "") -> None:
    summary_metrics(tr, price)
    st.plotly_chart(risk_chart(tr), key=key or f"ticket_risk_{tr.underlying}", width="stretch")
    left, right = st.columns([2, 1])
    left.caption("Portfolio Greeks before → after this ticket")
    left.dataframe(greeks_frame(tr), hide_index=True, width="stretch")
    right.metric("Beta-weighted delta after (SPY shares)",
                 common.fmt_greek("beta_delta", tr.greeks_after.beta_delta),
                 delta=common.fmt_greek("beta_delta", tr.greeks_after.beta_delta - tr.greeks_before.beta_delta))


REVIEW_STATES = ("drafted", "checked", "previewed")


def _review_risk(ticket, snapshot, settings):
    try:
        structure, price = order_structure(ticket, snapshot, settings.risk_free_rate)
        return order_ticket_risk(ticket, snapshot, settings, snapshot.built_at), price
    except StructureError as exc:
        return str(exc), None


def review_risk(ticket) -> None:
    """In the review dialog, for a ticket with option legs not yet sent: the portfolio's risk on
    its underlying before → after it, the ticket alone, payoff figures and Greeks before → after
    (computed once per snapshot and ticket version, shared by every session)."""
    if ticket.state.value not in REVIEW_STATES or not any(
            c.is_option for c in [ticket.contract, *(leg.contract for leg in ticket.combo_legs)]):
        return
    services = common.get_services()
    snapshot = services.runtime.snapshot()
    tr, price = common.per_snapshot("review.ticket_risk", snapshot, (ticket.ticket_id, ticket.updated_at),
                                    lambda: _review_risk(ticket, snapshot, services.settings))
    with st.expander("Ticket risk: portfolio before → after", expanded=True):
        if isinstance(tr, str):
            st.info(f"The ticket's risk cannot be drawn yet: {plain(tr)}.")
            return
        show(tr, price, key=f"review_risk_{ticket.ticket_id}")


def roll_button(strategy) -> None:
    """On Positions: send this strategy to the Trade page's roll panel."""
    if not any(True for _ in strategy.con_ids):
        return
    if st.button("Roll…", key=f"roll_{strategy.strategy_id}",
                 help="Draft one combo that closes this strategy and opens it at a later expiry "
                      "and/or other strikes"):
        st.session_state[ROLL_KEY] = strategy.strategy_id
        for key in ("v6_trade_legs", "v6_trade_ticket"):      # the roll replaces any draft there
            st.session_state.pop(key, None)
        try:
            st.switch_page(TRADE_PAGE)
        except st.errors.StreamlitAPIException:
            st.info("Open the Trade page to draft the roll.")
