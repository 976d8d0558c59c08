"""Signals: the latest signal per underlying, its charts and inputs, history, and "Create ticket".

Analyst text (LLM or rules) is rendered with st.text / st.code / dataframes only: never as
markdown or HTML. A signal becomes an order only through an order ticket that a human reviews and
confirms on the Orders page; this page only drafts the ticket.
"""

from __future__ import annotations

from pages.components.startup import ensure_app_shell

ensure_app_shell()  # first, before the heavy imports: a first request naming this page goes through app.py

import json  # noqa: E402

import streamlit as st  # noqa: E402
from streamlit.errors import StreamlitAPIException  # noqa: E402

from pages.components import common  # noqa: E402
from pages.components.signal_structure import vertical_controls  # noqa: E402
from v6core.signals.schema import SignalState  # noqa: E402
from v6core.signals.service import live_price, plan_rows  # noqa: E402

TICKET_KEY = "ticket_id"               # the ticket the Orders page opens
SYMBOL_KEY = "v6_signals_symbol"
MESSAGE_KEY = "v6_signals_message"
QUOTES_KEY = "v6_signals_quotes"       # (symbols asked for, the runtime's Future of their contracts)
QUOTE_OWNER = "signals-page:"          # + session id: the on-demand quotes this page holds


def quote_owner() -> str:
    return QUOTE_OWNER + common.session_id()


def _quote_symbols(services, symbols: list[str], snapshot) -> None:
    """Live quotes for every symbol on the page the runtime does not quote already (a signal's
    symbol that is not held or on the watchlist), held for this session until it leaves the page."""
    runtime = services.runtime
    if not hasattr(runtime, "ensure_quotes"):
        return
    missing = tuple(sorted(s for s in symbols if live_price(snapshot, s) is None))
    asked, _ = st.session_state.get(QUOTES_KEY, ((), None))
    if not missing or set(missing) <= set(asked):
        return
    try:
        future = runtime.ensure_quotes(missing, quote_owner())
    except Exception as exc:  # not connected: the page shows the last close instead
        st.caption(f"No live quote for {', '.join(missing)}: {common.plain(exc)}")
        return
    st.session_state[QUOTES_KEY] = (missing, future)


def _live(snapshot, symbol: str) -> float | None:
    """The symbol's live price: its underlying's, else an on-demand quote's mid (else last)."""
    price = live_price(snapshot, symbol)
    if price is not None or snapshot is None:
        return price
    asked, future = st.session_state.get(QUOTES_KEY, ((), None))
    if future is None or not future.done() or future.exception() is not None:
        return None
    for contract in future.result():
        if contract.symbol == symbol and contract.sec_type == "STK":
            quote = snapshot.quote(contract.con_id)
            if quote is None:
                return None
            if quote.bid and quote.ask and 0 < quote.bid <= quote.ask:
                return (quote.bid + quote.ask) / 2
            return quote.last if quote.last and quote.last > 0 else None
    return None


def _summary_rows(latest, snapshot) -> list[dict]:
    rows = []
    for symbol, record in latest.items():
        rows.append({
            "Symbol": symbol, "State": record.state.value,
            "Actionable": "actionable" if record.actionable else "not actionable",
            "Why not": record.not_actionable_reason.removeprefix("not actionable: "),
            "Action": record.action.value if record.action else common.DASH,
            "Confidence": record.confidence.value if record.confidence else common.DASH,
            "Score": record.confidence_score,
            "Live": _live(snapshot, symbol), "Entry": record.entry, "Stop": record.stop,
            "Target": record.target, "R/R": record.risk_reward, "Analyst": record.analyst,
            "At (UTC)": record.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            "Flags": len(record.flags),
        })
    return rows


def _analyse_controls(services, symbols: list[str], symbol: str) -> None:
    left, right = st.columns(2)
    if left.button(f"Analyse now: {symbol}", key="v6_analyse_one", type="primary"):
        with st.spinner(f"Analysing {symbol}…"):
            record = services.signals.analyse(symbol)
        st.session_state[MESSAGE_KEY] = f"{symbol}: {record.status.value} ({record.analyst})"
    if right.button("Analyse all", key="v6_analyse_all"):
        bar = st.progress(0.0, text="Starting…")

        def progress(done: int, total: int, current: str, record) -> None:
            label = f"{done}/{total} · {current}" + ("" if record is None else f" {record.status.value}")
            bar.progress(done / total if total else 1.0, text=common.plain(label))

        records = services.signals.analyse_all(symbols, progress)
        st.session_state[MESSAGE_KEY] = f"Analysed {len(records)} symbols"
    if st.session_state.get(MESSAGE_KEY):
        st.caption(common.plain(st.session_state[MESSAGE_KEY]))


