"""P&L explained in a real browser: `streamlit run app.py` over a recorded lake, History's tab.

The lake is written here (a morning of a small book: spot and IV moves, a trade) and this test
process keeps its writer lock, so the app opens it read-only and shows exactly these versions.
The README's screenshot (docs/screenshot-explain.png) is refreshed from it on request
(V6_UPDATE_SCREENSHOTS=1) or when missing.
"""

from __future__ import annotations

import os
import re
import shutil
from datetime import datetime, timedelta, timezone

import pytest

from tests.browser_harness import ARTIFACTS, ROOT, SCRIPT_IDLE, streamlit_app
from tests.explain.book import Holding, Market, fill, write_history
from v6core.lake import LakeWriter

pytestmark = pytest.mark.browser
UTC = timezone.utc
OPEN = datetime(2026, 11, 20, 14, 30, tzinfo=UTC)
CONDOR = [Holding(11, "SPY", 1, 570.0, "P", strategy_id="iron condor:SPY"),
          Holding(12, "SPY", -1, 580.0, "P", strategy_id="iron condor:SPY"),
          Holding(13, "SPY", -1, 620.0, "C", strategy_id="iron condor:SPY"),
          Holding(14, "SPY", 1, 630.0, "C", strategy_id="iron condor:SPY")]
QQQ_CALL = Holding(21, "QQQ", 3, 520.0, "C", strategy_id="long call:QQQ")
AAPL = Holding(31, "AAPL", 100, strategy_id="stock:AAPL")
TSLA = [Holding(41, "TSLA", -2, 320.0, "P", strategy_id="put spread:TSLA"),
        Holding(42, "TSLA", 2, 300.0, "P", strategy_id="put spread:TSLA")]


def _morning(root) -> None:
    points = []
    for i in range(7):
        market = Market(OPEN + timedelta(minutes=30 * i),
                        {"SPY": 600.0 + 1.2 * i, "QQQ": 520.0 - 1.5 * i, "AAPL": 230.0 + 0.6 * i,
                         "TSLA": 340.0 - 2.5 * i},
                        {"SPY": 0.18 - 0.002 * i, "QQQ": 0.22, "AAPL": 0.25, "TSLA": 0.55 + 0.01 * i})
        qqq = QQQ_CALL if i < 4 else Holding(21, "QQQ", 2, 520.0, "C", strategy_id="long call:QQQ")
        points.append(([*CONDOR, qqq, AAPL, *TSLA], market))
    fills = [fill(OPEN + timedelta(minutes=100), QQQ_CALL, "SLD", 1, 9.80, commission=0.65, realized=-40.0)]
    cost = {11: 2.10, 12: 3.60, 13: 4.40, 14: 2.35, 21: 8.20, 31: 221.50, 41: 9.10, 42: 5.40}
    write_history(root, points, fills, avg_prices=cost)


@pytest.fixture(scope="module")
def explain_app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("explain-e2e")
    root = tmp / "lake"
    _morning(root)
    holder = LakeWriter(root)
    holder.acquire()                       # the app opens the lake read-only: exactly these versions
    try:
        with streamlit_app({"V6_MODE": "sim", "V6_LAKE_PATH": str(root)}, tmp / "streamlit.log") as url:
            yield url
    finally:
        holder.stop()


def test_history_waterfall_in_the_browser(browser, explain_app):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1400, "height": 1000}, color_scheme="dark")
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(f"{explain_app}/history")
        page.wait_for_selector(SCRIPT_IDLE)
        expect(page.get_by_role("heading", name="History")).to_be_visible()
        page.get_by_role("tab", name="P&L explained").click()
        chart = page.locator(".st-key-explain_waterfall [data-testid='stPlotlyChart']")
        expect(chart).to_be_visible()
        for label in ("Start P&L", "Delta", "Gamma", "Theta", "Vega", "Trades", "Residual", "End P&L"):
            expect(chart.get_by_text(label, exact=True).first).to_be_visible()
        expect(page.locator("[data-testid='stMetric']").filter(has_text="P&L change")
               .locator("[data-testid='stMetricValue']")).to_have_text(re.compile(r"^[+-]\$[\d,]+\.\d{2}$"))
        assert page.locator("[data-testid='stException']").count() == 0
        panel = page.get_by_role("tabpanel").filter(has=chart)
        page.set_viewport_size({"width": 1400, "height": 2400})     # every table painted
        page.wait_for_timeout(1500)
        panel.screenshot(path=str(ARTIFACTS / "explain.png"))
        shot = ROOT / "docs" / "screenshot-explain.png"
        if not shot.exists() or os.environ.get("V6_UPDATE_SCREENSHOTS") == "1":
            shutil.copy(ARTIFACTS / "explain.png", shot)
    finally:
        context.close()
