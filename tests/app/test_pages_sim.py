"""Every page against the real runtime and the embedded simulator (V6_MODE=sim, lake in tmp).

One module-scoped services instance (the same object `pages.components.common.get_services()` hands to the
pages); the simulator is frozen so the figures shown can be compared exactly with the snapshot.
"""

from __future__ import annotations

import base64
import json
import time

import numpy as np
import pytest

from pages.components import common
from tests.app.conftest import open_page, unescape, shown_metric
from tests.app.synthetic import remove_stand_in
from v6core import risk


def _ready(snapshot) -> bool:
    return (snapshot.connection.state.value == "connected" and len(snapshot.legs) > 0
            and all(leg.greeks is not None for leg in snapshot.legs)
            and snapshot.account.net_liquidation is not None and len(snapshot.underlyings) > 0)


def _figures(snapshot) -> tuple:
    a = snapshot.account
    return (snapshot.totals, snapshot.unrealized_pnl, snapshot.realized_pnl, snapshot.daily_pnl,
            a.net_liquidation, a.buying_power, a.init_margin, a.daily_pnl,
            tuple((leg.contract.con_id, leg.quantity, leg.unrealized_pnl, leg.position_greeks)
                  for leg in snapshot.legs))


@pytest.fixture(scope="module")
def sim_services(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("V6_MODE", "sim")
        mp.setenv("V6_LAKE_PATH", str(tmp_path_factory.mktemp("lake")))
        mp.delenv("V6_PASSWORD", raising=False)
        remove_stand_in()
        services = common.get_services()
        try:
            assert services.runtime.wait_for(_ready, 90) is not None, "simulator data never arrived"
            services.runtime.sim.freeze()
            previous, deadline = None, time.monotonic() + 30
            while time.monotonic() < deadline:   # frozen: wait until the figures stop moving
                current = _figures(services.runtime.snapshot())
                if current == previous:
                    break
                previous = current
                time.sleep(1.0)
            yield services
        finally:
            services.stop()
            common.get_services.clear()


@pytest.fixture
def frozen(sim_services):
    """The snapshot the pages will read (asserted unchanged across the page run)."""
    before = sim_services.runtime.snapshot()
    yield before
    assert _figures(sim_services.runtime.snapshot()) == _figures(before), "figures moved during the run"


def test_overview_metrics_equal_the_snapshot(sim_services, frozen):
    at = open_page("overview", timeout=60)
    assert not at.exception
    shown = {m.label: shown_metric(m.value) for m in at.metric}
    s, a = frozen, frozen.account
    assert shown["Net liquidation"] == common.fmt_money(a.net_liquidation)
    assert shown["Daily P&L"] == common.fmt_money(s.daily_pnl if s.daily_pnl is not None else a.daily_pnl, signed=True)
    assert shown["Unrealized P&L"] == common.fmt_money(s.unrealized_pnl, signed=True)
    assert shown["Realized P&L"] == common.fmt_money(s.realized_pnl, signed=True)
    assert shown["Buying power"] == common.fmt_money(a.buying_power)
    assert shown["Margin use"] == f"{a.init_margin / a.net_liquidation * 100:.1f}%"
    for name, label in common.GREEK_LABELS.items():
        assert shown[label] == common.fmt_greek(name, getattr(s.totals, name)), label
    assert shown["Delta (shares)"] not in ("—", "0.0")
    assert len(at.get("plotly_chart")) == 1
    alerts = [unescape(e.value) for kind in (at.main.error, at.main.warning, at.main.info) for e in kind]
    assert sorted(alerts) == sorted(a.message for a in s.alerts)
    if not s.alerts:
        assert [ok.value for ok in at.success] == ["No alerts."]


def test_sidebar_shows_sim_connected_and_account(sim_services, frozen):
    at = open_page("overview", timeout=60)
    badges = [m.value for m in at.sidebar.markdown]
    assert ":blue-badge[SIM]" in badges and ":green-badge[connected]" in badges
    captions = " ".join(unescape(c.value) for c in at.sidebar.caption)
    assert f"Account **{frozen.account.account}**" in captions
    assert f"{frozen.connection.host}:{frozen.connection.port}" in captions


def test_positions_rows_equal_the_snapshot_legs(sim_services, frozen):
    at = open_page("positions", timeout=60)
    assert not at.exception
    grouped = {leg.strategy_id for leg in frozen.legs}
    assert len(at.expander) == len(grouped)
    at.button_group(key="positions_view").set_value("All legs").run()
    frame = at.dataframe[0].value
    assert len(frame) == len(frozen.legs)
    kinds = {s.strategy_id: s.kind for s in frozen.strategies}
    for leg in frozen.legs:
        row = frame[frame["Contract"] == leg.contract.label]
        assert len(row) == 1, leg.contract.label
        row = row.iloc[0]
        assert row["Qty"] == leg.quantity
        assert row["Avg cost"] == pytest.approx(leg.avg_price)
        assert row["Mark"] == pytest.approx(leg.mark)
        assert row["P&L"] == pytest.approx(leg.unrealized_pnl)
        assert row["Delta"] == pytest.approx(leg.position_greeks.delta)
        assert row["Theta $/day"] == pytest.approx(leg.position_greeks.theta)
        assert row["Vega $/vol pt"] == pytest.approx(leg.position_greeks.vega)
        assert row["Greeks"] == leg.greeks.source.value
        assert row["Strategy"] == kinds.get(leg.strategy_id, "ungrouped")
        if leg.contract.is_option:
            # shown as text (a dash for the stock legs' missing DTE and IV): the value as formatted
            assert int(row["DTE"]) == leg.dte
            assert float(row["IV %"]) == pytest.approx(leg.greeks.iv * 100, abs=0.05)
    # sorted by underlying, then expiry (stock first), strike
    keys = [(leg.contract.symbol, leg.contract.expiry is not None, leg.contract.expiry, leg.contract.strike or 0.0)
            for leg in sorted(frozen.legs, key=lambda l: list(frame["Contract"]).index(l.contract.label))]
    assert keys == sorted(keys)


def _decode(value):
    """Plotly's JSON arrays are either lists or {"dtype", "bdata", "shape"} binary blobs."""
    if isinstance(value, dict) and "bdata" in value:
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = value.get("shape")
        if shape:
            array = array.reshape([int(n) for n in str(shape).split(",")])
        return array
    return np.asarray(value, dtype=float)


def test_greeks_and_risk_equal_the_snapshot_and_risk_module(sim_services, frozen):
    at = open_page("greeks_risk", timeout=120)   # first risk call may JIT-compile py_vollib (~4 s)
    assert not at.exception and not at.main.error
    by_underlying = at.dataframe[0].value.set_index("Underlying")
    for u in frozen.underlyings:
        for column, value in (("Delta", u.greeks.delta), ("Gamma", u.greeks.gamma),
                              ("Theta $/day", u.greeks.theta), ("Vega $/vol pt", u.greeks.vega),
                              ("Beta-weighted delta (SPY sh)", u.greeks.beta_delta)):
            assert by_underlying.loc[u.symbol, column] == pytest.approx(value), (u.symbol, column)
    assert by_underlying.loc["Portfolio", "Delta"] == pytest.approx(frozen.totals.delta)
    assert len(at.dataframe[1].value) == len(frozen.strategies)

    graph, grid = (json.loads(chart.proto.spec) for chart in at.get("plotly_chart"))
    assert [trace["name"] for trace in graph["data"]] == ["T+0 (today)", "At expiry"]
    heat = grid["data"][0]
    z = _decode(heat["z"])
    assert z.shape == (len(risk.PRICE_SHOCKS_PCT), len(risk.VOL_SHOCKS_PTS))
    spots = {u.symbol: u.spot for u in frozen.underlyings if u.spot}
    rate, now = sim_services.settings.risk_free_rate, common.utcnow()
    book = risk.prepare_risk(frozen.legs, now, rate, spots)
    expected = risk.scenario_matrix(book, risk.PRICE_SHOCKS_PCT, risk.VOL_SHOCKS_PTS, now, rate, spots=spots)
    # seconds pass between the page run and this one: theta moves the cells by cents
    np.testing.assert_allclose(z, expected, rtol=1e-3, atol=1.0)
    centre = (risk.PRICE_SHOCKS_PCT.index(0), risk.VOL_SHOCKS_PTS.index(0))
    assert heat["text"][centre[0]][centre[1]] == "0"      # no shock, no P&L
    assert heat["text"][0][0] == common.fmt_number(z[0][0], decimals=0)

    at.button_group(key="risk_scope").set_value("SPY").run()
    assert not at.exception and not at.main.error
    graph = json.loads(at.get("plotly_chart")[0].proto.spec)
    spot = _decode(graph["data"][0]["x"])
    assert spot.min() < spots["SPY"] < spot.max()


@pytest.mark.parametrize("page", ["pages/history.py", "pages/signals.py", "pages/orders.py"])
def test_other_pages_run_without_error_boxes(sim_services, page):
    at = open_page(page, timeout=60)
    assert not at.exception
    assert not any("unexpected error" in e.value for e in at.main.error)
