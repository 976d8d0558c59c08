"""Pages against hand-built snapshots: exact figures, connecting/down states, gate, error screens.

The same pages run against the real runtime and simulator in test_pages_sim.py.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from streamlit.testing.v1 import AppTest

from pages.components import common
from tests.app.conftest import APP, open_page, unescape, shown_metric
from tests.app.leg_tables import column, leg_tables, strategy_labels
from tests.app.synthetic import NOW, synthetic_snapshot, with_state
from v6core.models import AccountValues, ConnState, PortfolioSnapshot

# ---------------------------------------------------------------- formatting


@pytest.mark.parametrize("value, signed, expected", [
    (1234.567, False, "$1,234.57"),
    (-1234.567, True, "-$1,234.57"),
    (1234.5, True, "+$1,234.50"),
    (-0.001, True, "$0.00"),
    (None, True, "—"),
    (float("nan"), False, "—"),
])
def test_fmt_money(value, signed, expected):
    assert common.fmt_money(value, signed=signed) == expected


def test_greeks_use_signed_thousands_and_their_precision():
    assert common.fmt_greek("delta", 1234.56) == "+1,234.6"
    assert common.fmt_greek("gamma", -0.004) == "0.00"
    assert common.fmt_greek("theta", -81.234) == "-81.23"
    assert common.fmt_greek("dollar_delta", 123456.7) == "+123,457"


@pytest.mark.parametrize("seconds, expected", [(3.2, "3 s"), (125, "2 min"), (3900, "1 h 5 min"),
                                               (200000, "2 d"), (-1, "0 s"), (None, "—")])
def test_fmt_age(seconds, expected):
    assert common.fmt_age(seconds) == expected


def test_plain_makes_markdown_inert():
    assert common.plain("[x](http://evil) *b* $1") == r"\[x\]\(http\:\/\/evil\) \*b\* \$1".replace(r"\/", "/")


def test_connection_line_between_and_during_attempts():
    snap = synthetic_snapshot(4)
    trying = with_state(snap, state=ConnState.CONNECTING, attempts=2, last_error="refused").connection
    assert common.connection_line(trying, now=NOW) == "reconnecting (attempt 2)"
    first = with_state(snap, state=ConnState.CONNECTING, attempts=1).connection
    assert common.connection_line(first, now=NOW) == "connecting"
    assert common.connection_line(snap.connection, now=NOW) == "connected for 5 min"


def test_connection_line_counts_down_to_next_retry():
    snap = with_state(synthetic_snapshot(4), state=ConnState.DISCONNECTED, attempts=3,
                      next_retry_at=NOW + timedelta(seconds=7))
    assert common.connection_line(snap.connection, now=NOW) == "reconnecting, next try in 7 s (attempt 3)"


# ---------------------------------------------------------------- overview


def _metrics(at) -> dict[str, str]:
    return {m.label: shown_metric(m.value) for m in at.metric}


def test_overview_shows_account_and_portfolio_greeks(stand_in):
    snap = stand_in.runtime.snapshot()
    at = open_page("overview")
    assert not at.exception
    shown = _metrics(at)
    assert shown["Net liquidation"] == "$1,234,567.89"
    assert shown["Daily P&L"] == "-$321.50"
    raw = {m.label: m.value for m in at.metric}
    assert raw["Daily P&L"] == r":red[-\$321.50]"                       # a loss in red
    assert raw["Net liquidation"] == r"$1,234,567.89"                  # not a P&L: plain
    assert shown["Buying power"] == "$2,500,000.00"
    assert shown["Margin use"] == "10.0%"          # 123,456 / 1,234,567.89
    assert shown["Unrealized P&L"] == common.fmt_money(snap.unrealized_pnl, signed=True)
    assert shown["Delta (shares)"] == common.fmt_greek("delta", snap.totals.delta)
    assert shown["Theta ($/day)"] == common.fmt_greek("theta", snap.totals.theta)
    assert shown["Vega ($ per vol pt)"] == common.fmt_greek("vega", snap.totals.vega)
    assert shown[common.GREEK_LABELS["beta_delta"]] == common.fmt_greek("beta_delta", snap.totals.beta_delta)
    assert snap.totals.delta != 0  # the comparison above is not trivially "0.0"


def test_overview_shows_runtime_alerts_and_names_the_legs_behind_them(stand_in):
    snap = stand_in.runtime.snapshot()
    at = open_page("overview")
    assert [unescape(w.value) for w in at.warning] == ["Delta limit breached: 512 > 500"]
    attention = at.dataframe[0].value.set_index("Leg")["Why"]
    stale = {leg.contract.label for leg in snap.legs if leg.stale}
    computed = {leg.contract.label for leg in snap.legs if leg.greeks.source.value == "COMPUTED"}
    assert stale and computed
    assert set(attention.index) == stale | computed
    assert all("stale quote" in attention[label] for label in stale)
    assert all("computed" in attention[label] for label in computed)


def test_overview_without_alerts_says_so(stand_in):
    stand_in.runtime.current = replace(synthetic_snapshot(4), alerts=())
    stand_in.runtime.current = replace(stand_in.runtime.current, legs=tuple(
        replace(leg, stale=False, greeks=replace(leg.greeks, source=leg.greeks.source.IB))
        for leg in stand_in.runtime.current.legs))
    at = open_page("overview")
    assert [s.value for s in at.success] == ["No alerts."] and not at.warning and not at.dataframe


def test_overview_before_any_data_says_connecting(stand_in):
    stand_in.runtime.current = PortfolioSnapshot(
        seq=0, built_at=NOW, connection=synthetic_snapshot(0).connection.__class__(state=ConnState.CONNECTING),
        account=AccountValues())
    at = open_page("overview")
    assert not at.exception
    assert set(_metrics(at).values()) == {"—"}
    assert any("Connecting to the gateway" in unescape(i.value) for i in at.info)


def test_sidebar_shows_down_with_last_error_as_text(stand_in):
    stand_in.runtime.current = with_state(
        stand_in.runtime.current, state=ConnState.DISCONNECTED,
        last_error="Connect call failed [Errno 111] *refused*")
    at = open_page("overview")
    sidebar_errors = [unescape(e.value) for e in at.sidebar.error]
    assert sidebar_errors == ["Last error: Connect call failed [Errno 111] *refused*"]
    assert r"\*refused\*" in at.sidebar.error[0].value   # inert markdown, shown literally


def test_pause_refresh_is_remembered_across_pages(stand_in):
    at = open_page("overview")
    at.sidebar.toggle(key=common.PAUSE_KEY).set_value(True).run()
    at.switch_page("pages/positions.py").run()
    assert at.sidebar.toggle(key=common.PAUSE_KEY).value is True
    assert at.session_state[common.PAUSE_KEY] is True


# ---------------------------------------------------------------- positions


def test_positions_groups_legs_by_strategy(stand_in):
    snap = stand_in.runtime.snapshot()
    at = open_page("positions")
    assert not at.exception
    assert len(strategy_labels(at)) == len(snap.strategies) == 12
    tables = leg_tables(at)
    assert len(tables) == 12
    first = tables[0]
    strategy = snap.strategies[0]
    assert sorted(column(first, "Contract")) == sorted(
        leg.contract.label for leg in snap.legs if leg.strategy_id == strategy.strategy_id)
    for row in first:
        leg = next(leg for leg in snap.legs if leg.contract.label == row["Contract"][0])
        assert row["Qty"][0] == f"{leg.quantity:+,.0f}"
        assert row["Delta"][0] == f"{leg.position_greeks.delta:+,.1f}"
        assert row["P&L"][0] == f"{leg.unrealized_pnl:+,.2f}"
        # P&L red/green by its sign
        assert ("gain" in row["P&L"][1]) == (leg.unrealized_pnl > 0)
        assert ("loss" in row["P&L"][1]) == (leg.unrealized_pnl < 0)
        assert row["Greeks"][0] == leg.greeks.source.value
    shown = [text for table in tables for row in table for text, _ in row.values()]
    assert "None" not in shown and "nan" not in shown


def test_positions_filter_by_underlying_and_all_legs_view(stand_in):
    at = open_page("positions")
    at.multiselect(key="positions_underlying").set_value(["SPY"]).run()
    labels = strategy_labels(at)
    assert all(" · SPY · " in label for label in labels) and len(labels) == 3
    at.button_group(key="positions_view").set_value("All legs").run()
    frame = at.dataframe[0].value
    assert set(frame["Contract"].str.split().str[0]) == {"SPY"} and len(frame) == 12
    # Sorted: underlying, expiry, strike
    assert list(frame["Contract"]) == sorted(frame["Contract"], key=lambda c: (c.split()[1], float(c.split()[2][:-1])))


def test_legs_outside_any_strategy_are_listed_last_as_ungrouped(stand_in):
    stand_in.runtime.current = synthetic_snapshot(50)      # 12 condors + 2 stock positions
    at = open_page("positions")
    assert len(strategy_labels(at)) == 12                   # a page of strategies; the rest on the next
    at.number_input(key="positions_page").set_value(2).run()
    assert strategy_labels(at) == ["Ungrouped · 2 leg(s)"]
    stock = leg_tables(at)[-1]
    assert column(stock, "Contract") == ["QQQ", "SPY"]
    # a stock leg has no expiry and no IV: a dash, never "None"; its delta is one per share
    assert column(stock, "DTE") == column(stock, "IV %") == ["—", "—"]
    assert column(stock, "Delta/contract") == ["+1.00", "+1.00"]
    # the All legs view too (a null number would show as the word "None")
    at.button_group(key="positions_view").set_value("All legs").run()
    frame = at.dataframe[0].value
    assert frame["DTE"].notna().all() and frame["IV %"].notna().all()
    assert list(frame.loc[frame["Contract"].isin(["QQQ", "SPY"]), "DTE"]) == ["—", "—"]


def test_positions_page_many_strategies_are_paged(stand_in):
    stand_in.runtime.current = synthetic_snapshot(500)
    at = open_page("positions")
    assert not at.exception
    assert len(strategy_labels(at)) == 12
    at.number_input(key="positions_page").set_value(11).run()
    assert len(strategy_labels(at)) == 125 - 10 * 12
    # each page's tables are its own strategies' legs
    assert len(leg_tables(at)) == 5


def test_unexpected_error_is_one_line_not_a_traceback(stand_in):
    stand_in.runtime.current = replace(stand_in.runtime.current, legs=(None,))  # breaks the page body
    at = open_page("positions")
    assert not at.exception
    assert [e.value for e in at.main.error] == [
        "This page hit an unexpected error (AttributeError); details are in the server log."]


def test_broken_runtime_gives_short_errors_in_sidebar_and_page(stand_in):
    class Broken:
        sim = None

        def snapshot(self):
            raise RuntimeError("state store gone")

    stand_in.runtime = Broken()
    at = open_page("overview")
    assert not at.exception
    assert [e.value for e in at.sidebar.error] == ["Status unavailable (RuntimeError); details are in the server log."]
    assert [e.value for e in at.main.error] == [
        "This page hit an unexpected error (RuntimeError); details are in the server log."]


# ---------------------------------------------------------------- Greeks & risk


def test_greeks_by_underlying_and_strategy(stand_in):
    snap = stand_in.runtime.snapshot()
    at = open_page("greeks_risk")
    assert not at.exception
    by_underlying = at.dataframe[0].value.set_index("Underlying")
    for u in snap.underlyings:
        assert by_underlying.loc[u.symbol, "Delta"] == pytest.approx(u.greeks.delta)
        assert by_underlying.loc[u.symbol, "Vega $/vol pt"] == pytest.approx(u.greeks.vega)
    assert by_underlying.loc["Portfolio", "Theta $/day"] == pytest.approx(snap.totals.theta)
    # the Portfolio row has no price or beta: a dash, never "None"
    assert by_underlying.loc["Portfolio", "Underlying price"] == by_underlying.loc["Portfolio", "Beta"] == "—"
    assert by_underlying.loc[snap.underlyings[0].symbol, "Underlying price"] == common.fmt_price(snap.underlyings[0].spot)
    assert len(at.dataframe[1].value) == len(snap.strategies)


# ---------------------------------------------------------------- gate and start errors


def test_password_gate(stand_in, monkeypatch):
    stand_in.settings = stand_in.settings.model_copy(update={"password": type(stand_in.settings.password)("s3cret")})
    at = open_page("overview")
    assert not at.metric and len(at.text_input) == 1
    at.text_input[0].input("wrong")
    at.button[0].click().run()
    assert [e.value for e in at.error] == ["Wrong password."] and not at.metric
    at.text_input[0].input("s3cret")
    at.button[0].click().run()
    assert not at.exception
    assert _metrics(at)["Net liquidation"] == "$1,234,567.89"


@pytest.mark.fresh_server
def test_first_request_naming_a_page_still_meets_the_gate(stand_in):
    """On a fresh server Streamlit may run pages/positions.py on its own; the page reruns via app.py."""
    at = open_page("overview")      # registers the pages (no password yet)
    stand_in.settings = stand_in.settings.model_copy(update={"password": type(stand_in.settings.password)("s3cret")})
    at.switch_page("pages/positions.py").run()
    assert not at.exception
    assert len(at.text_input) == 1 and not at.dataframe and not at.expander and not strategy_labels(at)


def test_bad_setting_shows_message_without_traceback(stand_in, monkeypatch):
    common.get_services.clear()
    monkeypatch.setenv("V6_IB_PORT", "not-a-port")
    at = open_page("overview")
    assert not at.exception
    assert len(at.error) == 1 and "V6_IB_PORT" in unescape(at.error[0].value)
    assert not at.metric


def test_every_file_under_pages_is_a_navigation_page_and_no_component_is(stand_in):
    """Issue #12 defect 6: the navigation offers exactly the page files (no placeholder fallback),
    and the shared modules live in pages/components/, where Streamlit never lists them."""
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not at.exception
    registered = {info["url_pathname"]: info for info in at._registered_pages.values()}
    assert {info["page_name"] for info in registered.values()} == {
        "Overview", "Positions", "Greeks & risk", "History", "Signals", "Orders", "Trade"}
    files = {path.name for path in (APP.parent / "pages").glob("*.py")}
    assert files == {"overview.py", "positions.py", "greeks_risk.py", "history.py", "signals.py", "orders.py",
                     "trade.py"}
    assert {"common.py", "tickets.py"} <= {p.name for p in (APP.parent / "pages" / "components").glob("*.py")}
    # the root shows the Overview; every page also has its own URL (a deep link)
    assert set(registered) == {"", "overview", "positions", "greeks_risk", "history", "signals", "orders", "trade"}



def test_positions_controls_are_redrawn_only_when_the_held_legs_change():
    """The live part reruns the page (to redraw the close panel and filters) when `structure`
    differs from what the controls were drawn from: not on a mere new snapshot of the same legs,
    but on any change of a leg's strategy, contract or quantity, and never for ever over a
    missing quantity (NaN would never equal itself)."""
    import pages.positions as positions_page

    first = synthetic_snapshot(50)
    same_legs = replace(first, seq=first.seq + 1)

    def structure(snapshot):
        return positions_page.structure(snapshot, positions_page.build_book(snapshot))

    assert structure(same_legs) == structure(first)
    more = replace(first, seq=first.seq + 2, legs=(replace(first.legs[0], quantity=first.legs[0].quantity + 1),
                                                   *first.legs[1:]))
    assert structure(more) != structure(first)
    unknown = replace(first, legs=(replace(first.legs[0], quantity=float("nan")), *first.legs[1:]))
    assert structure(unknown) == structure(replace(unknown, seq=first.seq + 3))
    assert positions_page.structure(first, None) == ()
