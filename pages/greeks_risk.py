"""Greeks & risk: Greeks by underlying and by strategy, risk graphs and price x vol scenario grids.

The curves and grids come from `v6core.risk` (vectorised); this page only formats them.
"""

from __future__ import annotations

from pages.components.startup import ensure_app_shell

ensure_app_shell()  # first, before the heavy imports: a first request naming this page goes through app.py

from dataclasses import dataclass  # noqa: E402
from datetime import date, datetime, timedelta  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import plotly.graph_objects as go  # noqa: E402
import streamlit as st  # noqa: E402

from pages.components import common  # noqa: E402
from v6core import risk  # noqa: E402
from v6core.greeks import NEW_YORK  # noqa: E402
from v6core.models import PortfolioSnapshot  # noqa: E402

PORTFOLIO = "Portfolio"

GREEK_COLUMNS = {
    "Delta": st.column_config.NumberColumn(format="%+,.1f", help="Share-equivalents"),
    "Gamma": st.column_config.NumberColumn(format="%+,.2f", help="Shares per $1"),
    "Theta $/day": st.column_config.NumberColumn(format="%+,.2f"),
    "Vega $/vol pt": st.column_config.NumberColumn(format="%+,.2f"),
    "Dollar delta": st.column_config.NumberColumn(format="%+,.0f"),
    "Beta-weighted delta (SPY sh)": st.column_config.NumberColumn(format="%+,.1f"),
    "P&L": st.column_config.NumberColumn(format="%+,.2f", help="Unrealized P&L ($)"),
    "Day P&L": st.column_config.NumberColumn(format="%+,.2f"),
    # text: the Portfolio row has neither, and a null number shows as the word "None"
    "Underlying price": st.column_config.TextColumn(alignment="right"),
    "Beta": st.column_config.TextColumn(alignment="right"),
}


def _greek_values(g) -> tuple[float, ...]:
    return (g.delta, g.gamma, g.theta, g.vega, g.dollar_delta, g.beta_delta)


_GREEK_NAMES = ["Delta", "Gamma", "Theta $/day", "Vega $/vol pt", "Dollar delta", "Beta-weighted delta (SPY sh)"]


def underlyings_frame(snapshot: PortfolioSnapshot) -> pd.DataFrame:
    rows = [(u.symbol, common.fmt_price(u.spot), common.DASH if u.beta is None else f"{u.beta:.2f}",
             *_greek_values(u.greeks), u.unrealized_pnl, u.daily_pnl)
            for u in snapshot.underlyings]
    rows.append(("Portfolio", common.DASH, common.DASH, *_greek_values(snapshot.totals), snapshot.unrealized_pnl,
                 snapshot.daily_pnl))
    return pd.DataFrame.from_records(
        rows, columns=["Underlying", "Underlying price", "Beta", *_GREEK_NAMES, "P&L", "Day P&L"])


def strategies_frame(snapshot: PortfolioSnapshot) -> pd.DataFrame:
    rows = [(s.kind, s.underlying, len(s.con_ids), *_greek_values(s.greeks), s.unrealized_pnl, s.daily_pnl)
            for s in snapshot.strategies]
    frame = pd.DataFrame.from_records(
        rows, columns=["Strategy", "Underlying", "Legs", *_GREEK_NAMES, "P&L", "Day P&L"])
    return frame.sort_values(["Underlying", "Strategy"], kind="stable").reset_index(drop=True)


def greeks_risk(services) -> None:
    snapshot = common.live_snapshot(services.runtime)
    st.title("Greeks & risk")
    if common.no_legs_notice(snapshot):
        return
    st.caption("Position Greeks: delta in shares, gamma in shares per $1, theta in $ per day, "
               "vega in $ per vol point, beta-weighted delta in SPY shares.")
    tables = common.per_snapshot("greeks_risk.tables", snapshot, None,
                                 lambda: (styled(underlyings_frame(snapshot)), styled(strategies_frame(snapshot))))
    st.subheader("By underlying")
    st.dataframe(tables[0], column_config=GREEK_COLUMNS, hide_index=True, key="by_underlying")
    st.subheader("By strategy")
    st.dataframe(tables[1], column_config=GREEK_COLUMNS, hide_index=True, key="by_strategy")
    risk_section(snapshot, services.settings)


def styled(frame: pd.DataFrame):
    return common.frozen_style(common.style_pnl(frame, ("P&L", "Day P&L")))