def _open_ticket(ticket, what: str) -> None:
    """Take the operator to the drafted ticket's review on the Orders page."""
    st.session_state[TICKET_KEY] = ticket.ticket_id
    try:
        st.switch_page("pages/orders.py")
    except StreamlitAPIException:  # the page runs outside the app's navigation
        st.success(f"{what} {common.plain(ticket.ticket_id)} drafted: review and confirm it on "
                   "the Orders page.")


def _create_ticket(services, record, live: float | None = None) -> None:
    if not record.actionable:
        st.caption(f"Not actionable, no ticket: {common.plain(record.not_actionable_reason)}.")
        return
    desk = services.orders
    available = getattr(desk, "trading_available", True)
    bracket = st.checkbox(
        "Attach a bracket: the signal's target as a take-profit order and its stop as a stop order",
        key=f"v6_bracket_{record.record_id}",
        help="Placed with the entry under the same confirmation; when one exit fills the other is "
             "cancelled; cancelling the ticket cancels them.")
    if st.button("Create ticket", key=f"v6_ticket_{record.record_id}", disabled=not available,
                 help="Drafts an order ticket at the suggested entry; you review and confirm it on Orders."):
        try:
            ticket = desk.draft_from_signal(record, common.session_id(), bracket=bracket)
        except Exception as exc:  # the desk's refusals are for the operator to read
            st.error("No ticket was drafted:")
            st.text(str(exc))
            return
        _open_ticket(ticket, "Ticket")
    if not available:
        st.caption("Trading is unavailable (audit log not open): tickets cannot be drafted.")
        return
    ticket = vertical_controls(services, record, live)
    if ticket is not None:
        _open_ticket(ticket, "Vertical ticket")


def _state_banner(record) -> None:
    """What the record is, first and in its own colour: the reason before any figure."""
    analyst = common.plain(record.analyst)
    if record.state is SignalState.SUSPECT:
        whose = (f"the {analyst} answer stepped outside its contract" if record.is_llm else
                 f"the LLM answer of this run stepped outside its contract; this {analyst} "
                 "fallback is shown for review only")
        st.error(f"SUSPECT · not actionable: {whose} (order structure, unknown fields, tool call "
                 "or order text).", icon="⛔")
        for flag in record.suspect_flags:
            st.text(flag)
    elif record.state is SignalState.REJECTED:
        st.warning(f"REJECTED · not a signal, not actionable ({analyst})", icon="🚫")
        st.text(record.reject_reason)
    elif record.actionable:
        st.success(f"ACCEPTED · actionable: {record.action.value} {record.confidence.value} "
                   f"({record.confidence_score:g}) · {analyst}", icon="✅")
    else:
        st.info(f"ACCEPTED · {common.plain(record.not_actionable_reason)} · {analyst}")


