"""Group position legs into the strategies a trader would name: pure, deterministic, explained.

Per account and underlying, a greedy matcher tries the most specific shapes first and takes as
many units of each as the quantities allow, then moves on:

    iron condor / iron butterfly (and their reverse, long-inside versions)
    -> butterfly (1-2-1, one right, one expiry, equal wings)
    -> vertical (credit/debit)  -> straddle  -> strangle       (one expiry before ...)
    -> calendar  -> diagonal                                  (... shapes across expiries)
    -> collar  -> covered call  -> protective put   (100 shares per contract: the multiplier)
    -> single legs (long call, short put, ...)  -> stock  -> custom (anything not a stock/option)

Within one shape the tightest candidate wins (narrowest wings, nearest expiries, lowest strikes,
then conIds), so the result depends only on the set of positions, never on their order. A leg
can be split: 3 short puts of which 2 sit in iron condors leave 1 as a "short put"; each
`Strategy.quantities` says how much of each conId it holds.

Strategy ids are `kind:underlying:hash(account, sorted conIds)`, stable across runs and
across size changes of the same structure.

Modules, one job each (import public names from this package):
- `book`       a leg's structure as the matcher sees it, a match, the quantities still unmatched
- `shapes`     the shape finders, in the order above, read side by side
- `matcher`    the greedy matcher per book, leftovers as single legs, ids, the cached plan
- `aggregate`  Greeks and P&L per strategy, legs tagged with their strategy (the public calls)
"""

from v6core.strategies.aggregate import group_and_tag, group_strategies
from v6core.strategies.book import EPS, Candidate
from v6core.strategies.matcher import _plan  # noqa: F401  (bench/bench_greeks.py clears its cache)
from v6core.strategies.shapes import ONE_EXPIRY_SHAPES, OTHER_SHAPES

__all__ = ["EPS", "Candidate", "ONE_EXPIRY_SHAPES", "OTHER_SHAPES", "group_and_tag", "group_strategies"]