BY_STRATEGY = "By strategy"
INDEX_CHOICES = ("SPY", "QQQ", "IWM", "DIA")      # reference indexes offered for beta weighting
IV_SHIFT_RANGE = (-20, 20)                         # vol points


@dataclass(frozen=True, slots=True)
class ScopeBook:
    """The legs one risk graph covers, prepared once per snapshot and scope."""

    book: risk.RiskBook
    title: str
    symbol: str | None               # one underlying (its price on the x axis); None: the portfolio
    expiries: tuple                  # live option expiries, nearest first ("at expiry" choices)
    skipped: str


@dataclass(frozen=True, slots=True)
class RiskView:
    """The risk graph, the scenario grid and their notes for one scope of one snapshot."""

    graph: go.Figure | None
    grid: go.Figure | None
    note: str
    skipped: str
    breakevens: tuple[float, ...] = ()


def scope_book(snapshot: PortfolioSnapshot, scope: str, strategy_id: str | None, rate: float) -> ScopeBook:
    spots = {u.symbol: u.spot for u in snapshot.underlyings if u.spot}
    now = snapshot.built_at        # the snapshot's time, not the clock: the result is shared
    legs, title, symbol = snapshot.legs, scope, None
    if scope == BY_STRATEGY:
        strategy = snapshot.strategy(strategy_id or "")
        if strategy is None:
            return ScopeBook(risk.prepare_risk((), now, rate, spots), "No strategy", None, (), "")
        legs = risk.strategy_legs(snapshot.legs, strategy.con_ids, strategy.quantities)
        title, symbol = f"{strategy.kind} · {strategy.underlying}", strategy.underlying
    elif scope != PORTFOLIO:
        legs, symbol = [leg for leg in snapshot.legs if leg.contract.symbol == scope], scope
    book = risk.prepare_risk(legs, now, rate, spots)
    labels = {leg.contract.con_id: leg.contract.label for leg in snapshot.legs}
    skipped = ""
    if book.skipped:
        reasons = "; ".join(f"{labels.get(con_id, 'a leg')}: {why}" for con_id, why in book.skipped[:5])
        skipped = f"{len(book.skipped)} leg(s) left out of the risk figures ({reasons})"
    return ScopeBook(book, title, symbol, tuple(risk.expiries(book)), skipped)


def _ny_today(now: datetime) -> date:
    return now.astimezone(NEW_YORK).date()


