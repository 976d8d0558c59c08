"""The reconnect schedule itself, driven through outage timelines (the supervisor's code path)."""

from __future__ import annotations

import random

import pytest

from v6core.config import Settings
from v6core.runtime.backoff import REFUSED_RETRY_CAP, ReconnectPolicy, is_refused


def shipped_policy(seed: int = 1) -> ReconnectPolicy:
    s = Settings()
    return ReconnectPolicy(s.backoff_initial, s.backoff_max, s.breaker_failures,
                           s.breaker_cooldown, rng=random.Random(seed))


@pytest.mark.parametrize("outage", [1.0, 10.0, 120.0, 3600.0])
def test_a_closed_port_is_retried_often_and_never_opens_the_breaker(outage):
    for seed in range(20):
        policy = shipped_policy(seed)
        clock, attempts, gaps = 0.0, 0, []
        while clock < outage:
            attempts += 1
            delay = policy.on_refused()
            gaps.append(delay)
            clock += delay
            policy.waited()
            assert policy.breaker == "closed"
        # the first attempt after the port opens comes within one cap: whatever the outage,
        # reconnecting waits at most REFUSED_RETRY_CAP for the schedule
        assert max(gaps) <= REFUSED_RETRY_CAP
        # and the gateway is not hammered: at most about two probes a second
        assert attempts <= 2 * outage / REFUSED_RETRY_CAP + 4


def test_failures_after_connect_back_off_then_open_the_breaker():
    policy = shipped_policy()
    delays = [policy.on_failure() for _ in range(4)]
    assert policy.breaker == "closed"
    assert delays == sorted(delays) or max(delays) <= policy.backoff_max   # exponential, jittered
    assert policy.on_failure() == policy.breaker_cooldown and policy.breaker == "open"
    policy.waited()
    assert policy.breaker == "half-open"
    # a refused port during the half-open trial neither opens nor closes it
    assert policy.on_refused() <= REFUSED_RETRY_CAP and policy.breaker == "half-open"
    assert policy.on_failure() == policy.breaker_cooldown and policy.breaker == "open"
    policy.waited()
    policy.on_connected()
    assert policy.breaker == "closed"


def test_short_sessions_count_as_failures_long_ones_reset():
    policy = shipped_policy()
    for _ in range(policy.breaker_failures - 1):
        policy.on_connected()
        policy.on_session_lost(lasted=0.5)          # flapping: accepted, then dropped at once
    assert policy.failures == policy.breaker_failures - 1 and policy.breaker == "closed"
    policy.on_connected()
    delay = policy.on_session_lost(lasted=3600.0)   # a day's session ending is not a failure
    assert policy.failures == 0 and policy.breaker == "closed"
    assert delay <= min(policy.backoff_initial, REFUSED_RETRY_CAP)


def test_refused_is_told_from_other_errors():
    assert is_refused(ConnectionRefusedError(111, "Connect call failed"))
    assert is_refused(OSError("Multiple exceptions: [Errno 111] Connect call failed ('::1', 4002, 0, 0), "
                              "[Errno 111] Connect call failed ('127.0.0.1', 4002)"))
    assert not is_refused(TimeoutError())
    assert not is_refused(ConnectionResetError(104, "reset by peer"))
    assert not is_refused(ConnectionError("Socket disconnect"))
