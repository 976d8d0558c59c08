"""P&L explained (issue #15): why the book made or lost money between two recorded points.

Attribution by leg, strategy, underlying and book into delta, gamma, theta, vega, trades and an
honest residual, computed from the lake's recorded versions and fills only; an optional full
Black-Scholes revaluation shows what the Greeks approximation missed.
"""

from v6core.explain.attribution import attribute_legs, expiry_close, fills_between, point_spots
from v6core.explain.engine import (
    ExplainCache, combine_steps, explain, explain_frames, read_fills, resolve, trading_day_span,
)
from v6core.explain.model import (
    COMPONENT_LABELS, COMPONENTS, GREEK_COMPONENTS, Explanation, Mode, Point,
)
from v6core.explain.revaluation import revalue

__all__ = [
    "COMPONENTS", "COMPONENT_LABELS", "GREEK_COMPONENTS", "ExplainCache", "Explanation", "Mode", "Point",
    "attribute_legs", "combine_steps", "expiry_close", "explain", "explain_frames", "fills_between",
    "point_spots", "read_fills", "resolve", "revalue", "trading_day_span",
]