def build_risk(snapshot: PortfolioSnapshot, scoped: ScopeBook, rate: float, *, expiry: date | None = None,
               days: int = 0, iv_shift: float = 0.0, reference: str = "SPY",
               betas: dict[str, float] | None = None) -> RiskView:
    """Risk graph and scenario grid of one scope: T+0, at `expiry` (later legs valued at that
    date), at T+`days` when > 0; every option's vol moved by `iv_shift` points; the portfolio
    against `reference`'s % move, each underlying moved by its beta to it."""
    book, now = scoped.book, snapshot.built_at
    if len(book) == 0:
        what = "this strategy" if scoped.symbol and scoped.title != scoped.symbol else scoped.title
        return RiskView(None, None, f"No legs of {what} can be valued (no underlying price or implied vol yet).",
                        scoped.skipped)
    spots = {u.symbol: u.spot for u in snapshot.underlyings if u.spot}
    at = risk.close_of(_ny_today(now) + timedelta(days=days)) if days > 0 else None
    expiry = expiry if expiry in scoped.expiries else (scoped.expiries[0] if scoped.expiries else None)
    kwargs = dict(iv_shift=iv_shift, at=at, expiry=expiry)
    ref_betas = None
    if scoped.symbol is None:
        ref_betas = risk.rebase_betas({**(betas or {}), **{u.symbol: u.beta for u in snapshot.underlyings}},
                                      reference)
        moves = np.linspace(-15.0, 15.0, 61)     # 0.5 % steps
        curves = risk.portfolio_risk_curves(book, moves, now, rate, spots=spots, betas=ref_betas, **kwargs)
        x, x_title, marker = curves["move_pct"], f"{reference} moved by (%), each underlying by its beta × that", 0.0
        hover = "%{x:+.1f}%: %{y:+,.0f} $<extra>%{fullData.name}</extra>"
        be_fmt = "{:+.1f}%"
    else:
        spot = spots.get(scoped.symbol) or float(book.spot[0])
        curves = risk.risk_curves(book, risk.spot_grid(spot, points=121), now, rate, spots=spots, **kwargs)
        x, x_title, marker = curves["spot"], f"{scoped.symbol} price", spot
        hover = "%{x:,.2f}: %{y:+,.0f} $<extra>%{fullData.name}</extra>"
        be_fmt = "{:,.2f}"
    breakevens = risk.crossings(x, curves["expiry_pnl"]) if expiry is not None else ()
    expiry_name = f"At {expiry:%Y-%m-%d} expiry" if expiry is not None else "At expiry"
    at_name = f"T+{days} ({at:%Y-%m-%d})" if at is not None else ""
    # One constructor call with plain dicts: plotly validates once (add_trace/add_vline/update_layout
    # validate and re-lay-out on every call: a fifth of this page's run at 500 legs).
    xs = np.asarray(x).tolist()
    data = [dict(type="scatter", x=xs, y=np.asarray(curves["t0_pnl"]).tolist(), name="T+0 (today)",
                 hovertemplate=hover),
            dict(type="scatter", x=xs, y=np.asarray(curves["expiry_pnl"]).tolist(), name=expiry_name,
                 line=dict(dash="dash"), hovertemplate=hover)]
    if at is not None:
        data.append(dict(type="scatter", x=xs, y=np.asarray(curves["at_pnl"]).tolist(), name=at_name,
                         line=dict(dash="dot"), hovertemplate=hover))
    shapes = [dict(type="line", xref="x", yref="paper", x0=b, x1=b, y0=0, y1=1,
                   line=dict(color="#ff7f0e", dash="dot", width=1)) for b in breakevens]
    notes = [dict(x=b, xref="x", y=1, yref="paper", text=f"BE {be_fmt.format(b)}", showarrow=False,
                  yanchor="bottom") for b in breakevens]
    shapes.append(dict(type="line", xref="paper", yref="y", x0=0, x1=1, y0=0, y1=0,
                       line=dict(color="gray", width=1)))
    shapes.append(dict(type="line", xref="x", yref="paper", x0=marker, x1=marker, y0=0, y1=1,
                       line=dict(color="gray", dash="dot", width=1)))
    shift = f", IV {iv_shift:+g} pts" if iv_shift else ""
    figure = go.Figure(data=data, layout=dict(
        title=dict(text=f"{scoped.title}: P&L ($) vs underlying{shift}"),
        xaxis=dict(title=dict(text=x_title)), yaxis=dict(title=dict(text="P&L ($)")),
        height=420, margin=dict(l=10, r=10, t=50, b=10), shapes=shapes, annotations=notes,
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0)))
    grid = scenario_heatmap(book, scoped.title, now, rate, spots, ref_betas, reference)
    if expiry is None:
        note = "P&L in $ against today's value (stock only)."
    else:
        later = [e for e in scoped.expiries if e > expiry]
        note = (f"P&L in $ against today's value. T+0: today at each leg's implied vol{shift}; at expiry: "
                f"{common.fmt_time(risk.close_of(expiry), seconds=False, exchange=True)}"
                + (f" (legs expiring later, {', '.join(f'{e:%Y-%m-%d}' for e in later)}, valued by "
                   "Black-Scholes at that date)" if later else "") + ".")
        if at is not None:
            note += f" T+{days}: {at:%Y-%m-%d} 16:00 New York, legs expired by then at their payoff."
        if breakevens:
            note += " Breakevens at expiry: " + ", ".join(be_fmt.format(b) for b in breakevens) + "."
    if scoped.symbol is None:
        note += (f" Portfolio scenarios are beta-weighted: each underlying moves by its beta to {reference} "
                 f"× {reference}'s move.")
    return RiskView(figure, grid, note, scoped.skipped, breakevens)


def _reset_if_invalid(key: str, valid) -> None:
    if key in st.session_state and not valid(st.session_state[key]):
        del st.session_state[key]


