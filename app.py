"""v6 operator dashboard: navigation, optional password gate, sidebar. Pages live in `pages/`.

Startup never waits for the gateway: `get_services()` starts the runtime thread and returns, and
the pages show "connecting" until the first data arrives.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import streamlit as st

from pages import common
from v6core.auth import GATE
from v6core.config import SettingsError

ROOT = Path(__file__).resolve().parent
AUTH_KEY = "v6_authenticated"
log = logging.getLogger("v6.app")

st.set_page_config(page_title="v6", page_icon=":material/monitoring:", layout="wide")


def _only_page(body, title: str) -> None:
    """Navigation with a single page, so Streamlit never lists `pages/` files by itself."""
    st.navigation([st.Page(body, title=title, url_path="start")], position="hidden").run()


def _start():
    try:
        return common.get_services()
    except SettingsError as exc:
        _only_page(lambda exc=exc: common.settings_error_screen(exc), "Settings error")
    except Exception as exc:  # anything else at start: one line on screen, traceback in the log
        log.exception("starting services failed")
        _only_page(lambda exc=exc: st.error(f"v6 could not start ({type(exc).__name__}); see the server log."),
                   "Start failed")
    st.stop()


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


def _placeholder(title: str, issue: str):
    def page() -> None:
        st.title(title)
        st.info(f"{title} arrives with its issue ({issue}).")

    page.__name__ = f"placeholder_{title.lower()}"
    return page


def _file_or_placeholder(file: str, title: str, icon: str, issue: str) -> st.Page:
    url_path = Path(file).stem
    if (ROOT / file).is_file():
        return st.Page(file, title=title, icon=icon, url_path=url_path)
    return st.Page(_placeholder(title, issue), title=title, icon=icon, url_path=url_path)


services = _start()
_password_gate(services.settings.password.get_secret_value())
common.session_id()
common.sidebar(services)

navigation = st.navigation({
    "Live": [
        st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:", url_path="overview",
                default=True),
        st.Page("pages/positions.py", title="Positions", icon=":material/list:", url_path="positions"),
        st.Page("pages/greeks_risk.py", title="Greeks & risk", icon=":material/ssid_chart:",
                url_path="greeks_risk"),
    ],
    "Research and trading": [
        _file_or_placeholder("pages/history.py", "History", ":material/history:", "the Delta lake issue"),
        _file_or_placeholder("pages/signals.py", "Signals", ":material/insights:", "the signals issue"),
        _file_or_placeholder("pages/orders.py", "Orders", ":material/receipt_long:", "the orders issue"),
    ],
})
navigation.run()
