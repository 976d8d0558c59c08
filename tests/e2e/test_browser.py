"""Every page in a real browser against `streamlit run serve.py` on the embedded simulator."""

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
    strategies = page.locator("details.v6-strategy")         # the live feed's list of strategies
    expect(strategies.first).to_be_visible(timeout=60_000)
    expect(strategies.nth(1)).to_be_visible()
    expect(strategies.first.locator("summary")).to_contain_text(re.compile(r"P&L [+-]?\$[\d,]+\.\d{2}"))
    tables = page.locator(".v6-legs table")                  # one table of legs per strategy
    expect(tables.first).to_be_visible()
    # P&L red/green in every strategy's table, a dash for what a leg lacks, never "None"
    expect(tables.first.locator("td.gain, td.loss").first).to_be_visible()
    assert tables.first.locator("td.gain, td.loss").first.evaluate(
        "el => getComputedStyle(el).color") in ("rgb(33, 195, 84)", "rgb(255, 75, 75)")
    main = page.locator("[data-testid='stMain']")
    expect(main.get_by_text("None", exact=True)).to_have_count(0)
    opened = min(strategies.count(), EXPANDED_BY_DEFAULT)
    open_details = page.locator("details.v6-strategy[open]")
    expect(open_details).to_have_count(opened)
    # the figures refresh in the browser (the live feed), with no click
    first_summary = strategies.first.locator("summary").inner_text()
    snapshot_caption = page.locator(".v6-caption").first
    seq = snapshot_caption.inner_text()
    expect(snapshot_caption).not_to_have_text(seq, timeout=20_000)
    if strategies.count() > opened:
        strategies.nth(opened).locator("summary").click()
        expect(open_details).to_have_count(opened + 1)
        strategies.first.locator("summary").click()          # and one the operator closed stays closed
        expect(open_details).to_have_count(opened)
        # live refresh rewrites the summaries (P&L, Greeks) every refresh; what the operator
        # opened stays open and what they closed stays closed
        page.wait_for_timeout(5_000)
        expect(snapshot_caption).not_to_have_text(seq)
        expect(open_details).to_have_count(opened)
        expect(strategies.nth(opened)).to_have_attribute("open", "")
        expect(strategies.first).not_to_have_attribute("open", "")
    assert first_summary
    page.get_by_text("All legs", exact=True).click()
    expect(page.locator("[data-testid='stDataFrame']")).to_have_count(1)
    no_exception_box(page)
    page.get_by_text("By strategy", exact=True).click()
    expect(strategies.first).to_be_visible()
    shoot(page, "positions", whole=False)
    readme_copy("positions")


def test_positions_feed_says_when_it_cannot_update_and_recovers(browser, app_server):
    """The live feed never shows old figures as current: when its requests fail it says since when
    the figures are not updated; when the server stops knowing its token (401) it reruns the page,
    which hands it a new one, and the figures move again. Its own tab: the routes stay here."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    tab = context.new_page()
    try:
        open_app(tab, app_server + "/positions")
        caption = tab.locator(".v6-caption").first
        expect(caption).to_contain_text("snapshot #", timeout=60_000)
        tab.route("**/v6/live/**", lambda route: route.abort())
        expect(tab.locator(".v6-feed-error").first).to_contain_text("Live figures not updated since",
                                                                  timeout=20_000)
        tab.unroute("**/v6/live/**")
        expect(tab.locator(".v6-feed-error")).to_have_count(0, timeout=20_000)    # the next answer clears it
        answered_401 = []

        def once_401(route):
            if not answered_401:
                answered_401.append(route.request.url)
                route.fulfill(status=401, body="no valid session token")
            else:
                route.continue_()

        tab.route("**/v6/live/**", once_401)
        for _ in range(100):                                            # up to 20 s
            if answered_401:
                break
            tab.wait_for_timeout(200)
        assert answered_401
        shown = caption.inner_text()
        expect(caption).not_to_have_text(shown, timeout=20_000)       # the feed runs again
        no_exception_box(tab)
    finally:
        context.close()


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
