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


def _client_state(page: str, fragment: str = "", auto: bool = True):
    from streamlit.proto.ClientState_pb2 import ClientState

    state = ClientState()
    state.page_script_hash = page
    state.fragment_id = fragment
    state.is_auto_rerun = auto
    return state


def test_a_fragment_timer_of_the_page_left_is_stale():
    # The browser's timers keep firing for page A until page B's first message arrives; the
    # sidebar's fragment has the same id on every page, so only the page hash tells them apart.
    assert rerun_guard.is_stale_fragment_rerun("page-B", _client_state("page-A", "sidebar"))
    assert rerun_guard.is_stale_fragment_rerun("page-B", _client_state("page-A", "sidebar", auto=False))
    assert not rerun_guard.is_stale_fragment_rerun("page-B", _client_state("page-B", "sidebar"))
    assert not rerun_guard.is_stale_fragment_rerun("page-B", _client_state("page-A"))      # a full rerun: a click
    assert not rerun_guard.is_stale_fragment_rerun("", _client_state("page-A", "sidebar"))  # before any run
    assert not rerun_guard.is_stale_fragment_rerun("page-B", None)


def test_the_session_drops_a_stale_fragment_rerun_before_running_anything():
    from streamlit.runtime.app_session import AppSession

    rerun_guard.install()

    class LeftPageA:                  # nothing else on it: running the request would raise
        page_script_hash = "page-B"

    assert AppSession.request_rerun(LeftPageA(), _client_state("page-A", "sidebar")) is None
    try:
        AppSession.request_rerun(LeftPageA(), _client_state("page-B", "sidebar"))
    except AttributeError:
        pass                          # a current request reaches Streamlit's own handling
    else:
        raise AssertionError("a fragment rerun of the current page must reach Streamlit")


def test_after_a_switch_the_runner_drops_fragment_reruns_of_the_page_left():
    # st.switch_page (page B) while page A's timers still fire: the session has not seen B start
    # yet, so the runner itself must refuse A's fragments once B is its next full run.
    rerun_guard.install()
    requests = ScriptRequests()
    requests.request_rerun(RerunData(page_script_hash="page-B"))                 # the switch
    assert _pending(requests).page_script_hash == "page-B"                       # B is running now
    requests.request_rerun(RerunData(page_script_hash="page-A", fragment_id="body-A", is_auto_rerun=True))
    requests.request_rerun(RerunData(page_script_hash="page-A", fragment_id="sidebar", is_auto_rerun=True))
    requests.request_rerun(RerunData(page_script_hash="page-B", fragment_id="sidebar", is_auto_rerun=True))
    pending = _pending(requests)
    assert pending.page_script_hash == "page-B"
    assert pending.fragment_id_queue == ["sidebar"]                   # B's own timer only, none of A's
