"""Conversions between v6's values and ib_async's: contracts to IB, historical bars to frames."""

from __future__ import annotations

import logging
from datetime import date, datetime, time as dtime, timezone
from typing import Any

import polars as pl

from v6core.ib_edge import clean_number
from v6core.models import ContractInfo

log = logging.getLogger(__name__)


def contract_to_ib(info: ContractInfo) -> Any:
    """An ib_async Contract for a stock or option ContractInfo (BAGs are built from their legs)."""
    from ib_async import Contract

    if info.sec_type not in ("STK", "OPT"):
        raise ValueError(f"cannot trade or quote security type {info.sec_type!r}")
    return Contract(
        conId=info.con_id, symbol=info.symbol, secType=info.sec_type, currency=info.currency,
        exchange=info.exchange or "SMART",
        lastTradeDateOrContractMonth=info.expiry.strftime("%Y%m%d") if info.expiry else "",
        strike=info.strike or 0.0, right=info.right or "",
        multiplier=f"{info.multiplier:g}" if info.is_option else "",
    )


def _bar_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    if isinstance(value, date):
        return datetime.combine(value, dtime(0, 0), tzinfo=timezone.utc)
    return None


def bars_frame(bars: Any) -> pl.DataFrame:
    """Historical bars as a polars frame; bars with missing/negative prices are dropped (logged)."""
    rows: dict[str, list] = {k: [] for k in ("time", "open", "high", "low", "close", "volume")}
    dropped = 0
    for bar in bars or ():
        moment = _bar_time(getattr(bar, "date", None))
        prices = [clean_number(getattr(bar, k, None)) for k in ("open", "high", "low", "close")]
        if moment is None or any(p is None or p < 0 for p in prices):
            dropped += 1
            continue
        volume = clean_number(getattr(bar, "volume", None))
        rows["time"].append(moment)
        for key, price in zip(("open", "high", "low", "close"), prices):
            rows[key].append(price)
        rows["volume"].append(volume if volume is not None and volume >= 0 else None)
    if dropped:
        log.warning("dropped %d malformed historical bar(s)", dropped)
    return pl.DataFrame(rows, schema={
        "time": pl.Datetime("us", "UTC"), "open": pl.Float64, "high": pl.Float64,
        "low": pl.Float64, "close": pl.Float64, "volume": pl.Float64,
    })
