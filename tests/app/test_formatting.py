"""Formatting on the live pages (issue #12, defect 9): no literal "None", prices to the tick,
ratios to two places, Greek names as words, contracts by label, the underlying's price, leg
columns in the order a trader reads them, times in the operator's zone."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timezone

import pandas as pd
import pytest

from tests.app.leg_tables import column, leg_tables, strategy_labels

from pages.components import common
from tests.app.conftest import open_page, shown_metric
from tests.app.synthetic import SPOTS, synthetic_snapshot
from v6core.config import SettingsError, load_settings
from v6core.models import PositionGreeks


def _with_gaps(snapshot):
    """Legs as a gateway leaves them early on: no mark, no Greeks, no quote time, no P&L."""
    legs = list(snapshot.legs)
    for i in (0, 5, 9):
        legs[i] = replace(legs[i], mark=None, market_value=None, unrealized_pnl=None, daily_pnl=None,
                          greeks=None, position_greeks=PositionGreeks(), quote_time=None)
    return replace(snapshot, legs=tuple(legs))


def _shown_text(at) -> list[str]:
    texts = [e.value for kind in ("markdown", "caption", "info", "warning", "error", "success", "title",
                                   "subheader") for e in getattr(at, kind)]
    texts += [e.label for e in at.expander] + strategy_labels(at)
    texts += [f"{m.label} {shown_metric(m.value)}" for m in at.metric]
    for frame in at.dataframe:
        value = frame.value
        if isinstance(value, pd.DataFrame):
            nulls = value.isna()
            assert not nulls.any().any(), f"null cells (drawn as None): {value[nulls.any(axis=1)]}"
            texts += [str(v) for col in value.columns if value[col].dtype == object for v in value[col]]
    return texts


@pytest.mark.parametrize("page", ["overview", "positions", "greeks_risk"])
def test_no_literal_none_and_greek_names_as_words(stand_in, page):
    stand_in.runtime.current = _with_gaps(synthetic_snapshot(48))
    at = open_page(page)
    assert not at.exception
    shown = _shown_text(at)
    assert shown
    for text in shown:
        assert not re.search(r"\bNone\b|\bnan\b", text), text
        assert not re.search("[ΔΘΓ]", text), text          # Greek names as words, not symbols


def test_positions_lead_with_the_columns_a_trader_reads_and_show_the_underlying_price(stand_in):
    at = open_page("positions")
    legs = leg_tables(at)[0]
    assert list(legs[0])[:7] == ["Contract", "Qty", "Underlying price", "Mark", "P&L", "Day P&L", "Delta"]
    assert "con_id" not in legs[0] and "strategy_id" not in legs[0]
    symbol = legs[0]["Contract"][0].split()[0]
    assert legs[0]["Underlying price"][0] == f"{SPOTS[symbol]:,.2f}"
    # every contract by its label (never a bare number)
    assert all(re.match(r"^[A-Z]+( \d{4}-\d{2}-\d{2} [\d.]+[CP])?$", c) for c in column(legs, "Contract"))
    # the All legs view: one table with every column's number
    at.button_group(key="positions_view").set_value("All legs").run()
    assert at.dataframe[0].value["Underlying price"].iloc[0] in SPOTS.values()


def test_greeks_risk_names_the_underlying_price_and_the_beta_weighted_delta(stand_in):
    at = open_page("greeks_risk")
    by_underlying = at.dataframe[0].value
    assert "Underlying price" in by_underlying.columns and "Spot" not in by_underlying.columns
    assert "Beta-weighted delta (SPY sh)" in by_underlying.columns


def test_prices_to_the_tick_and_ratios_to_two_places():
    assert common.fmt_price(412.3) == "412.30"
    assert common.fmt_price(0.05) == "0.05"
    assert common.fmt_price(1234.5) == "1,234.50"
    assert common.fmt_price(0.125, tick=0.005) == "0.125"
    assert common.fmt_price(None) == common.DASH
    assert common.fmt_ratio(1.23456) == "1.23"
    assert common.text(None) == common.DASH and common.text(float("nan")) == common.DASH


def test_times_in_the_operator_zone_with_the_exchange_clock():
    moment = datetime(2026, 12, 2, 15, 0, 5, tzinfo=timezone.utc)
    try:
        common.set_operator_zone("Europe/Berlin")
        assert common.fmt_time(moment) == "2026-12-02 16:00:05 CET"
        assert common.fmt_time(moment, seconds=False, exchange=True) == "2026-12-02 16:00 CET (10:00 ET)"
        common.set_operator_zone("")              # default: the machine's zone
        assert common.fmt_time(moment).startswith(moment.astimezone().strftime("%Y-%m-%d %H:%M:%S"))
    finally:
        common.set_operator_zone("")
    assert load_settings(time_zone="America/Chicago").time_zone == "America/Chicago"
    with pytest.raises((SettingsError, ValueError)):
        load_settings(time_zone="Mars/Olympus")


def test_a_frozen_styler_draws_exactly_what_streamlit_draws_for_a_fresh_one_every_time():
    """frozen_style memoises Streamlit's Styler marshalling (CSS and display values) for a Styler
    shared by sessions: each draw must carry the same bytes as Streamlit's own, unmemoised path."""
    from streamlit.elements.lib.pandas_styler_utils import marshall_styler
    from streamlit.proto.ArrowData_pb2 import ArrowData

    frame = pd.DataFrame({"Contract": ["SPY 500C", "QQQ 400P", "AAPL"], "Qty": [2, -1, 100],
                          "P&L": [12.5, -3.25, 0.001], "Day P&L": [None, 1.0, -2.0]})

    def drawn(style) -> ArrowData:
        proto = ArrowData()
        marshall_styler(proto, style, "fixed-uuid")
        return proto

    fresh = drawn(common.style_pnl(frame.copy(), ("P&L", "Day P&L")).set_uuid("u1"))
    frozen = common.frozen_style(common.style_pnl(frame.copy(), ("P&L", "Day P&L")).set_uuid("u1"))
    other = common.style_pnl(frame.assign(**{"P&L": [-1.0, 2.0, 3.0]}), ("P&L",)).set_uuid("u1")
    for _ in range(3):
        again = drawn(frozen)
        assert again.styler.styles == fresh.styler.styles and "color" in again.styler.styles
        assert again.styler.display_values == fresh.styler.display_values
    # an unfrozen Styler drawn after is not served a frozen one's memo
    assert drawn(other).styler.styles != fresh.styler.styles


