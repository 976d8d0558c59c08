"""Market model: a seeded random walk per underlying, an implied-vol surface and Black-Scholes.

Prices are marked on demand from the current spots and the sim clock, so a frozen sim quotes
exactly the same numbers every time it is asked.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from v6core.models import ContractInfo
from v6core.sim.chains import SPEC_BY_SYMBOL, UNDERLYINGS, option_tick, universe_for

NEW_YORK = ZoneInfo("America/New_York")
RISK_FREE_RATE = 0.04
YEAR_SECONDS = 365.0 * 86400.0
# the walk runs on trading time: one trading year is 252 days of 6.5 hours
WALK_YEAR_SECONDS = 252 * 6.5 * 3600.0
MIN_T_YEARS = 1.0 / (365.0 * 24 * 12)   # five minutes: an expiring option still has a price


def _norm_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _norm_pdf(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def black_scholes(spot: float, strike: float, t: float, rate: float, iv: float,
                  is_call: bool) -> dict[str, float]:
    """Price and IB-unit Greeks: theta per calendar day, vega per vol point."""
    t = max(t, MIN_T_YEARS)
    sqrt_t = math.sqrt(t)
    d1 = (math.log(spot / strike) + (rate + 0.5 * iv * iv) * t) / (iv * sqrt_t)
    d2 = d1 - iv * sqrt_t
    disc = math.exp(-rate * t)
    pdf = _norm_pdf(d1)
    if is_call:
        price = spot * _norm_cdf(d1) - strike * disc * _norm_cdf(d2)
        delta = _norm_cdf(d1)
        theta = -spot * pdf * iv / (2 * sqrt_t) - rate * strike * disc * _norm_cdf(d2)
    else:
        price = strike * disc * _norm_cdf(-d2) - spot * _norm_cdf(-d1)
        delta = _norm_cdf(d1) - 1.0
        theta = -spot * pdf * iv / (2 * sqrt_t) + rate * strike * disc * _norm_cdf(-d2)
    return {
        "price": max(price, 0.0),
        "delta": delta,
        "gamma": pdf / (spot * iv * sqrt_t),
        "vega": spot * pdf * sqrt_t / 100.0,
        "theta": theta / 365.0,
    }


def expiry_datetime(expiry: date) -> datetime:
    return datetime(expiry.year, expiry.month, expiry.day, 16, 0, tzinfo=NEW_YORK)


class SimClock:
    """Sim time: wall time scaled by time_speed; stands still while frozen."""

    def __init__(self, time_speed: float, start: datetime | None = None) -> None:
        self.time_speed = time_speed
        self._sim_at_anchor = start or datetime.now(timezone.utc)
        self._anchor = time.monotonic()
        self.frozen = False

    def now(self) -> datetime:
        if self.frozen:
            return self._sim_at_anchor
        elapsed = (time.monotonic() - self._anchor) * self.time_speed
        return self._sim_at_anchor + timedelta(seconds=elapsed)

    def freeze(self) -> None:
        if not self.frozen:
            self._sim_at_anchor = self.now()
            self.frozen = True

    def unfreeze(self) -> None:
        if self.frozen:
            self._anchor = time.monotonic()
            self.frozen = False


@dataclass(slots=True)
class Quote:
    bid: float
    ask: float
    last: float
    bid_size: int
    ask_size: int
    mark: float                  # model value (options) or spot (stocks)
    iv: float | None = None
    greeks: dict[str, float] | None = None
    und_price: float | None = None


def round_to_tick(price: float, tick: float) -> float:
    return round(round(price / tick) * tick, 2)


def on_tick_grid(price: float, tick: float) -> bool:
    steps = price / tick
    return abs(steps - round(steps)) < 1e-6


class Market:
    """Spots, previous closes, the IV surface and quotes for every listed contract."""

    def __init__(self, seed: int, time_speed: float = 1.0, today: date | None = None) -> None:
        self.rng = random.Random(seed)
        self.clock = SimClock(time_speed)
        self.today = today or self.clock.now().astimezone(NEW_YORK).date()
        self.spots: dict[str, float] = {}
        self.closes: dict[str, float] = {}
        for spec in UNDERLYINGS:
            jitter = 1.0 + self.rng.uniform(-0.02, 0.02)
            spot = round(spec.spot * jitter, 2)
            self.spots[spec.symbol] = spot
            self.closes[spec.symbol] = round(spot * (1.0 + self.rng.gauss(0.0, 0.006)), 2)
        self.universe = universe_for(tuple(self.spots.items()), self.today)
        self.version = 0                 # bumps whenever any spot changes
        self.volumes: dict[int, int] = {}
        self._sizes_rng = random.Random(seed + 1)

    # ---- movement
    def step(self, dt_wall: float) -> None:
        """Advance the random walk by dt_wall seconds of wall time (scaled by time_speed)."""
        if self.clock.frozen:
            return
        dt = dt_wall * self.clock.time_speed / WALK_YEAR_SECONDS
        for spec in UNDERLYINGS:
            shock = self.rng.gauss(0.0, 1.0)
            s = self.spots[spec.symbol]
            self.spots[spec.symbol] = s * math.exp(-0.5 * spec.vol**2 * dt
                                                   + spec.vol * math.sqrt(dt) * shock)
        self.version += 1

    def set_spot(self, symbol: str, price: float) -> None:
        if symbol not in self.spots:
            raise KeyError(f"unknown underlying {symbol!r}")
        if not price > 0:
            raise ValueError("spot must be positive")
        self.spots[symbol] = float(price)
        self.version += 1

    # ---- model
    def t_years(self, expiry: date) -> float:
        seconds = (expiry_datetime(expiry) - self.clock.now()).total_seconds()
        return max(seconds / YEAR_SECONDS, MIN_T_YEARS)

    def implied_vol(self, symbol: str, strike: float, t: float, spot: float | None = None) -> float:
        """Surface: ATM term structure rising with maturity, put skew plus a little smile."""
        spec = SPEC_BY_SYMBOL[symbol]
        spot = self.spots[symbol] if spot is None else spot
        atm = spec.vol * (1.0 + 0.12 * (math.sqrt(max(t, 1 / 365) / (30 / 365)) - 1.0))
        moneyness = math.log(strike / spot) / (atm * math.sqrt(max(t, 1 / 365)))
        iv = atm * (1.0 - 0.09 * moneyness + 0.025 * moneyness * moneyness)
        return min(max(iv, 0.05), 3.0)

    def option_inputs(self, info: ContractInfo, spot: float | None = None) -> dict:
        spot = self.spots[info.symbol] if spot is None else spot
        t = self.t_years(info.expiry)
        iv = self.implied_vol(info.symbol, info.strike, t, spot)
        model = black_scholes(spot, info.strike, t, RISK_FREE_RATE, iv, info.right == "C")
        return {"spot": spot, "strike": info.strike, "t_years": t, "rate": RISK_FREE_RATE,
                "iv": iv, "right": info.right, "price": model["price"], "greeks": model}

    def quote(self, info: ContractInfo) -> Quote:
        if info.sec_type == "STK":
            spec = SPEC_BY_SYMBOL[info.symbol]
            spot = self.spots[info.symbol]
            half = spec.stock_spread / 2
            bid = math.floor((spot - half) * 100 + 1e-9) / 100
            ask = round(bid + spec.stock_spread, 2)
            size = 100 * (1 + (info.con_id + self.version) % 7)
            return Quote(bid, ask, round(spot, 2), size, size + 100, spot)
        inputs = self.option_inputs(info)
        value = inputs["price"]
        tick = option_tick(info.symbol, value)
        half = max(tick, value * 0.015)
        bid = max(0.0, math.floor((value - half) / tick + 1e-9) * tick)
        ask = max(bid + tick, math.ceil((value + half) / tick - 1e-9) * tick)
        bid, ask = round(bid, 2), round(ask, 2)
        if not on_tick_grid(ask, option_tick(info.symbol, ask)):
            ask = round(math.ceil(ask / 0.05 - 1e-9) * 0.05, 2)
        if bid > 0 and not on_tick_grid(bid, option_tick(info.symbol, bid)):
            bid = round(math.floor(bid / 0.05 + 1e-9) * 0.05, 2)
        last = round_to_tick(value, option_tick(info.symbol, value)) if value >= 0.01 else 0.01
        size = 1 + (info.con_id * 7 + self.version) % 40
        return Quote(bid, ask, last, size, size + 3, value, inputs["iv"], inputs["greeks"],
                     inputs["spot"])

    def close_price(self, info: ContractInfo) -> float:
        """Previous session close: the model at yesterday's close spot, one day longer to run."""
        if info.sec_type == "STK":
            return self.closes[info.symbol]
        spot = self.closes[info.symbol]
        t = self.t_years(info.expiry) + 1.0 / 365
        iv = self.implied_vol(info.symbol, info.strike, t, spot)
        value = black_scholes(spot, info.strike, t, RISK_FREE_RATE, iv, info.right == "C")["price"]
        return round_to_tick(value, option_tick(info.symbol, value))

    def mark(self, info: ContractInfo) -> float:
        if info.sec_type == "STK":
            return self.spots[info.symbol]
        return self.option_inputs(info)["price"]

    def open_interest(self, info: ContractInfo) -> int:
        """Yesterday's open interest: deterministic per contract, highest near the money."""
        spot = self.closes[info.symbol]
        distance = math.log(info.strike / spot) / 0.08
        scatter = (info.con_id * 2654435761) % 1000 / 1000.0
        return int(200 + 8000 * math.exp(-distance * distance) * (0.5 + scatter))

    def add_volume(self, con_id: int, qty: int) -> int:
        self.volumes[con_id] = self.volumes.get(con_id, 0) + qty
        return self.volumes[con_id]

    def volume(self, info: ContractInfo) -> int:
        if info.con_id not in self.volumes:
            base = 40_000_000 if info.sec_type == "STK" else 2_000
            self.volumes[info.con_id] = self._sizes_rng.randint(base // 4, base)
        return self.volumes[info.con_id]

    def tick_volume(self, info: ContractInfo) -> int:
        step = 100 if info.sec_type == "STK" else 1
        return self.add_volume(info.con_id, step * self._sizes_rng.randint(0, 20))