def risk_section(snapshot: PortfolioSnapshot, settings) -> None:
    rate = settings.risk_free_rate
    st.subheader("Risk graph and scenarios")
    symbols = sorted({leg.contract.symbol for leg in snapshot.legs})
    scope = st.segmented_control("Scope", [PORTFOLIO, *symbols, BY_STRATEGY], default=PORTFOLIO,
                                 key="risk_scope", label_visibility="collapsed") or PORTFOLIO
    strategy_id = None
    if scope == BY_STRATEGY:
        names = {s.strategy_id: f"{s.kind} · {s.underlying} ({len(s.con_ids)} legs)"
                 for s in sorted(snapshot.strategies, key=lambda s: (s.underlying, s.kind))}
        if not names:
            st.info("No strategies are held.")
            return
        _reset_if_invalid("risk_strategy", lambda v: v in names)
        strategy_id = st.selectbox("Strategy", list(names), format_func=names.get, key="risk_strategy")
    scoped = common.per_snapshot("greeks_risk.scope", snapshot, (scope, strategy_id, rate),
                                 lambda: scope_book(snapshot, scope, strategy_id, rate))
    cols = st.columns(4 if scoped.symbol is None else 3)
    expiry = None
    if scoped.expiries:
        today = _ny_today(snapshot.built_at)
        _reset_if_invalid("risk_expiry", lambda v: v in scoped.expiries)
        expiry = cols[0].selectbox(
            "At expiry", scoped.expiries, key="risk_expiry",
            format_func=lambda e: f"{e:%Y-%m-%d} ({(e - today).days} DTE)",
            help="The expiry the dashed curve is valued at; legs expiring later are valued by "
                 "Black-Scholes at that date")
        horizon = max((scoped.expiries[-1] - today).days, 1)
        _reset_if_invalid("risk_days", lambda v: isinstance(v, int) and 0 <= v <= horizon)
        days = cols[1].slider("T+n (days from today)", 0, horizon, 0, key="risk_days",
                              help="Adds a curve valued at that date (16:00 New York); 0 = today only")
        if days:
            cols[1].caption(f"T+{days} = {today + timedelta(days=days):%a %Y-%m-%d}")
    else:
        days = 0
    iv_shift = cols[2 if scoped.expiries else 0].slider(
        "IV shift (vol points)", *IV_SHIFT_RANGE, 0, key="risk_iv_shift",
        help="Every option's implied vol moved by this many points on the curves")
    reference = "SPY"
    if scoped.symbol is None:
        choices = [s for s in INDEX_CHOICES if s == "SPY" or s in settings.betas]
        _reset_if_invalid("risk_reference", lambda v: v in choices)
        reference = cols[-1].selectbox("Reference index", choices, key="risk_reference",
                                       help="The index the portfolio scenarios move; each underlying "
                                            "moves by its beta to it")
    view = common.per_snapshot(
        "greeks_risk.risk", snapshot, (scope, strategy_id, rate, expiry, days, float(iv_shift), reference),
        lambda: build_risk(snapshot, scoped, rate, expiry=expiry, days=days, iv_shift=float(iv_shift),
                           reference=reference, betas=dict(settings.betas)))
    if view.graph is None:
        st.info(view.note)
        if view.skipped:
            st.warning(common.plain(view.skipped))
        return
    left, right = st.columns(2)
    with left:
        st.plotly_chart(view.graph, key="risk_graph")
    with right:
        st.plotly_chart(view.grid, key="scenario_grid")
    st.caption(view.note)
    if view.skipped:
        st.warning(common.plain(view.skipped))


def scenario_heatmap(book, title: str, now, rate: float, spots, betas=None, reference: str = "SPY") -> go.Figure:
    prices, vols = risk.PRICE_SHOCKS_PCT, risk.VOL_SHOCKS_PTS
    matrix = risk.scenario_matrix(book, prices, vols, now, rate, spots=spots, betas=betas)
    text = [[common.fmt_number(v, decimals=0) for v in row] for row in matrix]
    limit = float(np.nanmax(np.abs(matrix))) or 1.0
    y_title = f"{reference} move (beta-weighted)" if betas is not None else "Price shock"
    return go.Figure(data=[dict(
        type="heatmap", z=np.asarray(matrix).tolist(), x=[f"{v:+d}" for v in vols], y=[f"{p:+d}%" for p in prices],
        text=text, texttemplate="%{text}", colorscale="RdYlGn", zmid=0, zmin=-limit, zmax=limit,
        hovertemplate="price %{y}, vol %{x} pts: %{text} $<extra></extra>", colorbar=dict(title=dict(text="$")))],
        layout=dict(title=dict(text=f"{title}: T+0 P&L ($), price × implied vol"),
                    xaxis=dict(title=dict(text="Vol shock (points)"), type="category"),
                    yaxis=dict(title=dict(text=y_title), type="category"),
                    height=420, margin=dict(l=10, r=10, t=50, b=10)))


if __name__ == "__main__":  # run as a page by st.navigation; importable for its helpers
    common.render_page(greeks_risk)
