"""Contract details' tradingHours / liquidHours in TWS's format, from the simulator's calendar.

TWS lists the sessions of the coming days, one per day, `;`-separated, closed days marked:
`20261202:0400-20261202:2000;20261205:CLOSED;...` in the contract's `timeZoneId`. Stocks trade
04:00-20:00 with the liquid (regular) session 09:30-16:00; listed options only 09:30-16:00.
Holidays and weekends come from the same calendar as the option expiries and the bars.
"""

from __future__ import annotations

from datetime import date, timedelta

from v6core.sim.chains import is_trading_day

TIME_ZONE_ID = "US/Eastern"
DAYS_LISTED = 7
REGULAR = ("0930", "1600")
EXTENDED = ("0400", "2000")


def _sessions(today: date, hours: tuple[str, str], days: int) -> str:
    parts = []
    for offset in range(days):
        day = today + timedelta(days=offset)
        stamp = day.strftime("%Y%m%d")
        if is_trading_day(day):
            parts.append(f"{stamp}:{hours[0]}-{stamp}:{hours[1]}")
        else:
            parts.append(f"{stamp}:CLOSED")
    return ";".join(parts)


def trading_hours(today: date, sec_type: str, days: int = DAYS_LISTED) -> tuple[str, str]:
    """(tradingHours, liquidHours) for the `days` days from `today` (the sim's New York date)."""
    liquid = _sessions(today, REGULAR, days)
    trading = _sessions(today, EXTENDED, days) if sec_type == "STK" else liquid
    return trading, liquid