@pytest.mark.parametrize("page", ["positions", "greeks_risk"])
def test_a_frozen_page_table_marshals_as_pandas_and_streamlit_would(page, monkeypatch):
    """frozen_style translates a plain Styler itself (pandas renders HTML Streamlit never reads):
    the page's real tables (500 synthetic legs: stock legs with no DTE or IV shown as text, red
    and green P&L, greyed stale quotes) marshal to the same CSS and display values as pandas'
    own translation."""
    from streamlit.elements.lib.pandas_styler_utils import marshall_styler
    from streamlit.proto.ArrowData_pb2 import ArrowData

    import pages.greeks_risk as greeks_page
    import pages.positions as positions_page
    from tests.app.synthetic import synthetic_snapshot

    snapshot = synthetic_snapshot(500)

    def table():
        if page == "positions":
            frame = positions_page.filtered(positions_page.build_book(snapshot), (), ())
            return positions_page.styled(frame, ("Strategy", *positions_page.SHOWN_COLUMNS))[0]
        return greeks_page.styled(greeks_page.strategies_frame(snapshot))

    def drawn(style) -> ArrowData:
        proto = ArrowData()
        marshall_styler(proto, style.set_uuid("u1"), "fixed-uuid")
        return proto

    fast = drawn(table())
    with monkeypatch.context() as m:
        m.setattr(common, "frozen_style", lambda style: style)      # pandas' own translation
        slow = drawn(table())
    assert fast.styler.styles == slow.styler.styles and "color" in fast.styler.styles
    assert fast.styler.display_values == slow.styler.display_values
