"""A pending page switch survives a fragment's timer (pages/components/rerun_guard.py).

Streamlit folds reruns requested before the script thread picks one up; the newest request's
page wins. Without the guard a live fragment's timer turns a pending sidebar click (page B)
back into a rerun of the page being left (A): the click is lost (issue #12, defect 1)."""

from __future__ import annotations

from streamlit.runtime.scriptrunner_utils.script_requests import (
    RerunData,
    ScriptRequests,
    ScriptRequestType,
)

from pages.components import rerun_guard


def _pending(requests: ScriptRequests) -> RerunData:
    request = requests.on_scriptrunner_ready()     # as when the running script has finished
    assert request is not None and request.type == ScriptRequestType.RERUN
    return request.rerun_data


def test_a_timer_fragment_rerun_keeps_the_pending_page_switch():
    rerun_guard.install()
    requests = ScriptRequests()
    requests.request_rerun(RerunData(page_script_hash="page-B"))                 # the click
    requests.request_rerun(RerunData(page_script_hash="page-A", fragment_id="live-body",
                                     is_auto_rerun=True))                       # page A's timer
    pending = _pending(requests)
    assert pending.page_script_hash == "page-B"
    assert not pending.fragment_id_queue                                         # a full rerun


def test_other_requests_fold_as_streamlit_folds_them():
    rerun_guard.install()
    requests = ScriptRequests()
    requests.request_rerun(RerunData(page_script_hash="page-A", fragment_id="live-body", is_auto_rerun=True))
    requests.request_rerun(RerunData(page_script_hash="page-B"))                 # a click after a timer
    assert _pending(requests).page_script_hash == "page-B"
    requests.request_rerun(RerunData(page_script_hash="page-B", fragment_id="f1", is_auto_rerun=True))
    requests.request_rerun(RerunData(page_script_hash="page-B", fragment_id="f2", is_auto_rerun=True))
    pending = _pending(requests)
    assert pending.fragment_id_queue == ["f1", "f2"]                             # timers still coalesce
