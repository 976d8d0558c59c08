"""The frame around every page: session id, refresh settings, sidebar, and the page runner.

Refresh rule (docs/architecture.md): live figures rerun inside `st.fragment(run_every=...)` on
the sidebar's interval; the page as a whole reruns only when the operator acts. A whole-page
timer (streamlit-autorefresh) overtook clicks' reruns and lost them, so no page uses one.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import streamlit as st

from pages.components.formatting import DASH, age_seconds, fmt_age, plain, utcnow
from pages.components.startup import ensure_app_shell

log = logging.getLogger("v6.pages")

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


# ---------------------------------------------------------------- connection state

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


def no_legs_notice(snapshot) -> bool:
    """Say why there is no table of legs yet; True when there is none to draw."""
    if snapshot.legs:
        return False
    st.info(no_legs_text(snapshot))
    return True


def no_legs_text(snapshot) -> str:
    return ("No positions yet." if snapshot.connection.state.value == "connected"
            else f"Connecting to the gateway ({connection_line(snapshot.connection)}).")


def _connection_status(services) -> None:
    try:
        _draw_connection_status(services)
    except Exception as exc:  # the status must never turn into a traceback box
        log.exception("sidebar status failed")
        st.error(f"Status unavailable ({type(exc).__name__}); details are in the server log.")


def status_items(services) -> list[tuple[str, str, str]]:
    """The connection status as (kind, text, colour) items, kind one of badge, caption, error and
    warning; captions may hold **bold** (plain() keeps markdown out of everything else)."""
    snapshot = services.runtime.snapshot()
    conn = snapshot.connection
    now = utcnow()
    label, color = _STATE_TEXT.get(conn.state.value, (conn.state.value, "gray"))
    if conn.state.value == "connecting" and _retrying(conn):
        label, color = "reconnecting", "orange"
    items = [("badge", conn.badge, _BADGE_COLOR.get(conn.badge, "gray")), ("badge", label, color),
             ("caption", plain(connection_line(conn, now)), "")]
    if conn.state.value == "disconnected" and conn.last_error:
        items.append(("error", "Last error: " + plain(conn.last_error), ""))
    elif conn.last_error and conn.state.value != "connected":
        items.append(("caption", "Last error: " + plain(conn.last_error), ""))
    if conn.breaker != "closed":
        items.append(("caption", f"Circuit breaker {plain(conn.breaker)}", ""))
    account = snapshot.account.account or conn.account or DASH
    items.append(("caption", f"Account **{plain(account)}** · {plain(conn.host)}:{conn.port}", ""))
    items.append(("caption", f"Data age {fmt_age(age_seconds(snapshot.built_at, now))} · snapshot #{snapshot.seq}", ""))
    if getattr(services, "lake_error", ""):
        items.append(("caption", "History read-only: " + plain(services.lake_error), ""))
    if getattr(services, "lake_status", ""):
        items.append(("caption", plain(services.lake_status), ""))   # who writes snapshots (shared S3 lake)
    for alert in lake_alerts(services):
        items.append(("error" if alert.level == "error" else "warning", plain(alert.message), ""))
    return items


def _draw_connection_status(services) -> None:
    for kind, text, color in status_items(services):
        if kind == "badge":
            st.badge(text, color=color)
        elif kind == "caption":
            st.caption(text)
        else:
            (st.error if kind == "error" else st.warning)(text)


def lake_alerts(services) -> list:
    """The lake's alerts (writer failing, lock lost, damaged tables); none from a stand-in without them."""
    alerts = getattr(services, "lake_alerts", None)
    return list(alerts()) if callable(alerts) else []


def _nearest_choice(seconds: float) -> int:
    return min(REFRESH_CHOICES, key=lambda c: abs(c - seconds))


STATUS_SLOT_KEY = "v6_status_slot"


def sidebar(services, links: list[tuple[str, list[Any]]], *, status_in_page: bool = False) -> None:
    """Page links, connection status and the refresh controls.

    The links are drawn here (st.page_link) because `client.showSidebarNavigation = false` hides
    Streamlit's own page list: that list would show the files under `pages/` before the first
    `st.navigation` call of a fresh server.

    The status refreshes on the sidebar's interval. On a page whose body is one live fragment
    (`status_in_page`: Overview, Positions, Greeks & risk) that fragment redraws the status too,
    into an empty slot left here (`live_fragment`): one script run per refresh and session instead
    of two. A fragment run has a fixed cost in Streamlit (about as much as a page of figures), so
    with ten sessions open the second run was a third of the server's CPU (bench_pages).
    """
    with st.sidebar:
        for section, pages in links:
            st.caption(section)
            for page in pages:
                st.page_link(page)
        st.divider()
        default = _nearest_choice(services.settings.refresh_interval)
        st.select_slider("Refresh every (s)", options=REFRESH_CHOICES, key=REFRESH_KEY,
                         value=st.session_state.get(REFRESH_KEY, default))
        st.toggle("Pause refresh", key=PAUSE_KEY)
        if status_in_page:
            st.session_state[STATUS_SLOT_KEY] = st.empty()
        else:
            st.session_state.pop(STATUS_SLOT_KEY, None)
            st.fragment(_connection_status, run_every=refresh_seconds())(services)


# ---------------------------------------------------------------- page runner


def settings_error_screen(error: Exception) -> None:
    st.error(f"v6 cannot start: {plain(error)}")
    st.caption("Fix the setting (environment `V6_*`, `.env` or `.streamlit/secrets.toml`) and reload.")


def _guarded(body: Callable[[Any], None], services) -> None:
    from v6core.lake import LakeError

    try:
        body(services)
    except LakeError as exc:  # a damaged table: the message names it and the repair command
        log.warning("page stopped by the lake: %s", exc)
        st.error(plain(str(exc)))
    except Exception as exc:  # the operator sees one line; the traceback goes to the log
        log.exception("page failed")
        st.error(f"This page hit an unexpected error ({type(exc).__name__}); details are in the server log.")


def _live(body: Callable[[Any], None], services, slot) -> None:
    if slot is not None:
        with slot.container():
            _connection_status(services)
    _guarded(body, services)


def live_fragment(body: Callable[[Any], None], services) -> None:
    """Run `body(services)` (errors guarded as in `render_page`) as a fragment on the sidebar's
    interval (not while paused); it also redraws the sidebar's connection status into the slot
    the sidebar left for it, if any."""
    slot = st.session_state.get(STATUS_SLOT_KEY)
    st.fragment(_live, run_every=refresh_seconds())(body, services, slot)


def render_page(body: Callable[[Any], None], *, refresh: bool = True) -> None:
    """Run a page body with the shared services; errors become a short message, never a traceback.

    refresh=True: the body is a fragment rerun on the sidebar's interval (not while paused), so a
    refresh redraws the live figures without rerunning the page and never overtakes a click.
    refresh=False: the page draws once per operator action (its own fragments refresh parts).
    """
    ensure_app_shell()
    from pages.components.common import get_services

    services = get_services()
    if refresh:
        live_fragment(body, services)
    else:
        _guarded(body, services)
