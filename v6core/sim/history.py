"""Historical bars: a seeded path per (symbol, bar size) that ends at the live price."""

from __future__ import annotations

import math
import random
import re
import zlib
from datetime import date, datetime, time, timedelta, timezone

from v6core.models import ContractInfo
from v6core.sim.chains import SPEC_BY_SYMBOL, is_trading_day
from v6core.sim.market import NEW_YORK, RISK_FREE_RATE, YEAR_SECONDS, Market, black_scholes, expiry_datetime

BAR_SECONDS = {
    "1 secs": 1, "5 secs": 5, "10 secs": 10, "15 secs": 15, "30 secs": 30,
    "1 min": 60, "2 mins": 120, "3 mins": 180, "5 mins": 300, "10 mins": 600, "15 mins": 900,
    "20 mins": 1200, "30 mins": 1800, "1 hour": 3600, "2 hours": 7200, "3 hours": 10800,
    "4 hours": 14400, "8 hours": 28800, "1 day": 86400, "1 week": 7 * 86400, "1 month": 30 * 86400,
}
DURATION_DAYS = {"S": 1 / 86400, "D": 1, "W": 7, "M": 30, "Y": 365}
SESSION_OPEN = time(9, 30)
SESSION_SECONDS = int(6.5 * 3600)


class HistoryError(ValueError):
    pass


def parse_duration(text: str) -> float:
    match = re.fullmatch(r"\s*(\d+)\s*([SDWMY])\s*", text.upper())
    if not match:
        raise HistoryError(f"Historical Market Data Service error message:Invalid duration {text!r}")
    return int(match.group(1)) * DURATION_DAYS[match.group(2)]


def _bar_times(bar_size: str, end: datetime, days: float) -> list[datetime | date]:
    seconds = BAR_SECONDS[bar_size]
    end_ny = end.astimezone(NEW_YORK)
    start_day = (end_ny - timedelta(days=max(days, 1))).date()
    trading_days = [start_day + timedelta(days=i) for i in range((end_ny.date() - start_day).days + 1)]
    trading_days = [d for d in trading_days if is_trading_day(d)] or [end_ny.date()]
    if seconds >= 86400:
        if bar_size == "1 day":
            return list(trading_days)
        if bar_size == "1 week":
            weeks: dict[tuple[int, int], date] = {}
            for d in trading_days:
                weeks.setdefault(d.isocalendar()[:2], d)
            return list(weeks.values())
        months: dict[tuple[int, int], date] = {}
        for d in trading_days:
            months.setdefault((d.year, d.month), d)
        return list(months.values())
    out: list[datetime] = []
    start_dt = end - timedelta(days=days)
    for d in trading_days:
        open_dt = datetime.combine(d, SESSION_OPEN, NEW_YORK)
        for k in range(0, SESSION_SECONDS, seconds):
            bar = open_dt + timedelta(seconds=k)
            if start_dt <= bar <= end:
                out.append(bar)
    return out or [end.astimezone(NEW_YORK).replace(microsecond=0)]


VOLATILITY_SERIES = ("OPTION_IMPLIED_VOLATILITY", "HISTORICAL_VOLATILITY")


