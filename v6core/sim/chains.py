"""The listed universe: five underlyings and their option chains, with stable conIds.

Expiries: every Friday out to ~90 days (the third Friday is the monthly), plus daily expiries for
the next week on SPY and QQQ; an exchange holiday on a Friday moves that expiry to Thursday.
An option expiring today stays listed (DTE 0) until the sim is restarted.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from datetime import date, timedelta

from v6core.models import ContractInfo

CHAIN_DAYS = 92
OPTION_MULTIPLIER = 100.0

# NYSE full-day holidays around the sim's horizon (weekday ones matter for expiries and bars)
HOLIDAYS = frozenset({
    date(2025, 1, 1), date(2025, 1, 20), date(2025, 2, 17), date(2025, 4, 18), date(2025, 5, 26),
    date(2025, 6, 19), date(2025, 7, 4), date(2025, 9, 1), date(2025, 11, 27), date(2025, 12, 25),
    date(2026, 1, 1), date(2026, 1, 19), date(2026, 2, 16), date(2026, 4, 3), date(2026, 5, 25),
    date(2026, 6, 19), date(2026, 7, 3), date(2026, 9, 7), date(2026, 11, 26), date(2026, 12, 25),
    date(2027, 1, 1), date(2027, 1, 18), date(2027, 2, 15), date(2027, 3, 26), date(2027, 5, 31),
    date(2027, 6, 18), date(2027, 7, 5), date(2027, 9, 6), date(2027, 11, 25), date(2027, 12, 24),
})


@dataclass(frozen=True, slots=True)
class UnderlyingSpec:
    symbol: str
    con_id: int
    spot: float               # reference price before the seed's jitter
    vol: float                # annualised ATM implied vol (30 days)
    strike_step: float
    strike_span: float        # chain covers spot x (1 -/+ span)
    penny: bool               # options quoted in pennies at every price
    primary_exchange: str
    long_name: str
    stock_spread: float       # quoted stock spread in $
    dailies: bool             # daily expiries for the coming week


UNDERLYINGS: tuple[UnderlyingSpec, ...] = (
    UnderlyingSpec("SPY", 756733, 590.0, 0.15, 1.0, 0.12, True, "ARCA",
                   "SPDR S&P 500 ETF TRUST", 0.01, True),
    UnderlyingSpec("QQQ", 320227571, 510.0, 0.19, 1.0, 0.12, True, "NASDAQ",
                   "INVESCO QQQ TRUST SERIES 1", 0.01, True),
    UnderlyingSpec("IWM", 9579970, 225.0, 0.21, 1.0, 0.15, True, "ARCA",
                   "ISHARES RUSSELL 2000 ETF", 0.01, False),
    UnderlyingSpec("AAPL", 265598, 230.0, 0.26, 2.5, 0.2, False, "NASDAQ",
                   "APPLE INC", 0.01, False),
    UnderlyingSpec("TSLA", 76792991, 340.0, 0.55, 5.0, 0.3, False, "NASDAQ",
                   "TESLA INC", 0.02, False),
)
SPEC_BY_SYMBOL = {u.symbol: u for u in UNDERLYINGS}


# price increments by rule id (reqMarketRule), as named in CONTRACT_DATA.marketRuleIds
MARKET_RULES: dict[int, tuple[tuple[float, float], ...]] = {
    26: ((0.0, 0.01),),                    # US stocks and ETFs
    110: ((0.0, 0.01),),                   # penny-pilot options: a cent at every price
    32: ((0.0, 0.01), (3.0, 0.05)),        # other options: a cent below $3, a nickel above
}


def market_rule_id(info: ContractInfo) -> int:
    if info.sec_type != "OPT":
        return 26
    return 110 if SPEC_BY_SYMBOL[info.symbol].penny else 32


def is_trading_day(d: date) -> bool:
    return d.weekday() < 5 and d not in HOLIDAYS


def option_tick(symbol: str, price: float) -> float:
    """Minimum price variation of one option at this price (penny names: 0.01 everywhere)."""
    if SPEC_BY_SYMBOL[symbol].penny or price < 3.0:
        return 0.01
    return 0.05


def third_friday(year: int, month: int) -> date:
    first = date(year, month, 1)
    offset = (4 - first.weekday()) % 7
    return first + timedelta(days=offset + 14)


def expiries_for(spec: UnderlyingSpec, today: date) -> list[date]:
    found: set[date] = set()
    for n in range(CHAIN_DAYS + 1):
        d = today + timedelta(days=n)
        if d.weekday() == 4:
            expiry = d
            while not is_trading_day(expiry):
                expiry -= timedelta(days=1)
            if expiry >= today:
                found.add(expiry)
        if spec.dailies and n <= 7 and is_trading_day(d):
            found.add(d)
    return sorted(found)


def occ_symbol(symbol: str, expiry: date, right: str, strike: float) -> str:
    return f"{symbol:<6}{expiry:%y%m%d}{right}{int(round(strike * 1000)):08d}"


def strikes_for(spec: UnderlyingSpec, spot: float) -> list[float]:
    step = spec.strike_step
    low = max(step, (spot * (1 - spec.strike_span)) // step * step)
    high = (spot * (1 + spec.strike_span)) // step * step + step
    count = int(round((high - low) / step))
    return [round(low + i * step, 4) for i in range(count + 1)]


def option_con_id(underlying_index: int, expiry: date, strike: float, right: str) -> int:
    """The same option has the same conId in every run, whatever the seed or the day.

    Layout (fits a signed 32-bit int): 1e9 + underlying x 2e8 + (expiry ordinal mod 2000) x 1e5
    + half-dollar strike code x 2 + (0 call / 1 put).
    """
    strike_code = int(round(strike * 2))
    if not 0 < strike_code < 50_000:
        raise ValueError(f"strike {strike} outside the conId layout")
    return (1_000_000_000 + underlying_index * 200_000_000 + (expiry.toordinal() % 2000) * 100_000
            + strike_code * 2 + (0 if right == "C" else 1))


@lru_cache(maxsize=8)
def universe_for(spots: tuple[tuple[str, float], ...], today: date) -> Universe:
    """Universes are immutable once built, so gateways with the same seed and day share one."""
    return Universe(dict(spots), today)


class Universe:
    """Every listed contract, by conId and by (symbol, expiry, strike, right). Read-only."""

    def __init__(self, spots: dict[str, float], today: date) -> None:
        self.today = today
        self.by_id: dict[int, ContractInfo] = {}
        self.options: dict[tuple[str, date, float, str], ContractInfo] = {}
        self.expiries: dict[str, list[date]] = {}
        self.strikes: dict[str, list[float]] = {}
        for index, spec in enumerate(UNDERLYINGS):
            stock = ContractInfo(con_id=spec.con_id, symbol=spec.symbol, sec_type="STK",
                                 local_symbol=spec.symbol, trading_class=spec.symbol)
            self.by_id[stock.con_id] = stock
            expiries = expiries_for(spec, today)
            strikes = strikes_for(spec, spots[spec.symbol])
            self.expiries[spec.symbol] = expiries
            self.strikes[spec.symbol] = strikes
            for expiry in expiries:
                prefix = f"{spec.symbol:<6}{expiry:%y%m%d}"
                for strike in strikes:
                    strike_text = f"{int(round(strike * 1000)):08d}"
                    for right in ("C", "P"):
                        con_id = option_con_id(index, expiry, strike, right)
                        info = ContractInfo(
                            con_id=con_id, symbol=spec.symbol, sec_type="OPT", expiry=expiry,
                            strike=strike, right=right, multiplier=OPTION_MULTIPLIER,
                            local_symbol=prefix + right + strike_text,
                            trading_class=spec.symbol,
                        )
                        self.by_id[con_id] = info
                        self.options[(spec.symbol, expiry, strike, right)] = info

    def stock(self, symbol: str) -> ContractInfo | None:
        spec = SPEC_BY_SYMBOL.get(symbol)
        return self.by_id[spec.con_id] if spec else None

    def option(self, symbol: str, expiry: date, strike: float, right: str) -> ContractInfo | None:
        return self.options.get((symbol, expiry, round(float(strike), 4), right))

    def nearest_expiry(self, symbol: str, days: int) -> date:
        target = self.today + timedelta(days=days)
        return min(self.expiries[symbol], key=lambda d: (abs((d - target).days), d))

    def nearest_strike(self, symbol: str, price: float) -> float:
        return min(self.strikes[symbol], key=lambda k: abs(k - price))

    def matching(self, symbol: str, sec_type: str, expiry: str, strike: float | None,
                 right: str) -> list[ContractInfo]:
        """Contracts matching a partial description (empty fields match anything)."""
        spec = SPEC_BY_SYMBOL.get(symbol.upper())
        if spec is None:
            return []
        sec_type = sec_type.upper()
        if sec_type in ("STK", "") and not expiry and not right and not strike:
            return [self.by_id[spec.con_id]]
        if sec_type not in ("OPT", ""):
            return []
        right = {"CALL": "C", "PUT": "P"}.get(right.upper(), right.upper())
        result = []
        for (sym, exp, k, r), info in self.options.items():
            if sym != spec.symbol:
                continue
            if expiry and exp.strftime("%Y%m%d")[: len(expiry)] != expiry:
                continue
            if strike and abs(k - strike) > 1e-6:
                continue
            if right and r != right:
                continue
            result.append(info)
        return result
