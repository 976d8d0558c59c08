"""AppTest helpers: the app under test, page switching, and the synthetic stand-in fixture."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from tests.app.synthetic import install_stand_in, remove_stand_in, synthetic_snapshot

APP = Path(__file__).resolve().parents[2] / "app.py"
PAGES = {
    "overview": "pages/overview.py",
    "positions": "pages/positions.py",
    "greeks_risk": "pages/greeks_risk.py",
}


def open_page(page: str, timeout: float = 30) -> AppTest:
    """Run the app, then switch to `page` (a key of PAGES or a path) and run it."""
    at = AppTest.from_file(str(APP), default_timeout=timeout)
    at.run()
    path = PAGES.get(page, page)
    if path != PAGES["overview"]:
        at.switch_page(path)
        at.run()
    return at


def unescape(markdown: str) -> str:
    """Text shown for a markdown body written with `common.plain` (backslash escapes removed)."""
    out, escaped = [], False
    for ch in markdown:
        if ch == "\\" and not escaped:
            escaped = True
            continue
        out.append(ch)
        escaped = False
    return "".join(out)


@pytest.fixture(autouse=True)
def navigation_like_a_running_server(request, monkeypatch):
    """AppTest re-enters Streamlit's old `pages/`-folder mode before every run; a server leaves it
    after the first `st.navigation` call (see `common.ensure_app_shell`). Tests marked
    `fresh_server` keep AppTest's behaviour to check that first-request path."""
    if request.node.get_closest_marker("fresh_server"):
        return
    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


@pytest.fixture(autouse=True)
def fresh_page_cache():
    """Synthetic snapshots reuse sequence numbers and times: start each test with no shared results."""
    from pages.components import shared

    shared.clear()
    yield
    shared.clear()


@pytest.fixture
def stand_in(monkeypatch):
    """`get_services()` returns a stand-in serving a synthetic snapshot (no gateway)."""
    monkeypatch.delenv("V6_PASSWORD", raising=False)
    services = install_stand_in(synthetic_snapshot(48))
    yield services
    remove_stand_in()


def pytest_configure(config):
    config.addinivalue_line("markers", "fresh_server: run AppTest in Streamlit's first-request page mode")


def shown_metric(value: str) -> str:
    """An st.metric value as the operator reads it: red/green markup (`:green[...]`) and markdown
    escapes removed."""
    import re

    match = re.fullmatch(r":(?:green|red)\[(.*)\]", value, flags=re.S)
    return unescape(match.group(1) if match else value)
