"""Keep an operator's page switch when a fragment's timer fires before it has started.

Streamlit folds every rerun request that arrives before the script thread picks up the pending
one into a single request, and the newest request's page wins. A sidebar click (a full rerun of
page B) that is still pending while page A's live fragment timer fires becomes a full rerun of
page A: the click is lost. That happens whenever the running script is busy between two
Streamlit calls (a page building its data under CPU load), which is exactly when a trader's
clicks matter. A fragment's timer rerun adds nothing to a pending full rerun (the full run
reruns every fragment anyway), so it is dropped here instead of being folded in.

Installed once per process by app.py; the rest of Streamlit's behaviour is untouched.
"""

from __future__ import annotations

import threading

from streamlit.runtime.scriptrunner_utils import script_requests as _requests

_installed = False
_lock = threading.Lock()


def _is_timer_fragment_rerun(data) -> bool:
    return bool(data.is_auto_rerun and (data.fragment_id or data.fragment_id_queue))


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
            return original(self, new_data)

        _requests.ScriptRequests._request_rerun_locked = request_rerun_locked
        _installed = True
