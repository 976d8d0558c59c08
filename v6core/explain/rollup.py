"""Sums of the per-leg attribution by strategy, underlying and book, and the residual warnings."""

from __future__ import annotations

import numpy as np
import polars as pl

from v6core.explain import model as m

MONEY = ("actual", *m.COMPONENTS, "commissions", "realized_pnl", "approx_spot", "approx_vol", "approx_time")


def _large(frame: pl.DataFrame) -> pl.Expr:
    """Residual above RESIDUAL_SHARE of the move (the larger of |actual| and the explained
    components' absolute sum) and above the dollar floor."""
    explained = sum(pl.col(c).abs() for c in (*m.GREEK_COMPONENTS, "approximation", "trades"))
    move = pl.max_horizontal(pl.col("actual").abs(), explained)
    return ((pl.col("residual").abs() > m.RESIDUAL_SHARE * move)
            & (pl.col("residual").abs() > m.RESIDUAL_FLOOR)).alias("large_residual")


def _sums(legs: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    aggs = [pl.len().cast(pl.Int64).alias("legs"), *[pl.col(c).sum() for c in MONEY]]
    if keys:
        frame = legs.group_by(keys, maintain_order=True).agg(*aggs)
    else:
        frame = legs.select(*aggs)
    return frame.with_columns(_large(frame))


def by_strategy(legs: pl.DataFrame) -> pl.DataFrame:
    frame = legs.group_by("strategy_id", maintain_order=True).agg(
        pl.col("strategy_kind").first().alias("kind"), pl.col("symbol").first().alias("underlying"),
        pl.len().cast(pl.Int64).alias("legs"), *[pl.col(c).sum() for c in MONEY])
    return frame.with_columns(_large(frame))


def by_underlying(legs: pl.DataFrame) -> pl.DataFrame:
    return _sums(legs, ["symbol"]).rename({"symbol": "underlying"})


def book(legs: pl.DataFrame) -> pl.DataFrame:
    if legs.height == 0:
        return pl.DataFrame({"legs": [0], **{c: [0.0] for c in MONEY}, "large_residual": [False]})
    return _sums(legs, [])


def warnings(legs: pl.DataFrame, book_row: pl.DataFrame, span_days: float) -> tuple[str, ...]:
    """Why the residual may be large, worst first; the residual line itself leads when it is."""
    out: list[str] = []
    row = book_row.row(0, named=True)
    if row["large_residual"]:
        move = max(abs(row["actual"]), sum(abs(row[c]) for c in (*m.GREEK_COMPONENTS, "approximation", "trades")))
        share = abs(row["residual"]) / move if move else 1.0
        out.append(f"Residual ${row['residual']:+,.2f} is {share:.0%} of the move: the explanation is poor.")
    held = legs.filter(pl.col("held_size") != 0)
    stale = held.filter(pl.col("stale_start"))
    if stale.height:
        out.append(f"Stale Greeks: {stale.height} leg(s) had a stale quote or no model at the start "
                   f"({', '.join(stale['label'].head(5).to_list())}).")
    missing = held.filter(pl.col("no_greeks"))
    if missing.height:
        out.append(f"{missing.height} held leg(s) lack start Greeks, a spot or an IV: their move is in the residual.")
    unaccounted = legs.filter(pl.col("unaccounted"))
    if unaccounted.height:
        out.append(f"Missing leg: {unaccounted.height} leg(s) changed without recorded fills or marks "
                   f"({', '.join(unaccounted['label'].head(5).to_list())}).")
    if held.height:
        spot_move = np.abs((held["spot_end"] - held["spot_start"]) / held["spot_start"]).fill_nan(0.0).fill_null(0.0)
        big = held.filter(spot_move > m.BIG_SPOT_MOVE)["symbol"].unique(maintain_order=True).to_list()
        if big:
            out.append(f"Big move: {', '.join(big)} moved more than {m.BIG_SPOT_MOVE:.0%}; "
                       "the second-order expansion misses the rest (try full revaluation).")
        iv_move = ((held["iv_end"] - held["iv_start"]).abs() * 100).fill_nan(0.0).fill_null(0.0)
        if (iv_move > m.BIG_IV_MOVE).any():
            out.append(f"Big IV change: some legs' IV moved more than {m.BIG_IV_MOVE:g} vol points.")
    if span_days > m.LONG_SPAN_DAYS:
        out.append(f"Long span: start Greeks held fixed for {span_days:.1f} days; "
                   "explain step by step through the recorded versions for fresher Greeks.")
    return tuple(out)
