"""A portfolio snapshot as lake rows: its legs, its aggregates (total / underlying / strategy), its account."""

from __future__ import annotations

from typing import Any

import polars as pl
import pyarrow as pa

from v6core.lake.schemas import METRIC_COLUMNS, PORTFOLIO_SCHEMA, as_utc
from v6core.models import PortfolioSnapshot


def snapshot_id(snapshot: PortfolioSnapshot) -> str:
    """Stable id of a snapshot: its seq plus its build time (seq restarts with the runtime)."""
    built = as_utc(snapshot.built_at, "snapshot.built_at")
    return f"{snapshot.seq}@{built.strftime('%Y%m%dT%H%M%S.%fZ')}"


def legs_table(snapshot: PortfolioSnapshot) -> pa.Table:
    """The `portfolio` rows of a snapshot: one per leg, in the snapshot's order."""
    built = as_utc(snapshot.built_at, "snapshot.built_at")
    kinds = {s.strategy_id: s.kind for s in snapshot.strategies}
    cols: dict[str, list[Any]] = {f.name: [] for f in PORTFOLIO_SCHEMA}
    for leg in snapshot.legs:
        c, g, pg = leg.contract, leg.greeks, leg.position_greeks
        row = {
            "snapshot_seq": snapshot.seq, "snapshot_time": built, "account": leg.account,
            "con_id": c.con_id, "symbol": c.symbol, "local_symbol": c.local_symbol, "label": c.label,
            "sec_type": c.sec_type, "currency": c.currency, "expiry": c.expiry, "strike": c.strike,
            "right": c.right, "multiplier": c.multiplier, "quantity": leg.quantity,
            "avg_price": leg.avg_price, "mark": leg.mark, "market_value": leg.market_value,
            "unrealized_pnl": leg.unrealized_pnl, "realized_pnl": leg.realized_pnl,
            "daily_pnl": leg.daily_pnl, "dte": leg.dte,
            "iv": g.iv if g else None, "und_price": g.und_price if g else None,
            "contract_delta": g.delta if g else None, "contract_gamma": g.gamma if g else None,
            "contract_theta": g.theta if g else None, "contract_vega": g.vega if g else None,
            "greeks_source": g.source.value if g else None,
            "delta": pg.delta, "gamma": pg.gamma, "theta": pg.theta, "vega": pg.vega,
            "dollar_delta": pg.dollar_delta, "beta_delta": pg.beta_delta,
            "quote_time": as_utc(leg.quote_time, "leg.quote_time"),
            "strategy_id": leg.strategy_id, "strategy_kind": kinds.get(leg.strategy_id, ""),
            "flags": list(leg.flags), "stale": leg.stale,
        }
        for name, value in row.items():
            cols[name].append(value)
    return pa.table(cols, schema=PORTFOLIO_SCHEMA)


def _metric_sums() -> list[pl.Expr]:
    return [pl.col(c).fill_null(0.0).sum().alias(c) for c in METRIC_COLUMNS]


def aggregate_legs(legs: pl.DataFrame) -> pl.DataFrame:
    """Totals, per-underlying and per-strategy sums of position Greeks and P&L of one leg frame.

    Position Greeks of flagged legs are already zero (see models.Leg), so plain sums match the
    live totals. Columns: level, key, underlying, kind, legs, then METRIC_COLUMNS.
    """
    total = legs.select(pl.lit("total").alias("level"), pl.lit("TOTAL").alias("key"),
                        pl.lit(None, pl.String).alias("underlying"), pl.lit(None, pl.String).alias("kind"),
                        pl.len().cast(pl.Int64).alias("legs"), *_metric_sums())
    by_und = (legs.group_by("symbol", maintain_order=True)
              .agg(pl.len().cast(pl.Int64).alias("legs"), *_metric_sums())
              .select(pl.lit("underlying").alias("level"), pl.col("symbol").alias("key"),
                      pl.col("symbol").alias("underlying"), pl.lit(None, pl.String).alias("kind"),
                      "legs", *METRIC_COLUMNS))
    by_strat = (legs.group_by("strategy_id", maintain_order=True)
                .agg(pl.col("symbol").first().alias("underlying"),
                     pl.col("strategy_kind").first().alias("kind"),
                     pl.len().cast(pl.Int64).alias("legs"), *_metric_sums())
                .select(pl.lit("strategy").alias("level"), pl.col("strategy_id").alias("key"),
                        "underlying", "kind", "legs", *METRIC_COLUMNS))
    return pl.concat([total, by_und, by_strat], how="vertical")


def account_meta(snapshot: PortfolioSnapshot) -> dict[str, Any]:
    a = snapshot.account
    return {
        "account": a.account, "currency": a.currency, "net_liquidation": a.net_liquidation,
        "total_cash": a.total_cash, "buying_power": a.buying_power,
        "available_funds": a.available_funds, "excess_liquidity": a.excess_liquidity,
        "init_margin": a.init_margin, "maint_margin": a.maint_margin,
        "gross_position_value": a.gross_position_value, "daily_pnl": a.daily_pnl,
        "unrealized_pnl": a.unrealized_pnl, "realized_pnl": a.realized_pnl,
        "portfolio_unrealized_pnl": snapshot.unrealized_pnl, "legs": len(snapshot.legs),
        "connection_state": snapshot.connection.state.value,
    }
