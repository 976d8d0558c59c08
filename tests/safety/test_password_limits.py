"""Issue #11 defect 9: password attempts are rate-limited, per session and process-wide.

The limiter's arithmetic with a clock the test moves (no sleeping), and the real gate in app.py
through AppTest: 40 wrong passwords in quick succession, then the right one, is not let in.
"""

from __future__ import annotations

import pytest
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from tests.app.conftest import APP
from tests.app.synthetic import install_stand_in, remove_stand_in, synthetic_snapshot
from v6core import auth
from v6core.auth import AttemptLimiter

RIGHT = "s3cret-password"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limiter(clock: Clock, **kw) -> AttemptLimiter:
    return AttemptLimiter(clock=clock, **kw)


def test_forty_wrong_then_right_is_refused_until_the_lockout_passes():
    clock = Clock()
    gate = limiter(clock)
    outcomes = []
    for _ in range(40):
        outcomes.append(gate.attempt("tab-1", "guess", RIGHT))
        clock.now += 0.05                                    # quick succession
    assert not any(a.accepted for a in outcomes)
    assert [a.refused_unchecked for a in outcomes[:4]] == [False] * 4
    assert all(a.refused_unchecked for a in outcomes[4:])   # locked: passwords not even compared
    right = gate.attempt("tab-1", RIGHT, RIGHT)
    assert not right.accepted and right.refused_unchecked
    assert right.retry_after == pytest.approx(gate.max_delay)   # it grew to the cap
    clock.now += right.retry_after - 1
    assert not gate.attempt("tab-1", RIGHT, RIGHT).accepted     # still locked (and extended)
    clock.now += gate.max_delay + 1
    assert gate.attempt("tab-1", RIGHT, RIGHT).accepted


def test_the_delay_grows_with_each_wrong_attempt_after_the_free_ones():
    clock = Clock()
    gate = limiter(clock, session_free=3, process_free=100, base_delay=2.0)
    waits = []
    for _ in range(7):
        attempt = gate.attempt("tab-1", "guess", RIGHT)
        assert not attempt.refused_unchecked                  # each one waited its turn
        waits.append(attempt.retry_after)
        clock.now += attempt.retry_after
    assert waits == [0, 0, 0, 2, 4, 8, 16]


def test_new_sessions_do_not_escape_the_process_wide_limit():
    clock = Clock()
    gate = limiter(clock, session_free=3, process_free=10)
    for i in range(11):                                       # one guess per fresh tab
        assert not gate.attempt(f"tab-{i}", "guess", RIGHT).accepted
    fresh = gate.attempt("tab-new", RIGHT, RIGHT)
    assert not fresh.accepted and fresh.refused_unchecked and fresh.retry_after > 0
    clock.now += fresh.retry_after + 0.01
    assert gate.attempt("tab-new", RIGHT, RIGHT).accepted


def test_a_few_mistakes_cost_nothing_and_old_ones_are_forgotten():
    clock = Clock()
    gate = limiter(clock, forget_after=900)
    for _ in range(3):
        assert gate.attempt("tab-1", "typo", RIGHT).retry_after == 0
    clock.now += 901
    assert gate.attempt("tab-1", "typo", RIGHT).retry_after == 0  # the count started again
    assert gate.attempt("tab-1", RIGHT, RIGHT).accepted


# ---------------------------------------------------------------- the gate in app.py

@pytest.fixture
def gated_app(monkeypatch):
    """app.py over the synthetic stand-in services, with a password and a fresh process gate."""
    original = PagesManager.__init__

    def init(self, *args, **kwargs):           # as a running server does after st.navigation
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)
    monkeypatch.delenv("V6_PASSWORD", raising=False)
    monkeypatch.setattr(auth, "GATE", AttemptLimiter())
    services = install_stand_in(synthetic_snapshot(48))
    services.settings = services.settings.model_copy(update={"password": type(services.settings.password)(RIGHT)})
    yield services
    remove_stand_in()


def log_in(at: AppTest, password: str) -> AppTest:
    at.text_input[0].input(password)
    at.button[0].click().run()
    assert not at.exception
    return at


def test_the_app_refuses_the_right_password_after_forty_wrong_ones(gated_app):
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    for _ in range(40):
        log_in(at, "guess")
    errors = [e.value for e in at.error]
    assert any(e.startswith("Too many wrong passwords: try again in") for e in errors), errors
    log_in(at, RIGHT)
    assert len(at.text_input) == 1 and not at.metric              # still at the gate
    assert any("Too many wrong passwords" in e.value for e in at.error)
    # Another tab (a new session) is held by the process-wide count too.
    other = AppTest.from_file(str(APP), default_timeout=60)
    other.run()
    log_in(other, RIGHT)
    assert len(other.text_input) == 1 and not other.metric
    assert any("Too many wrong passwords" in e.value for e in other.error)


def test_one_typo_then_the_right_password_still_logs_in(gated_app):
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    log_in(at, "typo")
    assert [e.value for e in at.error] == ["Wrong password."]
    log_in(at, RIGHT)
    assert not at.text_input and at.metric
