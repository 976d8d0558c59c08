"""Fault controls for tests (all off by default). Mutated from any thread; read on the sim loop."""

from __future__ import annotations

import math
import threading
from typing import Callable, Iterable

BAD_GREEK_KINDS = ("nan", "out_of_range", "malformed")


class Faults:
    def __init__(self, on_drop_all: Callable[[], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._withheld: set[int] = set()
        self._bad: dict[int, str] = {}
        self._delay = 0.0
        self._on_drop_all = on_drop_all
        self._extra_positions: list[tuple[str, ...]] = []
        self._account_overrides: dict[str, str] = {}

    # ---- Greeks
    def withhold_greeks(self, con_ids: Iterable[int]) -> None:
        """Send no model Greeks (TICK_OPTION_COMPUTATION) for these contracts, as IB sometimes does."""
        with self._lock:
            self._withheld |= set(con_ids)

    def bad_greeks(self, con_id: int, kind: str = "nan") -> None:
        """Send broken model Greeks for one contract: NaN, out-of-range values or unparsable text."""
        if kind not in BAD_GREEK_KINDS:
            raise ValueError(f"kind must be one of {BAD_GREEK_KINDS}")
        with self._lock:
            self._bad[con_id] = kind

    def delay_replies(self, seconds: float) -> None:
        """Hold every request this long before answering it (0 turns it off)."""
        if seconds < 0 or math.isnan(seconds):
            raise ValueError("seconds must be >= 0")
        with self._lock:
            self._delay = float(seconds)

    # ---- absurd broker numbers
    def inject_positions(self, rows: Iterable[Iterable[object]]) -> None:
        """Also report these positions, verbatim, as a broken gateway would. Each row is the wire
        text of POSITION_DATA after the account: conId, symbol, secType, expiry, strike, right,
        multiplier, exchange, currency, localSymbol, tradingClass, position, avgCost."""
        with self._lock:
            self._extra_positions = [tuple(str(v) for v in row) for row in rows]

    def override_account_values(self, values: dict[str, object]) -> None:
        """Send these account values (tag -> wire text, e.g. InitMarginReq "-5000") instead."""
        with self._lock:
            self._account_overrides = {k: str(v) for k, v in values.items()}

    def drop_all_clients(self) -> None:
        """Close every client connection at once, like a gateway restart."""
        if self._on_drop_all is not None:
            self._on_drop_all()

    def clear(self) -> None:
        with self._lock:
            self._withheld.clear()
            self._bad.clear()
            self._delay = 0.0
            self._extra_positions = []
            self._account_overrides = {}

    # ---- read side (sim loop)
    @property
    def delay(self) -> float:
        return self._delay

    def extra_positions(self) -> list[tuple[str, ...]]:
        with self._lock:
            return list(self._extra_positions)

    def account_override(self, tag: str, value: str) -> str:
        with self._lock:
            return self._account_overrides.get(tag, value)

    def greeks_mode(self, con_id: int) -> str | None:
        """None: normal; "withhold" or one of BAD_GREEK_KINDS."""
        if not self._withheld and not self._bad:
            return None
        with self._lock:
            if con_id in self._withheld:
                return "withhold"
            return self._bad.get(con_id)


def corrupt_greeks(kind: str, und_price: float) -> tuple:
    """(iv, delta, price, gamma, vega, theta, und) for a broken TICK_OPTION_COMPUTATION."""
    if kind == "nan":
        nan = float("nan")
        return nan, nan, nan, nan, nan, nan, und_price
    if kind == "out_of_range":
        return 42.0, 1.8, -5.0, -0.7, -3.0, 1e9, und_price
    return 0.3, "delta?", "n/a", "0.01x", "bad", "", und_price
