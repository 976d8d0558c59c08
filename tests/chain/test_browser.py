"""The Trade page in a real browser: `streamlit run app.py` (V6_MODE=ib) against a simulator
started here, live refresh on. Build an iron condor by template, review and confirm it: one
combo order at the simulator, the new strategy on Positions grouped as an iron condor; roll it
from the Roll… button of the Positions panel: one roll combo closing the four legs and opening four at a later expiry.
"""

from __future__ import annotations

import os
import re
import shutil

import pytest

from tests.browser_harness import ARTIFACTS, PANEL, ROOT, SCRIPT_IDLE, choose, streamlit_app
from tests.chain.conftest import wait_until
from v6core.sim import SimGateway

pytestmark = pytest.mark.browser
SYMBOL = "QQQ"


@pytest.fixture(scope="module")
def gw():
    gateway = SimGateway(seed=7, host="127.0.0.1", port=0, tick_rate=3.0)
    gateway.start()
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def app_url(gw, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trade-e2e")
    env = {"V6_MODE": "ib", "V6_IB_HOST": "127.0.0.1", "V6_IB_PORT": str(gw.port),
           "V6_LAKE_PATH": str(tmp / "lake"), "V6_STALE_AFTER": "60"}
    with streamlit_app(env, tmp / "streamlit.log") as url:
        yield url


def idle(page) -> None:
    page.wait_for_selector(SCRIPT_IDLE, timeout=60_000)


def combos(gw) -> list:
    return [o for o in gw.orders() if o.combo_legs and o.symbol == SYMBOL]


def readme_shot(page) -> None:
    """The page as drawn now, whole, into tests/artifacts/trade.png; README's picture
    (docs/screenshot-trade.png) refreshed from it on request only (V6_UPDATE_SCREENSHOTS=1, or
    when it is missing), so a test run leaves the work tree clean."""
    idle(page)
    size = page.viewport_size
    height = page.evaluate("document.querySelector(\"[data-testid='stMain']\").scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], min(int(height), 4000))})
    page.wait_for_timeout(500)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "trade.png"))
    page.set_viewport_size(size)
    target = ROOT / "docs" / "screenshot-trade.png"
    if not target.exists() or os.environ.get("V6_UPDATE_SCREENSHOTS") == "1":
        shutil.copy(ARTIFACTS / "trade.png", target)


def review_and_confirm(page) -> None:
    from playwright.sync_api import expect

    page.locator("[data-testid='stButtonGroup']").filter(has_text="Natural").get_by_text(
        "Natural", exact=True).click()
    expect(page.get_by_text("Limit", exact=True)).to_be_visible()
    page.get_by_role("button", name="Review", exact=True).click()
    dialog = page.get_by_role("dialog")
    confirm = dialog.get_by_role("button", name="Confirm and place")
    expect(confirm).to_be_enabled(timeout=120_000)
    expect(dialog).to_contain_text("Max profit")
    confirm.click()
    expect(dialog).to_contain_text("Sent once as order", timeout=60_000)
    dialog.get_by_role("button", name="Close", exact=True).click()
    expect(dialog).to_be_hidden(timeout=60_000)


@pytest.mark.timeout(900)     # a full ticket through a loaded machine's browser and gateway
def test_iron_condor_by_template_confirmed_once_grouped_on_positions_and_rolled_in_one_combo(browser, app_url, gw):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1600, "height": 1100})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(f"{app_url}/trade")
    idle(page)
    expect(page.get_by_text(re.compile(r"chain lines"))).to_be_visible(timeout=90_000)

    choose(page, "Underlying", SYMBOL)
    # the expiry picker belongs to the underlying: act on it once the QQQ chain is drawn
    expect(page.get_by_text(re.compile(fr"^{SYMBOL} .* · \d+ strikes"))).to_be_visible(timeout=60_000)
    idle(page)
    today = gw.today
    expiry = min(gw.expiries(SYMBOL), key=lambda d: abs((d - today).days - 50))
    choose(page, "Expiry", f"{expiry:%Y-%m-%d}")
    expect(page.get_by_text(re.compile(fr"^{SYMBOL} .* · {expiry:%Y-%m-%d} ·"))).to_be_visible()
    idle(page)
    choose(page, "Strike step", "every 2nd")
    expect(page.get_by_text(re.compile(fr"^{SYMBOL} .* · {expiry:%Y-%m-%d} · \d+ strikes \(every 2nd"))
           ).to_be_visible()
    idle(page)
    page.get_by_role("button", name="Build from template").click()
    expect(page.get_by_text("Max profit")).to_be_visible(timeout=120_000)
    assert combos(gw) == []
    readme_shot(page)
    review_and_confirm(page)

    [order] = wait_until(lambda: combos(gw), timeout=30)
    assert len(order.combo_legs) == 4 and order.quantity == 1
    legs = {leg.con_id: (leg.action, leg.ratio) for leg in order.combo_legs}
    wait_until(lambda: all(any(p.contract.con_id == c for p in gw.positions()) for c in legs), timeout=30)

    page.locator("[data-testid='stSidebar']").get_by_role("link", name="Positions").click()
    idle(page)
    condor = page.locator("details.v6-strategy").filter(
        has_text=re.compile(f"iron condor · {SYMBOL}")).first
    expect(condor).to_be_visible(timeout=60_000)
    idle(page)
    if condor.get_attribute("open") is None:               # the first strategies start open
        condor.locator("summary").click()
    expect(condor).to_contain_text(f"{expiry:%Y-%m-%d}")
    choose(page, PANEL, f"iron condor · {SYMBOL}")         # the close/roll panel above the list
    roll = page.get_by_role("button", name="Roll…")
    expect(roll).to_be_visible()
    idle(page)
    roll.click()
    # the Trade page opens on the roll panel (no stale fragment of Positions blanks it)
    expect(page.get_by_role("heading", name=re.compile(f"^Roll iron condor · {SYMBOL}"))).to_be_visible(
        timeout=90_000)
    idle(page)
    expect(page.get_by_text(re.compile(r"chain lines"))).to_be_visible(timeout=90_000)
    idle(page)
    page.get_by_role("button", name="Draft roll", exact=True).click()
    expect(page.get_by_text("Max profit")).to_be_visible(timeout=120_000)
    idle(page)
    assert len(combos(gw)) == 1
    review_and_confirm(page)

    def two_combos():
        found = combos(gw)
        return found if len(found) == 2 else None
    orders = wait_until(two_combos, timeout=30)
    rolled = next(o for o in orders if o.order_id != order.order_id)
    assert len(rolled.combo_legs) == 8
    closes = {leg.con_id: (leg.action, leg.ratio) for leg in rolled.combo_legs if leg.con_id in legs}
    # the roll closes exactly what the condor holds: each leg bought/sold back at its own ratio
    assert closes == {c: ("SELL" if a == "BUY" else "BUY", r) for c, (a, r) in legs.items()}
    assert len({leg.con_id for leg in rolled.combo_legs} - set(legs)) == 4       # and opens four new ones
    assert page.locator("[data-testid='stException']").count() == 0
    context.close()
