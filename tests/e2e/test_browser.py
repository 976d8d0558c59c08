"""Every page in a real browser against `streamlit run app.py` on the embedded simulator."""

from __future__ import annotations

import os
import re
import shutil

import pytest

from pages.positions import EXPANDED_BY_DEFAULT
from tests.e2e.conftest import ARTIFACTS, ROOT, SCRIPT_IDLE

pytestmark = pytest.mark.browser

MONEY = re.compile(r"^[+-]?\$[\d,]+\.\d{2}$")
SIGNED_ONE_DECIMAL = re.compile(r"^(?:[+-][\d,]+\.\d|0\.0)$")


def open_app(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector(SCRIPT_IDLE, timeout=60_000)


def heading(page, title: str):
    return page.locator("[data-testid='stHeading'] h1", has_text=re.compile(f"^{re.escape(title)}$"))


def go_to(page, url: str, title: str) -> None:
    """Click the sidebar link once, as the operator does, and wait for the page to arrive."""
    if not page.url.startswith(url):   # this test runs alone: open the app first
        open_app(page, url)
    page.locator("[data-testid='stSidebar'] a", has_text=title).first.click()
    heading(page, title).wait_for(state="visible", timeout=60_000)


def no_exception_box(page) -> None:
    assert page.locator("[data-testid='stException']").count() == 0
    assert page.get_by_text("This page hit an unexpected error").count() == 0


def metric_value(page, label: str):
    labelled = page.locator("[data-testid='stMetricLabel']", has_text=re.compile(f"^{re.escape(label)}$"))
    return page.locator("[data-testid='stMetric']").filter(has=labelled).locator("[data-testid='stMetricValue']")


def readme_copy(name: str) -> None:
    """README's pictures (docs/screenshot-NAME.png): refreshed on request only
    (V6_UPDATE_SCREENSHOTS=1), so a test run leaves the work tree clean."""
    readme_shot = ROOT / "docs" / f"screenshot-{name}.png"
    if not readme_shot.exists() or os.environ.get("V6_UPDATE_SCREENSHOTS") == "1":
        readme_shot.parent.mkdir(exist_ok=True)
        shutil.copy(ARTIFACTS / f"{name}.png", readme_shot)


def shoot(page, name: str, whole: bool = True) -> None:
    """Screenshot; `whole` grows the viewport to the page's height (the main pane scrolls inside)."""
    page.wait_for_selector(SCRIPT_IDLE, timeout=60_000)
    size = page.viewport_size
    if whole:
        height = page.evaluate("document.querySelector(\"[data-testid='stMain']\").scrollHeight")
        page.set_viewport_size({"width": size["width"], "height": max(size["height"], min(int(height), 4000))})
        page.wait_for_timeout(300)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    page.set_viewport_size(size)


def test_first_request_to_a_page_url_goes_through_the_app_shell(page, app_server):
    """The server's very first request names a page (a bookmark): Streamlit's old `pages/` mode
    would run that file alone; the page must still get app.py's sidebar (and password gate)."""
    from playwright.sync_api import expect

    page.goto(f"{app_server}/greeks_risk")
    page.wait_for_selector(SCRIPT_IDLE, timeout=60_000)
    expect(page.get_by_role("heading", name="Greeks & risk")).to_be_visible()
    expect(page.locator("[data-testid='stSidebar']").get_by_text("SIM", exact=True)).to_be_visible()
    no_exception_box(page)


def test_overview_shows_account_greeks_and_connection(page, app_server):
    from playwright.sync_api import expect

    open_app(page, app_server)
    net_liq = metric_value(page, "Net liquidation")
    expect(net_liq).to_have_text(MONEY, timeout=60_000)      # "—" until the gateway delivered
    expect(metric_value(page, "Delta (shares)")).to_have_text(SIGNED_ONE_DECIMAL)
    expect(metric_value(page, "Theta ($/day)")).to_have_text(re.compile(r"^[+-]?[\d,]+\.\d{2}$"))
    expect(metric_value(page, "Unrealized P&L")).to_have_text(MONEY)
    # after positions arrived (the other chart, "today so far", needs two recorded versions)
    expect(page.locator(".st-key-greeks_by_underlying [data-testid='stPlotlyChart']")).to_have_count(1)
    sidebar = page.locator("[data-testid='stSidebar']")
    expect(sidebar.get_by_text("SIM", exact=True)).to_be_visible()
    expect(sidebar.get_by_text("connected", exact=True)).to_be_visible(timeout=30_000)
    expect(sidebar.get_by_text(re.compile(r"Account DU\d+"))).to_be_visible()
    no_exception_box(page)
    shoot(page, "overview", whole=False)
    readme_copy("overview")
    no_exception_box(page)


def test_positions_by_strategy_and_all_legs(page, app_server):
    from playwright.sync_api import expect

    go_to(page, app_server, "Positions")
    expect(page.get_by_role("heading", name="Positions")).to_be_visible()
    expanders = page.locator("[data-testid='stExpander']")
    expect(expanders.first).to_be_visible(timeout=60_000)
    expect(expanders.nth(1)).to_be_visible()        # the page streams in: wait for the second
    expect(expanders.first).to_contain_text(re.compile(r"P&L [+-]?\$[\d,]+\.\d{2}"))
    tables = page.locator(".v6-legs table")                  # one table of legs per strategy
    expect(tables.first).to_be_visible()
    # P&L red/green in every strategy's table, a dash for what a leg lacks, never "None"
    expect(tables.first.locator("td.gain, td.loss").first).to_be_visible()
    assert tables.first.locator("td.gain, td.loss").first.evaluate(
        "el => getComputedStyle(el).color") in ("rgb(33, 195, 84)", "rgb(255, 75, 75)")
    main = page.locator("[data-testid='stMain']")
    expect(main.get_by_text("None", exact=True)).to_have_count(0)
    opened = min(expanders.count(), EXPANDED_BY_DEFAULT)
    open_details = page.locator("[data-testid='stExpander'] details[open]")
    expect(open_details).to_have_count(opened)
    if expanders.count() > opened:
        expanders.nth(opened).locator("summary").click()
        expect(open_details).to_have_count(opened + 1)
        # live refresh rewrites the labels (P&L, Greeks) every run; what the operator opened stays open
        page.wait_for_timeout(5_000)
        expect(open_details).to_have_count(opened + 1)
        expect(expanders.nth(opened).locator("details")).to_have_attribute("open", "")
    page.get_by_text("All legs", exact=True).click()
    expect(page.locator("[data-testid='stDataFrame']")).to_have_count(1)
    no_exception_box(page)
    page.get_by_text("By strategy", exact=True).click()
    expect(expanders.first).to_be_visible()
    shoot(page, "positions", whole=False)
    readme_copy("positions")


def test_greeks_and_risk_draws_tables_graph_and_grid(page, app_server):
    from playwright.sync_api import expect

    go_to(page, app_server, "Greeks & risk")
    expect(page.get_by_role("heading", name="Risk graph and scenarios")).to_be_visible(timeout=60_000)
    expect(page.locator("[data-testid='stPlotlyChart']")).to_have_count(2, timeout=60_000)
    expect(page.locator("[data-testid='stDataFrame']")).to_have_count(2)
    expect(page.get_by_text("T+0 (today)").first).to_be_visible()
    no_exception_box(page)
    shoot(page, "greeks_risk", whole=False)
    readme_copy("greeks_risk")


@pytest.mark.parametrize("title", ["History", "Signals", "Orders"])
def test_other_pages_open_without_exception(page, app_server, title):
    from playwright.sync_api import expect

    go_to(page, app_server, title)
    expect(page.get_by_role("heading", name=re.compile(title)).first).to_be_visible()
    no_exception_box(page)
    shoot(page, title.lower())