def _signal_detail(services, record, snapshot) -> None:
    live = _live(snapshot, record.symbol)
    _state_banner(record)
    if record.state is SignalState.ACCEPTED:
        cols = st.columns(4)
        cols[0].metric("Action", record.action.value)
        cols[1].metric("Confidence", f"{record.confidence.value} ({record.confidence_score:g})")
        cols[2].metric("Risk/reward", common.DASH if record.risk_reward is None else f"{record.risk_reward:.2f}")
        cols[3].metric("Live price", common.DASH if live is None else f"{live:,.2f}")
    elif record.state is SignalState.SUSPECT:
        # What it proposed, small and labelled: review material, not a signal to act on.
        st.caption("What the suspect answer proposed (for review only, not actionable):")
        st.text(f"{record.action.value} {record.confidence.value} ({record.confidence_score:g})")
    if record.accepted:
        st.caption(f"Analyst: {common.plain(record.analyst)} · trend {common.plain(record.trend)} · "
                   f"{common.plain(', '.join(record.timeframes))} · checked against "
                   f"{common.DASH if record.reference_price is None else f'{record.reference_price:,.2f}'} · "
                   f"{record.created_at:%Y-%m-%d %H:%M:%S} UTC")
        rows = plan_rows(record, live)
        if rows:
            common.show_table(rows, hide_index=True)
    for flag in record.flags:
        if flag in record.suspect_flags:
            continue                   # already shown, first, in the banner
        st.warning("Flag (no action was taken on it):")
        st.text(flag)
    if record.accepted:
        st.subheader("Reasoning" if not record.suspect else "Reasoning (suspect answer)")
        st.text(record.reasoning)
        if record.key_factors:
            st.dataframe({"Key factors": list(record.key_factors)}, hide_index=True)
    if record.raw_answer:
        with st.expander("Raw analyst answer"):
            st.code(record.raw_answer, language=None)
    _create_ticket(services, record, live)


def _charts(services, symbol: str) -> None:
    figures = services.signals.charts(symbol)
    if not figures:
        if not st.button(f"Load charts: {symbol}", key="v6_load_charts",
                         help="Fetches the bars and draws the charts without analysing."):
            st.caption("No analysis of this symbol since the server started: load its charts or analyse it.")
            return
        with st.spinner(f"Loading {symbol} bars…"):
            try:
                figures = services.signals.charts(symbol, fetch=True)
            except Exception as exc:  # missing bars are the operator's information, not a crash
                st.error("Could not load the bars:")
                st.text(str(exc))
                return
    for tab, (timeframe, figure) in zip(st.tabs([t.title() for t in figures]), figures.items()):
        with tab:
            st.plotly_chart(figure, key=f"v6_chart_{symbol}_{timeframe}")


def _analyst_input(services, symbol: str) -> None:
    with st.expander("What the analyst was given"):
        payload = services.signals.input_payload(symbol)
        if payload is None:
            st.caption("No analysis of this symbol in this server session yet.")
            return
        st.code(json.dumps(payload, indent=2, default=str), language="json")
        last = services.signals.last_analysis(symbol)
        if last is not None and last.analyst.startswith("llm:"):
            st.caption("Messages sent to the LLM")
            st.code("\n\n".join(f"[{m['role']}]\n{m['content']}" for m in last.messages), language=None)


def body(services) -> None:
    signals = services.signals
    st.title("Signals")
    st.caption(f"Analyst: {common.plain(signals.analyst_name)}. Signals are advice: an order needs a "
               "ticket you review and confirm on the Orders page.")
    if signals.llm_error:
        st.warning(common.plain(signals.llm_error))
    symbols = list(services.settings.watchlist)
    snapshot = services.runtime.snapshot()
    latest = signals.latest()
    for symbol in latest:
        if symbol not in symbols:
            symbols.append(symbol)
    if not symbols:
        st.info("The watchlist is empty (setting V6_WATCHLIST).")
        return

    _quote_symbols(services, symbols, snapshot)
    symbol = st.selectbox("Underlying", symbols, key=SYMBOL_KEY)
    _analyse_controls(services, symbols, symbol)
    latest = signals.latest()

    st.subheader("Latest signal per underlying")
    if latest:
        common.show_table(_summary_rows(latest, snapshot), hide_index=True)
    else:
        st.info("No signals yet: press Analyse.")

    st.subheader(symbol)
    record = latest.get(symbol)
    if record is None:
        st.info(f"No signal for {symbol} yet.")
    else:
        _signal_detail(services, record, snapshot)
        if not record.is_llm and any(f.startswith("fallback:") for f in record.flags):
            for other in signals.run_records(record.run_id):
                if other.record_id != record.record_id and not other.accepted:
                    st.caption(f"The LLM answer of this run was rejected ({other.attempts} attempt(s)):")
                    st.text(other.reject_reason)
    _charts(services, symbol)
    _analyst_input(services, symbol)

    st.subheader(f"History of {symbol}")
    history = signals.history_table(symbol)
    if history.height:
        common.show_table(history, hide_index=True)
    else:
        st.caption("No stored signals for this symbol.")


common.render_page(body, refresh=False)
