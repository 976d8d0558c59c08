"""With no gateway listening, the app still starts and every page draws its "connecting" state.

The real runtime in mode "ib" is pointed at a port where nothing listens, so it keeps retrying
with backoff; the sidebar must say so (countdown, last error) and no page may fail.
"""

from __future__ import annotations

import socket

import pytest

from pages.components import common
from tests.app.conftest import open_page, unescape
from tests.app.leg_tables import feed_html
from tests.app.synthetic import remove_stand_in


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]          # released at once: nothing listens there


@pytest.fixture(scope="module")
def unreachable_services(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("V6_MODE", "ib")
        mp.setenv("V6_IB_PORT", str(_closed_port()))
        mp.setenv("V6_CONNECT_TIMEOUT", "1")
        mp.setenv("V6_LAKE_PATH", str(tmp_path_factory.mktemp("lake")))
        mp.delenv("V6_PASSWORD", raising=False)
        remove_stand_in()
        services = common.get_services()
        try:
            failed = services.runtime.wait_for(lambda s: bool(s.connection.last_error), 30)
            assert failed is not None, "the runtime never reported the failed connection"
            yield services
        finally:
            services.stop()
            common.get_services.clear()


def test_overview_shows_dashes_and_the_reconnect_state(unreachable_services):
    at = open_page("overview", timeout=60)
    assert not at.exception
    assert {m.value for m in at.metric} == {"—"}
    shown = [unescape(i.value) for i in at.info] + [feed_html(at)]     # Positions: its live feed
    assert any("Connecting to the gateway" in text for text in shown)
    sidebar = " ".join(unescape(c.value) for c in at.sidebar.caption) + " ".join(
        unescape(e.value) for e in at.sidebar.error)
    assert ":blue-badge[SIM]" not in [m.value for m in at.sidebar.markdown]
    assert ":orange-badge[PAPER]" in [m.value for m in at.sidebar.markdown]
    assert "reconnecting" in sidebar
    assert "Last error: connect to 127.0.0.1:" in sidebar and "Connect call failed" in sidebar


@pytest.mark.parametrize("page", ["positions", "greeks_risk"])
def test_live_pages_say_connecting(unreachable_services, page):
    at = open_page(page, timeout=60)
    assert not at.exception and not at.main.error
    shown = [unescape(i.value) for i in at.info] + [feed_html(at)]     # Positions: its live feed
    assert any("Connecting to the gateway" in text for text in shown)
