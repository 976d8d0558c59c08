"""v6 operator dashboard: navigation, optional password gate, sidebar. Pages live in `pages/`,
shared widgets in `pages/components/` (never a page).

Startup never waits for the gateway: `get_services()` starts the runtime thread and returns, and
the pages show "connecting" until the first data arrives. The very first run of a process (which
also imports the core and opens the lake) draws a "starting" notice first, so the first screen
appears at once.
"""

from __future__ import annotations

import logging
import math

import streamlit as st

from pages.components import startup

st.set_page_config(page_title="v6", page_icon=":material/monitoring:", layout="wide")
# Before anything heavier is imported: a fresh server shows this within a moment of the request.
_starting = startup.starting_notice()

from pages.components import common, rerun_guard  # noqa: E402 (after the first screen, on purpose)
from v6core.auth import GATE  # noqa: E402
from v6core.config import SettingsError  # noqa: E402

AUTH_KEY = "v6_authenticated"
log = logging.getLogger("v6.app")
rerun_guard.install()       # a fragment's timer never turns a pending page switch back

# Every page of the app, by section: (file, title, icon, URL path). Each URL is a deep link.
PAGES = {
    "Live": [
        ("pages/overview.py", "Overview", ":material/dashboard:", "overview"),
        ("pages/positions.py", "Positions", ":material/list:", "positions"),
        ("pages/greeks_risk.py", "Greeks & risk", ":material/ssid_chart:", "greeks_risk"),
    ],
    "Research and trading": [
        ("pages/history.py", "History", ":material/history:", "history"),
        ("pages/signals.py", "Signals", ":material/insights:", "signals"),
        ("pages/orders.py", "Orders", ":material/receipt_long:", "orders"),
        ("pages/trade.py", "Trade", ":material/swap_horiz:", "trade"),
    ],
}


def _only_page(body, title: str) -> None:
    """Navigation with a single page, so Streamlit never lists `pages/` files by itself."""
    st.navigation([st.Page(body, title=title, url_path="start")], position="hidden").run()


def _start():
    try:
        services = common.get_services()
    except SettingsError as exc:
        _only_page(lambda exc=exc: common.settings_error_screen(exc), "Settings error")
        st.stop()
    except Exception as exc:  # anything else at start: one line on screen, traceback in the log
        log.exception("starting services failed")
        _only_page(lambda exc=exc: st.error(f"v6 could not start ({type(exc).__name__}); see the server log."),
                   "Start failed")
        st.stop()
    startup.services_started(_starting)
    common.set_operator_zone(services.settings.time_zone)
    return services


def _password_gate(expected: str) -> None:
    """Stops the run until this session has entered `expected`. Wrong attempts are limited per
    session and process-wide (`v6core.auth.GATE`), with a growing lockout."""
    if not expected or st.session_state.get(AUTH_KEY):
        return

    def login() -> None:
        st.title("v6")
        with st.form("login"):
            entered = st.text_input("Password", type="password")
            submitted = st.form_submit_button("Log in")
        if submitted:
            attempt = GATE.attempt(common.session_id(), entered, expected)
            if attempt.accepted:
                st.session_state[AUTH_KEY] = True
                st.rerun()
            if attempt.refused_unchecked:
                log.warning("password attempt refused during a lockout")
                st.error(f"Too many wrong passwords: try again in {math.ceil(attempt.retry_after)} s. "
                         "An attempt before then is not checked and extends the wait.")
            elif attempt.retry_after > 0:
                log.warning("wrong password; gate locked for %.0f s", attempt.retry_after)
                st.error(f"Wrong password. Too many wrong passwords: try again in "
                         f"{math.ceil(attempt.retry_after)} s.")
            else:
                st.error("Wrong password.")

    _only_page(login, "Log in")
    st.stop()


services = _start()
_password_gate(services.settings.password.get_secret_value())
common.session_id()
sections = {
    section: [st.Page(file, title=title, icon=icon, url_path=url_path) for file, title, icon, url_path in pages]
    for section, pages in PAGES.items()
}
# Streamlit serves its default page at the root only ("/overview" would be "page not found"), so
# the root gets its own entry showing the Overview and every page keeps a working deep link.
home = st.Page(PAGES["Live"][0][0], title="Overview", icon=PAGES["Live"][0][2], url_path="home", default=True)
# Hidden: the sidebar draws the links itself (showSidebarNavigation is off, see .streamlit/config.toml).
navigation = st.navigation([home, *(page for pages in sections.values() for page in pages)], position="hidden")
# The "Live" pages draw their body in one live fragment, which redraws the sidebar's status too.
LIVE_PAGES = {"", "home", *(url_path for *_, url_path in PAGES["Live"])}
common.sidebar(services, list(sections.items()), status_in_page=navigation.url_path in LIVE_PAGES)
if navigation.url_path != "trade" and st.session_state.pop("v6_chain_shown", False) \
        and getattr(services, "chains", None) is not None:
    services.chains.release(common.session_id())    # the chain's market-data lines go with the page
if navigation.url_path != "signals" and st.session_state.pop("v6_signals_quotes", None) is not None \
        and hasattr(services.runtime, "release_quotes"):
    services.runtime.release_quotes("signals-page:" + common.session_id())   # and the Signals page's
navigation.run()
