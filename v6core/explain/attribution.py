"""Per-leg attribution between two recorded portfolio frames and the fills in between.

For every contract at either point (or only traded in between):

    actual  = q_end*M*m_end - q0*M*m0 - M*sum(signed fill qty * price) - commissions
    held    = q0*M*(m_end - m0)                    (what the start position made or lost)
    trades  = actual - held = M*sum(signed qty * (m_end - price)) - commissions
    delta   = q0*M*delta0*dS          gamma = 0.5*q0*M*gamma0*dS^2
    theta   = q0*M*theta0*days        vega  = q0*M*vega0*(IV_end - IV0)*100
    residual = actual - (delta + gamma + theta + vega [+ approximation] + trades)

with the start's per-contract Greeks (IB units: theta $/share/calendar day, vega $/share/vol
point) and the recorded changes of spot, time and IV. A leg closed in between has no end mark:
its whole P&L (exit price against the start mark) is `trades`. A leg that expired in between
ends at its intrinsic value at the underlying's recorded price at the expiry close, over the time
up to that close. A quantity change the fills table does not account for is priced at the end
mark (no P&L) and noted, and so is a leg that left the book without fills or expiry.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from v6core.explain import model as m

NEW_YORK = ZoneInfo("America/New_York")
EXPIRY_CLOSE = time(16, 0)
SECONDS_PER_DAY = 86400.0
BUY_SIDES = ("BOT", "BUY")

SpotAtExpiry = Callable[[str, date], "float | None"]

_POINT_COLUMNS = ("quantity", "mark", "und_price", "iv", "contract_delta", "contract_gamma",
                  "contract_theta", "contract_vega", "strategy_id", "strategy_kind", "stale",
                  "greeks_source", "unrealized_pnl")
_DESCRIPTIVE = ("symbol", "label", "sec_type", "expiry", "strike", "right", "multiplier")


def expiry_close(expiry: date) -> datetime:
    """When an equity option stops trading: 16:00 New York on its expiry date."""
    return datetime.combine(expiry, EXPIRY_CLOSE, tzinfo=NEW_YORK)


def point_spots(frame: pl.DataFrame) -> dict[str, float]:
    """Underlying price per symbol at one point: the stock's mark, else the options' median undPrice."""
    spots: dict[str, float] = {}
    if frame.height == 0:
        return spots
    stocks = frame.filter((pl.col("sec_type") == "STK") & (pl.col("mark") > 0))
    for symbol, mark in zip(stocks["symbol"], stocks["mark"]):
        spots.setdefault(symbol, float(mark))
    options = (frame.filter(pl.col("und_price") > 0).group_by("symbol")
               .agg(pl.col("und_price").median()))
    for symbol, price in zip(options["symbol"], options["und_price"]):
        spots.setdefault(symbol, float(price))
    return spots


def _side(frame: pl.DataFrame, suffix: str) -> pl.DataFrame:
    return frame.select("con_id", *_DESCRIPTIVE, *_POINT_COLUMNS).rename(
        {c: f"{c}{suffix}" for c in (*_DESCRIPTIVE, *_POINT_COLUMNS)})


def fills_between(fills: pl.DataFrame, t0: datetime, t1: datetime) -> pl.DataFrame:
    """Fills executed in (t0, t1], summed per contract: signed quantity, signed cash, costs."""
    span = fills.filter((pl.col("ts") > t0) & (pl.col("ts") <= t1))
    signed = pl.when(pl.col("side").str.to_uppercase().is_in(BUY_SIDES)).then(pl.col("quantity")) \
        .otherwise(-pl.col("quantity"))
    return (span.group_by("con_id", maintain_order=True)
            .agg(signed.sum().alias("fill_quantity"),
                 (signed * pl.col("price")).sum().alias("fill_cost"),
                 pl.col("commission").fill_null(0.0).sum().alias("commissions"),
                 pl.col("realized_pnl").fill_null(0.0).sum().alias("realized_pnl"),
                 pl.len().alias("fills"),
                 pl.col("symbol").first().alias("fill_symbol"),
                 pl.col("local_symbol").first().alias("fill_local_symbol")))


def _floats(frame: pl.DataFrame, name: str) -> np.ndarray:
    return frame[name].cast(pl.Float64).fill_null(np.nan).to_numpy().astype(float, copy=True)


def _spot_column(frame: pl.DataFrame, suffix: str, spots: dict[str, float]) -> np.ndarray:
    """Per leg: its own undPrice (options) or mark (stocks), else the symbol's price at that point."""
    own = np.where(frame[f"sec_type{suffix}"].fill_null("").to_numpy() == "STK",
                   _floats(frame, f"mark{suffix}"), _floats(frame, f"und_price{suffix}"))
    fallback = np.array([spots.get(s, np.nan) for s in frame["symbol"].to_list()], dtype=float)
    return np.where(np.isfinite(own) & (own > 0), own, fallback)


