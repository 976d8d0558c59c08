"""AppTest of P&L explained on History (pick two points, waterfall, strategies, drill to legs)
and of "today so far" on Overview, over a real synthetic lake."""

from __future__ import annotations

import json
import sys
import types
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.app.conftest import shown_metric
from streamlit.testing.v1 import AppTest

from pages.components.common import fmt_money
from tests.app.synthetic import install_stand_in, remove_stand_in, synthetic_snapshot
from tests.explain.book import RATE, Holding, Market, fill, write_history
from v6core.config import Settings, load_settings
from v6core.explain import explain
from v6core.lake import LakeReader

UTC = timezone.utc
PAGES = Path(__file__).resolve().parents[2] / "pages"
T0 = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
CALLS = Holding(1, "SPY", 2, 600.0, "C", strategy_id="calls:SPY")
PUTS = Holding(2, "SPY", -3, 580.0, "P", strategy_id="puts:SPY")
QQQ = Holding(3, "QQQ", 1, 520.0, "C", strategy_id="call:QQQ")
NEW_PUT = Holding(4, "SPY", 1, 590.0, "P", strategy_id="puts:SPY")


def _markets():
    return [Market(T0 + timedelta(minutes=5 * i), {"SPY": 600.0 + 3 * i, "QQQ": 520.0 - 2 * i},
                   {"SPY": 0.20 + 0.01 * i, "QQQ": 0.22}) for i in range(3)]


@pytest.fixture
def lake(tmp_path) -> Path:
    m = _markets()
    root = tmp_path / "lake"
    write_history(root, [([CALLS, PUTS, QQQ], m[0]), ([CALLS, PUTS, QQQ], m[1]),
                         ([CALLS, PUTS, QQQ, NEW_PUT], m[2])],
                  [fill(T0 + timedelta(minutes=7), NEW_PUT, "BOT", 1, 6.0, commission=0.65)])
    return root


@dataclass
class LakeOnlyServices:
    settings: Settings
    lake: LakeReader
    lake_error: str = ""


def _open_history(lake: Path, monkeypatch) -> AppTest:
    from pages.components import common

    services = LakeOnlyServices(settings=load_settings(lake_path=lake), lake=LakeReader(lake))
    fake = types.ModuleType("v6core.services")
    fake.start_services = lambda _settings: services
    monkeypatch.setitem(sys.modules, "v6core.services", fake)
    common.get_services.clear()
    at = AppTest.from_file(str(PAGES / "history.py"), default_timeout=60)
    at.run()
    return at


@pytest.fixture
def history(lake, monkeypatch):
    from pages.components import common

    yield _open_history(lake, monkeypatch)
    common.get_services.clear()


def _waterfall(at: AppTest, key: str) -> dict:
    chart = next(c for c in at.get("plotly_chart") if c.key == key)
    return json.loads(chart.proto.spec)["data"][0]


def _frame(at: AppTest, *columns: str):
    return next(d.value for d in at.dataframe if set(columns) <= set(d.value.columns))


def test_history_explains_two_versions_with_waterfall_strategies_and_legs(history, lake):
    at = history
    assert not at.exception and not at.error
    at.number_input(key="explain_v1").set_value(0)
    at.number_input(key="explain_v2").set_value(2).run()
    assert not at.exception
    expected = explain(LakeReader(lake), 0, 2, rate=RATE)
    trace = _waterfall(at, "explain_waterfall")
    assert trace["type"] == "waterfall"
    assert trace["x"] == ["Start P&L", "Delta", "Gamma", "Theta", "Vega", "Trades", "Residual", "End P&L"]
    assert trace["y"] == pytest.approx([v for _, v in expected.waterfall()])
    assert trace["measure"][0] == "absolute" and trace["measure"][-1] == "total"
    metrics = {m.label: shown_metric(m.value) for m in at.metric}
    assert metrics["P&L change"] == fmt_money(expected.actual, signed=True)
    assert metrics["Trades"] == fmt_money(expected.component("trades"), signed=True)
    assert metrics["Residual"] == fmt_money(expected.residual, signed=True)

    strategies = _frame(at, "Strategy", "Kind")
    assert sorted(strategies["Strategy"]) == ["call:QQQ", "calls:SPY", "puts:SPY"]
    puts = strategies[strategies["Strategy"] == "puts:SPY"].iloc[0]
    row = expected.by_strategy.filter(expected.by_strategy["strategy_id"] == "puts:SPY").row(0, named=True)
    assert puts["Legs"] == 2 and puts["Trades"] == pytest.approx(row["trades"])
    assert puts["Actual"] == pytest.approx(row["actual"])
    assert puts["Large residual"] == row["large_residual"]

    at.selectbox(key="explain_drill").set_value("puts:SPY").run()
    legs = _frame(at, "Contract", "Change")
    assert sorted(legs["Change"]) == ["held", "opened"]
    assert legs["Commissions"].sum() == pytest.approx(0.65)

    # Full revaluation adds the Greeks-approximation bar; stepping through gives 2 steps.
    at.radio(key="explain_mode").set_value("Full revaluation (Black–Scholes repricing)")
    at.checkbox(key="explain_path").check().run()
    assert not at.exception
    trace = _waterfall(at, "explain_waterfall")
    assert "Greeks approximation" in trace["x"]
    stepped = explain(LakeReader(lake), 0, 2, rate=RATE, mode="revaluation", path=True)
    assert trace["y"] == pytest.approx([v for _, v in stepped.waterfall()])
    assert any("in 2 steps" in c.value for c in at.caption)

    # By date-time: 14:59 is before the first snapshot.
    at.radio(key="explain_pick").set_value("Date-times (UTC)").run()
    at.time_input(key="explain_t1").set_value(datetime(2026, 11, 20, 14, 59).time()).run()
    assert any("before the first snapshot" in w.value for w in at.warning)


def test_overview_shows_today_so_far(lake):
    services = install_stand_in(synthetic_snapshot(), lake_path=lake)
    services.lake = LakeReader(lake)
    try:
        at = AppTest.from_file(str(PAGES / "overview.py"), default_timeout=60)
        at.run()
        assert not at.exception, at.exception
        assert "P&L today so far, explained" in [h.value for h in at.subheader]
        expected = explain(LakeReader(lake), 0, 2, rate=RATE)
        assert _waterfall(at, "today_waterfall")["y"] == pytest.approx([v for _, v in expected.waterfall()])
        assert any("version 0" in c.value and "version 2" in c.value for c in at.caption)
    finally:
        remove_stand_in()

