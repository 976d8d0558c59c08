"""Keep an operator's page switch when a fragment's timer fires before it has started.

Streamlit folds every rerun request that arrives before the script thread picks up the pending
one into a single request, and the newest request's page wins. A sidebar click (a full rerun of
page B) that is still pending while page A's live fragment timer fires becomes a full rerun of
page A: the click is lost. That happens whenever the running script is busy between two
Streamlit calls (a page building its data under CPU load), which is exactly when a trader's
clicks matter. A fragment's timer rerun adds nothing to a pending full rerun (the full run
reruns every fragment anyway), so it is dropped here instead of being folded in.

A second race sits one step later. The browser's fragment timers keep firing for the page it is
leaving until the new page's first message reaches it, and each of those requests carries the old
page's script hash. The sidebar's live fragment has the same id on every page, so Streamlit's own
"fragment no longer exists" check lets it through: the session then runs it as the *old* page,
tells the browser that page is current, the browser clears the new page's body, and the new
page's fragments next write into a container that is gone ("Bad delta path index 9 (should be
between [0, 0])"): a blank screen and a lost connection right after "Close this leg" switched to
Orders. A fragment rerun for a page other than the one the session last ran is stale and is
dropped here.

Installed once per process by app.py; the rest of Streamlit's behaviour is untouched.
"""

from __future__ import annotations

import threading

from streamlit.runtime import app_session as _app_session
from streamlit.runtime.scriptrunner_utils import script_requests as _requests

_installed = False
_lock = threading.Lock()


def _is_timer_fragment_rerun(data) -> bool:
    return bool(data.is_auto_rerun and (data.fragment_id or data.fragment_id_queue))


def is_stale_fragment_rerun(current_page: str, client_state) -> bool:
    """A fragment rerun the browser asked for on a page the session has since left."""
    if client_state is None or not client_state.fragment_id:
        return False
    asked_for = client_state.page_script_hash
    return bool(current_page and asked_for and asked_for != current_page)


def install() -> None:
    global _installed
    with _lock:
        if _installed:
            return
        original = _requests.ScriptRequests._request_rerun_locked

        def request_rerun_locked(self, new_data):
            if (self._state == _requests.ScriptRequestType.RERUN
                    and _requests._is_full_app_rerun(self._rerun_data)
                    and _is_timer_fragment_rerun(new_data)):
                return True          # the pending full rerun (maybe another page) runs every fragment
            page = getattr(self, "_v6_page", "")
            if ((new_data.fragment_id or new_data.fragment_id_queue)
                    and page and new_data.page_script_hash and new_data.page_script_hash != page):
                return True          # a fragment of the page a switch (st.switch_page) has left
            if _requests._is_full_app_rerun(new_data) and self._state != _requests.ScriptRequestType.STOP:
                self._v6_page = new_data.page_script_hash    # the page this runner runs next
            return original(self, new_data)

        _requests.ScriptRequests._request_rerun_locked = request_rerun_locked

        original_session_rerun = _app_session.AppSession.request_rerun

        def session_request_rerun(self, client_state):
            if is_stale_fragment_rerun(self.page_script_hash, client_state):
                return None          # the browser's timer for a page this session has left
            return original_session_rerun(self, client_state)

        _app_session.AppSession.request_rerun = session_request_rerun
        _installed = True