def bars(market: Market, seed: int, info: ContractInfo, bar_size: str, duration: str,
         end: datetime | None, what_to_show: str = "TRADES") -> list[tuple]:
    """[(time, open, high, low, close, volume, wap, count)] oldest first; last close = live mark.

    OPTION_IMPLIED_VOLATILITY / HISTORICAL_VOLATILITY of a stock give its 30-day ATM implied
    vol / a realized-vol series instead, as annualised fractions.
    """
    if bar_size not in BAR_SECONDS:
        raise HistoryError(f"Historical Market Data Service error message:Invalid bar size {bar_size!r}")
    now = market.clock.now()
    end = min(end or now, now)
    times = _bar_times(bar_size, end, parse_duration(duration))
    what_to_show = what_to_show.upper()
    if what_to_show in VOLATILITY_SERIES:
        if info.sec_type != "STK":
            raise HistoryError("Historical Market Data Service error message:"
                               f"No {what_to_show} data for options")
        return _vol_rows(market, seed, info, times, what_to_show)
    spec = SPEC_BY_SYMBOL[info.symbol]
    rng = random.Random(zlib.crc32(f"{seed}:{info.symbol}:{bar_size}".encode()))
    step_years = min(BAR_SECONDS[bar_size], 86400 * 7) / (86400 if BAR_SECONDS[bar_size] >= 86400 else SESSION_SECONDS) / 252
    if bar_size == "1 week":
        step_years = 5 / 252
    sigma = spec.vol * math.sqrt(step_years)
    n = len(times)
    closes = [0.0] * n
    closes[-1] = market.spots[info.symbol]
    for i in range(n - 1, 0, -1):
        closes[i - 1] = closes[i] * math.exp(-rng.gauss(0.0, sigma))
    rows = []
    for i, stamp in enumerate(times):
        close = closes[i]
        opened = closes[i - 1] * math.exp(rng.gauss(0.0, sigma * 0.2)) if i else close * math.exp(rng.gauss(0.0, sigma * 0.5))
        high = max(opened, close) * (1 + abs(rng.gauss(0.0, sigma * 0.4)))
        low = min(opened, close) * (1 - abs(rng.gauss(0.0, sigma * 0.4)))
        volume = int(rng.uniform(0.5, 1.5) * (2e7 if info.sec_type == "STK" else 2e3) * min(1.0, BAR_SECONDS[bar_size] / 86400 * 6))
        rows.append([stamp, opened, high, low, close, max(volume, 1)])
    if info.sec_type == "OPT":
        rows = _option_rows(market, info, rows)
    out = []
    for stamp, o, h, lo, c, v in rows:
        o, h, lo, c = (round(x, 2) for x in (o, h, lo, c))
        h, lo = max(h, o, c), min(lo, o, c)
        out.append((stamp, o, h, lo, c, v, round((o + h + lo + c) / 4, 4), max(1, v // 100)))
    live = market.mark(info)
    stamp, o, h, lo, _, v, wap, count = out[-1]
    out[-1] = (stamp, o, max(h, round(live, 2)), min(lo, round(live, 2)), round(live, 2), v, wap, count)
    return out


def _vol_rows(market: Market, seed: int, info: ContractInfo, times: list, what: str) -> list[tuple]:
    """A mean-reverting vol series ending at today's 30-day ATM implied vol."""
    rng = random.Random(zlib.crc32(f"{seed}:{info.symbol}:{what}".encode()))
    spot = market.spots[info.symbol]
    live = market.implied_vol(info.symbol, spot, 30 / 365)
    if what == "HISTORICAL_VOLATILITY":
        live *= 0.85                                # realized usually runs below implied
    level = [0.0] * len(times)
    level[-1] = math.log(live)
    mean = math.log(live)
    for i in range(len(times) - 1, 0, -1):
        level[i - 1] = level[i] + 0.05 * (mean - level[i]) + rng.gauss(0.0, 0.06)
    out = []
    for stamp, x in zip(times, level):
        close = math.exp(x)
        opened = close * math.exp(rng.gauss(0.0, 0.02))
        high, low = max(opened, close) * 1.01, min(opened, close) * 0.99
        out.append((stamp, round(opened, 6), round(high, 6), round(low, 6), round(close, 6), 0,
                    round(close, 6), 0))
    return out


def _option_rows(market: Market, info: ContractInfo, rows: list[list]) -> list[list]:
    expiry = expiry_datetime(info.expiry)
    out = []
    for stamp, o, h, lo, c, v in rows:
        moment = stamp if isinstance(stamp, datetime) else datetime.combine(stamp, time(16, 0), NEW_YORK)
        t = max((expiry - moment).total_seconds() / YEAR_SECONDS, 1e-5)
        if moment > expiry:
            continue
        values = []
        for s in (o, h, lo, c):
            iv = market.implied_vol(info.symbol, info.strike, t, s)
            values.append(black_scholes(s, info.strike, t, RISK_FREE_RATE, iv, info.right == "C")["price"])
        high, low = max(values), min(values)
        out.append([stamp, values[0], high, low, values[3], max(1, v // 1000)])
    return out or rows[-1:]


def format_bar_time(stamp: datetime | date, format_date: int) -> str:
    if isinstance(stamp, datetime):
        if format_date == 2:
            return str(int(stamp.timestamp()))
        return stamp.astimezone(NEW_YORK).strftime("%Y%m%d %H:%M:%S America/New_York")
    return stamp.strftime("%Y%m%d")


def parse_end(text: str) -> datetime | None:
    """'' (now), 'YYYYMMDD HH:MM:SS UTC' / '<tz>' or 'YYYYMMDD-HH:MM:SS' (UTC)."""
    text = text.strip()
    if not text:
        return None
    if "-" in text and " " not in text:
        return datetime.strptime(text, "%Y%m%d-%H:%M:%S").replace(tzinfo=timezone.utc)
    parts = text.split(" ")
    moment = datetime.strptime(parts[0] + parts[1], "%Y%m%d%H:%M:%S")
    if len(parts) > 2 and parts[2]:
        from zoneinfo import ZoneInfo
        return moment.replace(tzinfo=ZoneInfo(parts[2]))
    return moment.replace(tzinfo=timezone.utc)
