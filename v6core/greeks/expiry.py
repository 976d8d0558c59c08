"""Time to expiry: the 16:00 New York close of an expiry day, as a fraction of a 365-day year."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
SECONDS_PER_YEAR = 365.0 * 24 * 3600
EXPIRY_CLOSE = time(16, 0)


def year_fraction(expiry: date, now: datetime) -> float:
    """Years (of 365 days) from `now` to 16:00 New York time on `expiry`; 0 once that has passed.

    On the expiry day before the close this is small and positive, so the leg stays priceable.
    """
    if now.tzinfo is None:
        raise ValueError("year_fraction needs a timezone-aware `now` (v6 timestamps are UTC)")
    close = datetime.combine(expiry, EXPIRY_CLOSE, tzinfo=NEW_YORK)
    seconds = (close - now).total_seconds()
    return max(seconds, 0.0) / SECONDS_PER_YEAR
