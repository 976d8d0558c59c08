"""Black-Scholes Greeks, implied vol, validation and position Greeks: pure, vectorised, no I/O.

Units are IB's (see `v6core.models`): per-contract Greeks per share, theta in $ per calendar
day, vega in $ per 1 vol point. The pricing runs through `py_vollib_vectorized`, whose Greeks
are finite differences with exactly those units: theta is the price change over one calendar
day (for the last day: the whole remaining time value), vega the change per 1 vol point.

The first call JIT-compiles numba code (seconds, cached on disk afterwards); `warm_up()` lets the
runtime pay that once at start instead of on the first tick.

Modules, one job each (import public names from this package):
- `expiry`      time to expiry: years to the 16:00 New York close of the expiry day
- `pricing`     Black-Scholes price, Greeks and implied vol on arrays; the numba warm-up
- `fallback`    Greeks for legs IB gave none for (`fill_greeks`), with the reason when impossible
- `validation`  per-contract Greeks checked against market semantics and IB's sentinels
- `position`    position Greeks (THE formula for live state, history and what-if) and totals
"""

from v6core.greeks.expiry import EXPIRY_CLOSE, NEW_YORK, SECONDS_PER_YEAR, year_fraction
from v6core.greeks.fallback import FilledGreeks, GreekRequest, fill_greeks, fill_greeks_explained
from v6core.greeks.position import (
    STOCK_GREEKS,
    position_greeks,
    position_greeks_arrays,
    sum_position_greeks,
)
from v6core.greeks.pricing import (
    GREEK_KEYS,
    IV_MAX,
    MIN_T,
    ONE_DAY,
    bs_greeks,
    bs_price,
    implied_vol,
    warm_up,
)
from v6core.greeks.validation import (
    DELTA_TOLERANCE,
    IB_GREEK_SENTINEL,
    IB_PRICE_SENTINEL,
    IB_UNSET,
    NEGATIVE_TOLERANCE,
    validate_greeks,
)

__all__ = [
    "DELTA_TOLERANCE", "EXPIRY_CLOSE", "GREEK_KEYS", "IB_GREEK_SENTINEL", "IB_PRICE_SENTINEL",
    "IB_UNSET", "IV_MAX", "MIN_T", "NEGATIVE_TOLERANCE", "NEW_YORK", "ONE_DAY", "SECONDS_PER_YEAR",
    "STOCK_GREEKS", "FilledGreeks", "GreekRequest", "bs_greeks", "bs_price", "fill_greeks",
    "fill_greeks_explained", "implied_vol", "position_greeks", "position_greeks_arrays",
    "sum_position_greeks", "validate_greeks", "warm_up", "year_fraction",
]
