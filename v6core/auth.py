"""The password gate's rules: a constant-time comparison behind a limit on wrong attempts.

Wrong passwords are counted per browser session and for the whole process (a new tab is a new
session, so the per-session count alone would not stop guessing). After a few free mistakes each
further one locks the gate for a delay that doubles, up to `max_delay`; while locked, an attempt
is refused without looking at the password (so even the right one waits for the lockout to pass)
and counts as a wrong one.
Counts are forgotten after `forget_after` seconds without a wrong attempt; a right password
clears its session's count (not the process-wide one, which an attacker's other sessions built).

The limiter is a module-level object (`GATE`), not Streamlit state: neither a session reset nor a
client's "Clear cache" can reset it.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Count:
    failures: int = 0
    last_failure: float = float("-inf")
    locked_until: float = float("-inf")


@dataclass(slots=True, frozen=True)
class Attempt:
    accepted: bool
    retry_after: float          # seconds until the next attempt is looked at (0: now)
    refused_unchecked: bool     # True when the gate was locked and the password was not compared


class AttemptLimiter:
    def __init__(self, *, session_free: int = 3, process_free: int = 10, base_delay: float = 2.0,
                 max_delay: float = 900.0, forget_after: float = 900.0, max_sessions: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.session_free = session_free
        self.process_free = process_free
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.forget_after = forget_after
        self.max_sessions = max_sessions
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, _Count] = {}
        self._process = _Count()

    # -- reading
    def retry_after(self, session: str) -> float:
        """Seconds before an attempt of `session` is looked at (0 when it may try now)."""
        with self._lock:
            now = self._clock()
            return self._wait(now, self._session(session, now))

    # -- trying
    def attempt(self, session: str, entered: str, expected: str) -> Attempt:
        with self._lock:
            now = self._clock()
            count = self._session(session, now)
            wait = self._wait(now, count)
            if wait > 0:
                # Trying again while told to wait is what a guessing script does: it counts as a
                # wrong attempt (the lockout grows) and the password is not even compared.
                self._fail(now, count, self.session_free)
                self._fail(now, self._process, self.process_free)
                return Attempt(False, self._wait(now, count), True)
            if hmac.compare_digest(entered.encode("utf-8"), expected.encode("utf-8")):
                self._sessions.pop(session, None)
                return Attempt(True, 0.0, False)
            self._fail(now, count, self.session_free)
            self._fail(now, self._process, self.process_free)
            return Attempt(False, self._wait(now, count), False)

    # -- inside
    def _session(self, session: str, now: float) -> _Count:
        self._forget(now)
        count = self._sessions.get(session)
        if count is None:
            if len(self._sessions) >= self.max_sessions:   # bounded memory under a flood of tabs
                oldest = min(self._sessions, key=lambda k: self._sessions[k].last_failure)
                del self._sessions[oldest]
            count = self._sessions[session] = _Count()
        return count

    def _forget(self, now: float) -> None:
        for key in [k for k, c in self._sessions.items() if now - c.last_failure > self.forget_after
                    and now >= c.locked_until]:
            del self._sessions[key]
        if now - self._process.last_failure > self.forget_after and now >= self._process.locked_until:
            self._process = _Count()

    def _fail(self, now: float, count: _Count, free: int) -> None:
        count.failures += 1
        count.last_failure = now
        if count.failures > free:
            delay = min(self.max_delay, self.base_delay * 2 ** (count.failures - free - 1))
            count.locked_until = max(count.locked_until, now + delay)

    def _wait(self, now: float, count: _Count) -> float:
        return max(0.0, count.locked_until - now, self._process.locked_until - now)


GATE = AttemptLimiter()