def attribute_legs(start: pl.DataFrame, end: pl.DataFrame, fills: pl.DataFrame,
                   t0: datetime, t1: datetime,
                   spot_at_expiry: SpotAtExpiry | None = None) -> pl.DataFrame:
    """The per-leg frame of an explanation in Greeks mode (see the module doc for the algebra)."""
    legs = _side(start, "_0").join(_side(end, "_1"), on="con_id", how="full", coalesce=True,
                                   maintain_order="left_right")
    traded = fills_between(fills, t0, t1)
    legs = legs.join(traded, on="con_id", how="full", coalesce=True, maintain_order="left_right")
    legs = legs.with_columns(
        *[pl.coalesce(f"{c}_0", f"{c}_1").alias(c) for c in _DESCRIPTIVE if c not in ("symbol", "label")],
        pl.coalesce("symbol_0", "symbol_1", "fill_symbol").alias("symbol"),
        pl.coalesce("label_0", "label_1", "fill_local_symbol").alias("label"),
        pl.coalesce("strategy_id_0", "strategy_id_1",
                    pl.lit("unrecorded:") + pl.coalesce("symbol_0", "symbol_1", "fill_symbol"))
        .alias("strategy_id"),
        pl.coalesce("strategy_kind_0", "strategy_kind_1", pl.lit("traded in between")).alias("strategy_kind"),
        *[pl.col(c).fill_null(0) for c in ("fill_quantity", "fill_cost", "commissions", "realized_pnl", "fills")],
    )
    n = legs.height
    in_start = legs["quantity_0"].is_not_null().to_numpy()
    in_end = legs["quantity_1"].is_not_null().to_numpy()
    q0 = np.nan_to_num(_floats(legs, "quantity_0"))
    q1 = np.nan_to_num(_floats(legs, "quantity_1"))
    fq, fcost = _floats(legs, "fill_quantity"), _floats(legs, "fill_cost")
    comm = _floats(legs, "commissions")
    mult = _floats(legs, "multiplier")
    # A contract only traded in between was never recorded: an OCC-style local symbol is an option.
    guessed = ~np.isfinite(mult)
    if guessed.any():
        occ = np.array([len(str(s or "")) > 12 for s in legs["label"].to_list()])
        mult = np.where(guessed, np.where(occ, 100.0, 1.0), mult)
    m0, m1 = _floats(legs, "mark_0"), _floats(legs, "mark_1")
    s0 = _spot_column(legs, "_0", point_spots(start))
    spots_end = point_spots(end)
    s1 = _spot_column(legs, "_1", spots_end)
    iv0, iv1 = _floats(legs, "iv_0"), _floats(legs, "iv_1")
    is_stock = legs["sec_type"].fill_null("").to_numpy() == "STK"
    is_call = legs["right"].fill_null("").to_numpy() == "C"
    strike = _floats(legs, "strike")
    expiries = legs["expiry"].to_list()
    symbols = legs["symbol"].to_list()
    notes: list[list[str]] = [[] for _ in range(n)]

    # -- status and the end of each leg's life inside the span
    closes = [expiry_close(e) if e is not None else None for e in expiries]
    expired = np.array([in_start[i] and not in_end[i] and closes[i] is not None and closes[i] <= t1
                        and abs(q0[i] + fq[i]) > 1e-9 for i in range(n)], dtype=bool)
    closed = in_start & ~in_end & ~expired & (np.abs(q0 + fq) <= 1e-9)
    missing = in_start & ~in_end & ~expired & ~closed
    round_trip = ~in_start & ~in_end
    opened = ~in_start & in_end
    status = np.full(n, m.HELD, dtype=object)
    status[in_start & in_end & (np.abs(q1 - q0) > 1e-9)] = m.RESIZED
    status[opened], status[closed], status[expired] = m.OPENED, m.CLOSED, m.EXPIRED
    status[missing], status[round_trip] = m.MISSING, m.ROUND_TRIP

    q_end = np.where(in_end, q1, np.where(expired, q0 + fq, 0.0))
    m_end = m1.copy()
    s_end = s1.copy()
    iv_end = iv1.copy()
    leg_t1 = np.full(n, (t1 - t0).total_seconds())
    for i in np.flatnonzero(expired):
        spot = spot_at_expiry(symbols[i], expiries[i]) if spot_at_expiry else None
        if spot is None or not spot > 0:
            spot = spots_end.get(symbols[i], s0[i])
            notes[i].append("no recorded price at the expiry close: end price used")
        s_end[i], iv_end[i] = spot, iv0[i]
        m_end[i] = max(spot - strike[i], 0.0) if is_call[i] else max(strike[i] - spot, 0.0)
        leg_t1[i] = max(min((closes[i] - t0).total_seconds(), leg_t1[i]), 0.0)
        notes[i].append(f"expired at {spot:,.2f}: intrinsic {m_end[i]:,.2f}")
    for i in np.flatnonzero(missing):
        notes[i].append("left the book without recorded fills or expiry: P&L after the start unknown")
        m_end[i], s_end[i], iv_end[i] = m0[i], s0[i], iv0[i]
        q_end[i] = q0[i] + fq[i]

    # -- quantity the fills table does not account for: priced at the end mark, noted
    unrecorded = q_end - q0 - fq
    for i in np.flatnonzero((np.abs(unrecorded) > 1e-9) & ~missing):
        notes[i].append(f"quantity {q0[i]:+g} → {q_end[i]:+g} but fills say {fq[i]:+g}: "
                        f"{unrecorded[i]:+g} priced at the end mark")
    has_end_mark = in_end | expired | missing
    unpriced = (in_start & ~np.isfinite(m0)) | (has_end_mark & ~np.isfinite(m_end) & (np.abs(q_end) > 0))
    for i in np.flatnonzero(unpriced):
        notes[i].append("no recorded mark at one point: left out")

    m0z, m_endz = np.nan_to_num(m0), np.nan_to_num(m_end)
    cash = mult * (fcost + np.where(np.abs(unrecorded) > 1e-9, unrecorded * m_endz, 0.0))
    actual = np.where(has_end_mark, q_end * mult * m_endz, 0.0) - q0 * mult * m0z - cash - comm
    held = np.where(has_end_mark & in_start, q0 * mult * (m_endz - m0z), 0.0)
    trades = actual - held
    actual = np.where(unpriced, 0.0, actual)
    held = np.where(unpriced, 0.0, held)
    trades = np.where(unpriced, 0.0, trades)

    # -- Greek components on the start position (start Greeks x recorded changes)
    size = np.where(has_end_mark & in_start & ~missing & ~unpriced, q0 * mult, 0.0)
    cd, cg = _floats(legs, "contract_delta_0"), _floats(legs, "contract_gamma_0")
    ct, cv = _floats(legs, "contract_theta_0"), _floats(legs, "contract_vega_0")
    cd = np.where(is_stock & ~np.isfinite(cd), 1.0, cd)
    cg, ct, cv = (np.where(is_stock & ~np.isfinite(x), 0.0, x) for x in (cg, ct, cv))
    no_greeks = (size != 0) & ~(np.isfinite(cd) & np.isfinite(cg) & np.isfinite(ct) & np.isfinite(cv))
    for i in np.flatnonzero(no_greeks):
        notes[i].append("no Greeks recorded at the start: its move is all residual")
    d_spot = np.where(np.isfinite(s_end) & np.isfinite(s0), s_end - s0, np.nan)
    no_spot = (size != 0) & ~np.isfinite(d_spot) & ~no_greeks
    for i in np.flatnonzero(no_spot):
        notes[i].append("no underlying price at one point: delta and gamma left in the residual")
    d_iv = np.where(is_stock, 0.0, (iv_end - iv0) * 100.0)
    no_iv = (size != 0) & ~is_stock & ~np.isfinite(d_iv) & ~no_greeks
    for i in np.flatnonzero(no_iv):
        notes[i].append("no IV at one point: vega left in the residual")
    days = leg_t1 / SECONDS_PER_DAY
    ok = (size != 0) & ~no_greeks
    delta = np.where(ok & np.isfinite(d_spot), size * np.nan_to_num(cd) * np.nan_to_num(d_spot), 0.0)
    gamma = np.where(ok & np.isfinite(d_spot), 0.5 * size * np.nan_to_num(cg) * np.nan_to_num(d_spot) ** 2, 0.0)
    theta = np.where(ok, size * np.nan_to_num(ct) * days, 0.0)
    vega = np.where(ok & np.isfinite(d_iv), size * np.nan_to_num(cv) * np.nan_to_num(d_iv), 0.0)
    residual = actual - (delta + gamma + theta + vega + trades)

    stale = (legs["stale_0"].fill_null(False).to_numpy()
             | (legs["greeks_source_0"].fill_null("").to_numpy() == "NONE"))
    for i in np.flatnonzero(stale & (size != 0)):
        notes[i].append("stale quote or Greeks at the start")

    return pl.DataFrame({
        "con_id": legs["con_id"], "label": legs["label"], "symbol": legs["symbol"],
        "strategy_id": legs["strategy_id"], "strategy_kind": legs["strategy_kind"],
        "sec_type": legs["sec_type"], "expiry": legs["expiry"], "strike": legs["strike"],
        "right": legs["right"], "multiplier": mult, "status": status.tolist(),
        "quantity_start": q0, "quantity_end": np.where(in_end, q1, 0.0), "fill_quantity": fq,
        "fills": legs["fills"].cast(pl.Int64), "mark_start": m0, "mark_end": m_end,
        "spot_start": s0, "spot_end": s_end, "iv_start": iv0, "iv_end": iv_end, "days": days,
        "contract_delta": cd, "contract_gamma": cg, "contract_theta": ct, "contract_vega": cv,
        "is_call": is_call, "held_size": size, "stale_start": stale & (size != 0),
        "no_greeks": no_greeks | no_spot | no_iv, "unaccounted": missing | unpriced
        | (np.abs(unrecorded) > 1e-9),
        "actual": actual, "held": held, "delta": delta, "gamma": gamma, "theta": theta, "vega": vega,
        "approximation": np.zeros(n), "approx_spot": np.zeros(n), "approx_vol": np.zeros(n),
        "approx_time": np.zeros(n), "trades": trades, "residual": residual,
        "commissions": comm, "realized_pnl": _floats(legs, "realized_pnl"),
        "notes": ["; ".join(x) for x in notes],
    }).with_columns(pl.col("expiry").cast(pl.Date))
