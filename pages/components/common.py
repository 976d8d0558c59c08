"""Shared pieces of the dashboard pages (not a page itself).

- `get_services()`: THE process-wide factory (one runtime, one IB connection for every tab).
- number/age formatting, so every page writes money, Greeks and ages the same way;
- the sidebar (connection badge and state, account, data age, refresh interval and pause);
- `render_page()`: runs a page body so an unexpected error shows a short message, never a
  traceback, and watch-only pages refresh on the sidebar's interval.
"""

from __future__ import annotations

import logging
import math
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import streamlit as st

from v6core.config import load_settings

log = logging.getLogger("v6.pages")


# Keep this factory tiny and stable: Streamlit keys the cache on its source, so any edit here
# starts a second runtime (and a second IB connection) in a running server.
@st.cache_resource(show_spinner=False)
def get_services():
    from v6core.services import start_services

    return start_services(load_settings())


# ---------------------------------------------------------------- session

SESSION_KEY = "v6_session_id"
REFRESH_KEY = "v6_refresh_seconds"
PAUSE_KEY = "v6_refresh_paused"
REFRESH_CHOICES = (1, 2, 3, 5, 10, 15, 30, 60)


def session_id() -> str:
    """A random id for this browser session (stable across reruns, new per tab)."""
    if SESSION_KEY not in st.session_state:
        st.session_state[SESSION_KEY] = uuid.uuid4().hex
    return st.session_state[SESSION_KEY]


def refresh_seconds() -> int | None:
    """The sidebar's refresh interval in seconds, or None while the operator paused refresh."""
    if st.session_state.get(PAUSE_KEY, False):
        return None
    return int(st.session_state.get(REFRESH_KEY, REFRESH_CHOICES[1]))


# ---------------------------------------------------------------- formatting

DASH = "—"
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def _missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def fmt_money(value: float | None, *, signed: bool = False, decimals: int = 2) -> str:
    """`$1,234.56`; signed: `+$1,234.56` / `-$1,234.56`."""
    if _missing(value):
        return DASH
    value = round(float(value), decimals) + 0.0
    sign = "-" if value < 0 else ("+" if signed and value > 0 else "")
    return f"{sign}${abs(value):,.{decimals}f}"


def fmt_number(value: float | None, *, decimals: int = 2, signed: bool = True) -> str:
    """`+1,234.57` (signed by default: Greeks and quantities have a direction)."""
    if _missing(value):
        return DASH
    value = round(float(value), decimals) + 0.0  # no "-0.0" for tiny negatives
    return f"{value:+,.{decimals}f}" if signed and value != 0 else f"{value:,.{decimals}f}"


def fmt_pct(value: float | None, *, decimals: int = 1, signed: bool = False) -> str:
    if _missing(value):
        return DASH
    return f"{value:+,.{decimals}f}%" if signed else f"{value:,.{decimals}f}%"


# Position Greeks precision: delta and dollar amounts read in whole-ish units, gamma is small.
GREEK_DECIMALS = {"delta": 1, "gamma": 2, "theta": 2, "vega": 2, "dollar_delta": 0, "beta_delta": 1}
# One look for a table of legs, live (Positions) or recorded (History).
LEG_COLUMN_CONFIG = {
    "Contract": st.column_config.TextColumn(pinned=True),
    "Qty": st.column_config.NumberColumn(format="%+,d", help="Signed: negative is short"),
    "Avg cost": st.column_config.NumberColumn(format="%,.2f", help="Average price per share"),
    "Mark": st.column_config.NumberColumn(format="%,.2f", help="Mid, else last, else close (per share), when quoted or recorded"),
    "Mkt value": st.column_config.NumberColumn(format="%+,.2f"),
    "P&L": st.column_config.NumberColumn(format="%+,.2f", help="Unrealized P&L ($)"),
    "P&L %": st.column_config.NumberColumn(format="%+,.1f%%", help="Unrealized P&L / |cost basis|"),
    "Day P&L": st.column_config.NumberColumn(format="%+,.2f"),
    "Delta": st.column_config.NumberColumn(format="%+,.1f", help="Position delta, share-equivalents"),
    "Gamma": st.column_config.NumberColumn(format="%+,.2f", help="Position gamma, shares per $1"),
    "Theta $/day": st.column_config.NumberColumn(format="%+,.2f"),
    "Vega $/vol pt": st.column_config.NumberColumn(format="%+,.2f"),
    "Delta/contract": st.column_config.NumberColumn(format="%+.3f", help="Per-contract delta, in [-1, 1]"),
    "IV %": st.column_config.NumberColumn(format="%.1f"),
    "DTE": st.column_config.NumberColumn(format="%d", help="Calendar days to expiry (0 = expires today), when quoted or recorded"),
    "Greeks": st.column_config.TextColumn(help="IB = IB's model; COMPUTED = v6 (py_vollib); NONE = kept out of totals"),
    "Quote age": st.column_config.NumberColumn(format="%.0f s"),
    "Flags": st.column_config.TextColumn(help="Validation problems; flagged legs are kept out of the totals"),
}


GREEK_LABELS = {
    "delta": "Delta (shares)",
    "gamma": "Gamma (shares per $1)",
    "theta": "Theta ($/day)",
    "vega": "Vega ($ per vol pt)",
    "dollar_delta": "Dollar delta ($)",
    "beta_delta": "Beta-weighted delta (SPY sh)",
}


def fmt_greek(name: str, value: float | None) -> str:
    """A position Greek with the precision the dashboard uses everywhere (units live in labels)."""
    return fmt_number(value, decimals=GREEK_DECIMALS[name])


