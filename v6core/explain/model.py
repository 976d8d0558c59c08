"""What an explanation is made of: its two points, its components and its result frames.

Units: every component is dollars of P&L over the span. Inputs follow IB's units (see
`v6core.models`): per-contract theta is $ per share per calendar day, vega $ per share per vol
point, and a position is per-contract x quantity x multiplier.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

import polars as pl


class Mode(str, Enum):
    GREEKS = "greeks"              # start Greeks x recorded changes (Taylor expansion)
    REVALUATION = "revaluation"    # plus a Black-Scholes repricing that measures what the Taylor missed


# Waterfall order. "approximation" exists only in revaluation mode (zero otherwise).
GREEK_COMPONENTS = ("delta", "gamma", "theta", "vega")
COMPONENTS = (*GREEK_COMPONENTS, "approximation", "trades", "residual")
COMPONENT_LABELS = {
    "delta": "Delta", "gamma": "Gamma", "theta": "Theta", "vega": "Vega",
    "approximation": "Greeks approximation", "trades": "Trades", "residual": "Residual",
}

# Leg statuses between the two points.
HELD, RESIZED, OPENED, CLOSED, EXPIRED, ROUND_TRIP, MISSING = (
    "held", "resized", "opened", "closed", "expired", "round trip", "missing")

# A residual is "large" above this share of the move, and above a dollar floor (pennies of
# mark rounding on a quiet minute are not worth a warning).
RESIDUAL_SHARE = 0.10
RESIDUAL_FLOOR = 5.0
BIG_SPOT_MOVE = 0.03               # 3 % of the underlying: second order stops being enough
BIG_IV_MOVE = 5.0                  # vol points
LONG_SPAN_DAYS = 1.5               # start Greeks held fixed over more than this are stale


@dataclass(slots=True, frozen=True)
class Point:
    """One end of the span: the recorded version and its snapshot time."""

    version: int
    time: datetime
    unrealized_pnl: float          # sum of the legs' unrealized P&L recorded at this version


@dataclass(slots=True, frozen=True)
class Explanation:
    """P&L between two recorded versions, split into components; identical whenever recomputed.

    legs: one row per contract seen at either point or traded between them, with status,
        quantities, spots, IVs, marks, `actual`, each of COMPONENTS, commissions, realized_pnl
        (IB's, from the fills), approx_spot/approx_vol/approx_time (revaluation mode) and notes.
    by_strategy / by_underlying: the same money columns summed, plus `legs` and `large_residual`.
    book: one row, the same money columns.
    warnings: why the residual is large (stale Greeks, big move, missing leg), never empty
        when `large_residual` is true for the book.
    """

    start: Point
    end: Point
    mode: Mode
    legs: pl.DataFrame
    by_strategy: pl.DataFrame
    by_underlying: pl.DataFrame
    book: pl.DataFrame
    warnings: tuple[str, ...]
    steps: int = 1                 # > 1 when summed over every recorded version in between

    @property
    def actual(self) -> float:
        return float(self.book["actual"][0])

    @property
    def residual(self) -> float:
        return float(self.book["residual"][0])

    def component(self, name: str) -> float:
        return float(self.book[name][0])

    @property
    def large_residual(self) -> bool:
        return bool(self.book["large_residual"][0])

    def waterfall(self) -> list[tuple[str, float]]:
        """(label, dollars): start P&L, each non-empty component, end P&L (= start + actual)."""
        steps = [("Start P&L", self.start.unrealized_pnl)]
        for name in COMPONENTS:
            value = self.component(name)
            if name == "approximation" and self.mode is not Mode.REVALUATION:
                continue
            steps.append((COMPONENT_LABELS[name], value))
        steps.append(("End P&L", self.start.unrealized_pnl + self.actual))
        return steps
