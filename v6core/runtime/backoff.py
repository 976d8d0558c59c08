"""The reconnect schedule: when to try the gateway again, and when to stop trying for a while.

Two kinds of failure mean different things, so they are kept apart:

- **The port refuses** (nothing listens: the gateway is restarting; IB Gateway restarts daily).
  Probing a closed port costs the gateway nothing (one SYN answered by a RST), so retries stay
  frequent, capped at `REFUSED_RETRY_CAP` seconds, and never open the circuit breaker: v6 is
  back within about a cap of the gateway listening again, however long it was down.
- **A failure after the socket connected** (handshake timeout, API refusal, a session that
  dies within `STABLE_SESSION` seconds). The gateway is up but unhappy and hammering it makes
  things worse: these back off exponentially up to `backoff_max` and, after `breaker_failures`
  in a row, open the circuit breaker for `breaker_cooldown` seconds, then allow one half-open
  trial.

`ReconnectPolicy` is pure (no I/O, no clock of its own): the supervisor feeds it outcomes and
sleeps for the delays it returns, and tests drive it through an outage timeline the same way.
"""

from __future__ import annotations

import errno
import random
from dataclasses import dataclass, field

# A closed local port is retried at least this often (seconds, before jitter).
REFUSED_RETRY_CAP = 1.0
# A session that lasted this long was healthy: its loss is not a failure of the gateway.
STABLE_SESSION = 10.0


def is_refused(exc: BaseException) -> bool:
    """True when nothing listens on the gateway's port (as opposed to a failure after connect)."""
    if isinstance(exc, ConnectionRefusedError):
        return True
    if isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED:
        return True
    # asyncio's create_connection joins the errors of several addresses (::1, 127.0.0.1)
    text = str(exc)
    return (isinstance(exc, OSError) and text.startswith("Multiple exceptions:")
            and text.count("Connect call failed") >= 2 and "Errno 111" in text)


@dataclass
class ReconnectPolicy:
    backoff_initial: float
    backoff_max: float
    breaker_failures: int
    breaker_cooldown: float
    refused_cap: float = REFUSED_RETRY_CAP
    stable_session: float = STABLE_SESSION
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0          # failures after connect, in a row
    refused: int = 0           # refused attempts, in a row
    breaker: str = "closed"    # closed / open / half-open

    def _jitter(self, base: float) -> float:
        # between half and all of the base: clients restarted together do not retry in step
        return base * self.rng.uniform(0.5, 1.0)

    def _exponential(self, count: int, cap: float) -> float:
        return min(cap, self.backoff_initial * 2.0 ** min(max(count - 1, 0), 60))

    def on_refused(self) -> float:
        """The port refused: the delay before the next attempt (the breaker is untouched)."""
        self.refused += 1
        return self._jitter(self._exponential(self.refused, min(self.refused_cap, self.backoff_max)))

    def on_failure(self) -> float:
        """A failure after connect: the delay before the next attempt (the cooldown if it opened
        the breaker)."""
        self.refused = 0
        self.failures += 1
        if self.breaker == "half-open" or self.failures >= self.breaker_failures:
            self.breaker = "open"
            return self.breaker_cooldown
        return self._jitter(self._exponential(self.failures, self.backoff_max))

    def on_connected(self) -> None:
        """The handshake succeeded; whether it counts as healthy is judged when the session ends."""
        self.refused = 0
        self.breaker = "closed"

    def on_session_lost(self, lasted: float) -> float:
        """The session ended after `lasted` seconds: a short one is a failure, a long one is not."""
        if lasted < self.stable_session:
            return self.on_failure()
        self.failures = 0
        return self._jitter(min(self.backoff_initial, self.refused_cap))

    def waited(self) -> None:
        """The delay is over: an open breaker allows one trial."""
        if self.breaker == "open":
            self.breaker = "half-open"