def fmt_age(seconds: float | None) -> str:
    """`3 s`, `4 min`, `2 h 5 min`, `3 d`."""
    if _missing(seconds):
        return DASH
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min"
    if seconds < 86400:
        hours, rest = divmod(seconds, 3600)
        return f"{hours:.0f} h {rest // 60:.0f} min"
    return f"{seconds // 86400:.0f} d"


def age_seconds(then: datetime | None, now: datetime | None = None) -> float | None:
    if then is None:
        return None
    return ((now or utcnow()) - then).total_seconds()


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def plain(text: Any) -> str:
    """Text from outside (IB, gateway, LLM) made inert for Streamlit's markdown renderer."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


# ---------------------------------------------------------------- sidebar

_STATE_TEXT = {
    "connected": ("connected", "green"),
    "degraded": ("degraded", "orange"),
    "connecting": ("connecting", "blue"),
    "disconnected": ("down", "red"),
}
_BADGE_COLOR = {"SIM": "blue", "PAPER": "orange", "LIVE": "red"}


def _retrying(connection) -> bool:
    return connection.state.value in ("connecting", "disconnected") and (
        connection.next_retry_at is not None or connection.attempts > 1 or bool(connection.last_error))


def no_legs_notice(snapshot) -> bool:
    """Say why there is no table of legs yet; True when there is none to draw."""
    if snapshot.legs:
        return False
    st.info("No positions yet." if snapshot.connection.state.value == "connected"
            else f"Connecting to the gateway ({connection_line(snapshot.connection)}).")
    return True


def connection_line(connection, now: datetime | None = None) -> str:
    """One line of connection state, e.g. `reconnecting, next try in 3 s (attempt 2)`."""
    now = now or utcnow()
    state = connection.state.value
    if _retrying(connection):
        if connection.next_retry_at is not None:
            wait = max(0.0, (connection.next_retry_at - now).total_seconds())
            return f"reconnecting, next try in {wait:.0f} s (attempt {connection.attempts})"
        return f"reconnecting (attempt {connection.attempts})"
    if state == "connected" and connection.connected_since is not None:
        return f"connected for {fmt_age(age_seconds(connection.connected_since, now))}"
    return _STATE_TEXT.get(state, (state, "gray"))[0]


def _connection_status(services) -> None:
    try:
        _draw_connection_status(services)
    except Exception as exc:  # the status must never turn into a traceback box
        log.exception("sidebar status failed")
        st.error(f"Status unavailable ({type(exc).__name__}); details are in the server log.")


def _draw_connection_status(services) -> None:
    snapshot = services.runtime.snapshot()
    conn = snapshot.connection
    now = utcnow()
    label, color = _STATE_TEXT.get(conn.state.value, (conn.state.value, "gray"))
    if conn.state.value == "connecting" and _retrying(conn):
        label, color = "reconnecting", "orange"
    st.badge(conn.badge, color=_BADGE_COLOR.get(conn.badge, "gray"))
    st.badge(label, color=color)
    st.caption(plain(connection_line(conn, now)))
    if conn.state.value == "disconnected" and conn.last_error:
        st.error("Last error: " + plain(conn.last_error))
    elif conn.last_error and conn.state.value != "connected":
        st.caption("Last error: " + plain(conn.last_error))
    if conn.breaker != "closed":
        st.caption(f"Circuit breaker {plain(conn.breaker)}")
    account = snapshot.account.account or conn.account or DASH
    st.caption(f"Account **{plain(account)}** · {plain(conn.host)}:{conn.port}")
    st.caption(f"Data age {fmt_age(age_seconds(snapshot.built_at, now))} · snapshot #{snapshot.seq}")
    if getattr(services, "lake_error", ""):
        st.caption("History read-only: " + plain(services.lake_error))


def sidebar(services) -> None:
    """Connection status (self-refreshing fragment) and the refresh controls."""
    with st.sidebar:
        default = _nearest_choice(services.settings.refresh_interval)
        st.select_slider("Refresh every (s)", options=REFRESH_CHOICES, key=REFRESH_KEY,
                         value=st.session_state.get(REFRESH_KEY, default))
        st.toggle("Pause refresh", key=PAUSE_KEY)
        interval = refresh_seconds()
        # A fragment keeps the status current on pages that do not refresh whole (tickets).
        st.fragment(_connection_status, run_every=interval)(services)


def _nearest_choice(seconds: float) -> int:
    return min(REFRESH_CHOICES, key=lambda c: abs(c - seconds))


def auto_refresh() -> None:
    """Rerun a watch-only page on the sidebar's interval (unless paused)."""
    interval = refresh_seconds()
    if interval is None:
        return
    from streamlit_autorefresh import st_autorefresh

    st_autorefresh(interval=interval * 1000, key="v6_autorefresh")


# ---------------------------------------------------------------- page shell


def settings_error_screen(error: Exception) -> None:
    st.error(f"v6 cannot start: {plain(error)}")
    st.caption("Fix the setting (environment `V6_*`, `.env` or `.streamlit/secrets.toml`) and reload.")


def ensure_app_shell() -> None:
    """Make sure this run went through app.py (password gate, sidebar) before a page draws.

    Until the first `st.navigation` call of the process, Streamlit treats a `pages/` folder next to
    the main script the old way and runs a file of it on its own when the URL names it (e.g. the
    first request after start is `/orders`): that would skip the gate. Switch that mode off and
    rerun, so the same page is drawn again through app.py.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def render_page(body: Callable[[Any], None], *, refresh: bool = True) -> None:
    """Run a page body with the shared services; errors become a short message, never a traceback."""
    ensure_app_shell()
    try:
        services = get_services()
        if refresh:
            auto_refresh()
        body(services)
    except Exception as exc:  # the operator sees one line; the traceback goes to the log
        log.exception("page failed")
        st.error(f"This page hit an unexpected error ({type(exc).__name__}); details are in the server log.")
