"""The first screen of a fresh server, before anything heavy is imported.

Kept tiny on purpose (streamlit only): app.py and every page import it first, so the
"connecting" notice is on screen within a moment of the first request while the core
(ib_async, Delta Lake, py_vollib) is still being imported and started.
"""

from __future__ import annotations

import gc

import streamlit as st

_services_started = False


def starting_notice():
    """A "connecting" notice until the services of this process have started once; else None."""
    if _services_started:
        return None
    notice = st.empty()
    notice.info("Connecting: starting v6 (gateway connection, history, order desk)…",
                icon=":material/hourglass_top:")
    return notice


def services_started(notice) -> None:
    global _services_started
    if not _services_started:
        # Everything imported and started so far lives as long as the process: out of the cyclic
        # collector's reach, so its full collections scan only what pages made since (they ran
        # 60-90 ms into a page run at 500 legs: bench_pages with the collector on and off).
        gc.freeze()
    _services_started = True
    if notice is not None:
        notice.empty()


def ensure_app_shell() -> None:
    """Make sure this run went through app.py (password gate, sidebar) before a page draws.

    Until the first `st.navigation` call of the process, Streamlit treats a `pages/` folder next to
    the main script the old way and runs a file of it on its own when the URL names it (e.g. the
    first request after start is `/orders`): that would skip the gate. Switch that mode off and
    rerun, so the same page is drawn again through app.py. Pages call this before their heavy
    imports, so that first request reaches app.py's "connecting" notice at once.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
