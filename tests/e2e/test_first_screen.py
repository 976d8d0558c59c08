"""The first screen and deep links (issue #12, defect 6), each on a freshly started server.

- every page's URL opens that page, cold (the server's first request) and warm;
- Streamlit's automatic page list ("app, common, …, tickets") never appears, not even for a frame;
- `/tickets` is not a page (it used to stay blank forever);
- something (serve.py's "connecting" splash in the HTML shell, the app's notice or the page) shows
  soon after the request. The goal is one second; the time is recorded (artifact first_paint.txt)
  and bounded loosely here, as a timed assertion would flake under load.
"""

from __future__ import annotations

import re

import pytest

from tests.browser_harness import ARTIFACTS, streamlit_app

pytestmark = pytest.mark.browser

FIRST_PAINT_GOAL_MS = 1_000
FIRST_PAINT_LIMIT_MS = 5_000      # what is asserted until the goal is met under load
PAGE_TITLES = {"overview": "Overview", "positions": "Positions", "history": "History", "orders": "Orders",
               "greeks_risk": "Greeks & risk", "signals": "Signals", "trade": "Trade"}

# Installed before any page script: records when the first notice or heading appeared and whether
# Streamlit's own page list (or a module name) ever showed in the sidebar.
WATCH = """
window.__v6 = {firstPaint: null, autoNav: false, sidebarTexts: [], splash: false};
new MutationObserver(() => {
  const w = window.__v6;
  if (document.querySelector("#v6-splash")) w.splash = true;
  if (w.firstPaint === null &&
      document.querySelector("#v6-splash, [data-testid='stAlert'], [data-testid='stHeading']")) {
    w.firstPaint = performance.now();
  }
  if (document.querySelector("[data-testid='stSidebarNav'], [data-testid='stSidebarNavItems']")) {
    w.autoNav = true;
  }
  const sidebar = document.querySelector("[data-testid='stSidebar']");
  if (sidebar) {
    const t = sidebar.innerText;
    if (/\\b(common|tickets|components|app)\\b/i.test(t)) w.sidebarTexts.push(t.slice(0, 200));
  }
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


@pytest.fixture
def fresh_server(tmp_path):
    env = {"V6_MODE": "sim", "V6_LAKE_PATH": str(tmp_path / "lake")}
    with streamlit_app(env, tmp_path / "streamlit.log") as url:
        yield url


def open_tab(browser):
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    context.add_init_script(WATCH)
    page = context.new_page()
    page.set_default_timeout(90_000)
    return context, page


def heading(page, title: str):
    return page.locator("[data-testid='stHeading'] h1", has_text=re.compile(f"^{re.escape(title)}$"))


def record_first_paint(name: str, page) -> float | None:
    """When the first screen showed (ms after the request), recorded with the browser's first
    contentful paint; the splash must have been that first screen."""
    ms = page.evaluate("window.__v6.firstPaint")
    fcp = page.evaluate("(performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime")
    with (ARTIFACTS / "first_paint.txt").open("a") as out:
        out.write(f"{name}: first screen after {ms} ms, first contentful paint {fcp} ms "
                  f"(goal {FIRST_PAINT_GOAL_MS} ms)\n")
    assert page.evaluate("window.__v6.splash"), "the connecting splash never showed"
    return ms


def check_watch(page) -> None:
    watch = page.evaluate("window.__v6")
    assert page.locator("#v6-splash").count() == 0, "the connecting splash outlived the frontend's first draw"
    assert not watch["autoNav"], "Streamlit's automatic page list appeared"
    assert not watch["sidebarTexts"], f"a module name showed in the sidebar: {watch['sidebarTexts']}"
    assert page.get_by_text(re.compile("Page not found", re.I)).count() == 0


@pytest.mark.timeout(600)
@pytest.mark.parametrize("path", ["overview", "positions", "history", "orders"])
def test_a_page_url_is_a_deep_link_cold_and_warm(browser, fresh_server, path):
    from playwright.sync_api import expect

    context, page = open_tab(browser)
    page.goto(f"{fresh_server}/{path}")
    expect(heading(page, PAGE_TITLES[path])).to_be_visible(timeout=120_000)
    first_paint = record_first_paint(path, page)
    assert first_paint is not None and first_paint <= FIRST_PAINT_LIMIT_MS, \
        f"first screen after {first_paint} ms"
    sidebar = page.locator("[data-testid='stSidebar']")
    expect(sidebar.get_by_role("link", name="Positions")).to_be_visible()
    check_watch(page)
    page.screenshot(path=str(ARTIFACTS / f"deep_link_cold_{path}.png"))
    # warm: the same server, every other page's URL in a new tab
    for other, title in PAGE_TITLES.items():
        if other == path:
            continue
        tab = context.new_page()
        tab.goto(f"{fresh_server}/{other}")
        expect(heading(tab, title)).to_be_visible(timeout=60_000)
        check_watch(tab)
        assert tab.locator("[data-testid='stException']").count() == 0
        tab.close()
    context.close()


@pytest.mark.timeout(600)
def test_tickets_is_not_a_page_and_the_first_screen_comes_at_once(browser, fresh_server):
    from playwright.sync_api import expect

    context, page = open_tab(browser)
    page.goto(f"{fresh_server}/tickets")
    # Not a page: the app's main page is drawn (never a blank screen), with its sidebar links.
    expect(heading(page, "Overview")).to_be_visible(timeout=120_000)
    first_paint = record_first_paint("tickets", page)
    assert first_paint is not None and first_paint <= FIRST_PAINT_LIMIT_MS, f"first screen after {first_paint} ms"
    links = page.locator("[data-testid='stSidebar'] a")
    expect(links).to_have_count(len(PAGE_TITLES))
    # a link's text is its icon's name, then its title
    names = {links.nth(i).inner_text().strip().split("\n")[-1] for i in range(links.count())}
    assert names == set(PAGE_TITLES.values())
    watch = page.evaluate("window.__v6")
    assert not watch["autoNav"] and not watch["sidebarTexts"]
    page.screenshot(path=str(ARTIFACTS / "tickets_url.png"))
    context.close()
