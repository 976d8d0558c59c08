"""Market data: reqMktData (stocks, options, combos; streaming and snapshot), its ticks,
reqMarketDataType, and the option calculators."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from v6core.models import ContractInfo
from v6core.sim import messages as msg
from v6core.sim.faults import corrupt_greeks
from v6core.sim.fields import BadRequest, Fields
from v6core.sim.market import RISK_FREE_RATE, Quote, black_scholes

if TYPE_CHECKING:
    from v6core.sim.server import SimServer
    from v6core.sim.session import Session

LIVE = 1                     # MARKET_DATA_TYPE the sim always delivers (it always has live data)
SNAPSHOT_END_DELAY = 0.25    # seconds from a snapshot's ticks to tickSnapshotEnd, like TWS gathering them
BID_COMPUTATION, ASK_COMPUTATION, LAST_COMPUTATION, MODEL_COMPUTATION = 10, 11, 12, 13
COMPUTATION_REFRESH = 1.0    # seconds between ticks 10-12 while only the underlying moves
NOT_COMPUTED = -1.0          # TWS's value for an implied vol / Greek it could not compute


@dataclass(slots=True)
class MarketSub:
    req_id: int
    contract: ContractInfo | None
    legs: list[tuple[ContractInfo, int, str]]
    generic: set[str]
    sent: dict = field(default_factory=dict)



class MarketDataRequests:
    """Mixin of Session: subscriptions live in session.subs; SimServer's market task ticks them."""

    def req_market_data_type(self, f: Fields) -> None:
        """Types 1-4 as TWS documents them: live data is returned whenever it is available,
        whatever type was asked (2 and 4, frozen, only apply once a market has closed; the
        sim's market streams around the clock), so every subscription is live and says so."""
        f.skip()
        self.market_data_type = f.int(1)

    def req_mkt_data(self, f: Fields) -> None:
        f.skip()
        req_id = f.int()
        spec = f.contract()
        legs: list[tuple[ContractInfo, int, str]] = []
        if spec["sec_type"].upper() == "BAG":
            for _ in range(f.int()):
                con_id, ratio, action, _exchange = f.int(), f.int(), f.text(), f.text()
                info = self.server.market.universe.by_id.get(con_id)
                if info is None:
                    raise BadRequest(req_id, 200, "No security definition has been found for the request")
                legs.append((info, ratio, action.upper()))
        if f.bool():
            f.skip(3)
        generic = {g.strip() for g in f.text().split(",") if g.strip()}
        snapshot = f.bool()
        regulatory = f.bool()
        contract = None
        if not legs:
            contract = self.server.resolve(spec)
            if contract is None:
                raise BadRequest(req_id, 200, "No security definition has been found for the request")
        sub = MarketSub(req_id, contract, legs, generic)
        self.send([58, 1, req_id, LIVE])
        self.send([81, req_id, 0.01, "9c0001", 3])
        self.server.send_ticks(self, sub, first=True)
        if snapshot or regulatory:
            # TWS gathers a snapshot's ticks for a moment before it ends it; clients that wait
            # for tickSnapshotEnd must really wait
            self.snapshots[req_id] = asyncio.get_running_loop().call_later(
                SNAPSHOT_END_DELAY, self._end_snapshot, req_id)
        else:
            self.subs[req_id] = sub

    def _end_snapshot(self, req_id: int) -> None:
        if self.snapshots.pop(req_id, None) is not None:
            self.send([57, 1, req_id])

    def cancel_mkt_data(self, f: Fields) -> None:
        """Nothing more for this request id: no ticks, and no snapshot end still pending."""
        f.skip()
        req_id = f.int()
        self.subs.pop(req_id, None)
        pending = self.snapshots.pop(req_id, None)
        if pending is not None:
            pending.cancel()

    def calculate_option_price(self, f: Fields) -> None:
        f.skip()
        req_id = f.int()
        info = self.server.resolve(f.contract())
        vol, und = f.float(), f.float()
        if info is None or info.sec_type != "OPT" or not vol or not und:
            raise BadRequest(req_id, 200, "No security definition has been found for the request")
        t = self.server.market.t_years(info.expiry)
        g = black_scholes(und, info.strike, t, RISK_FREE_RATE, vol, info.right == "C")
        self.send(msg.option_computation(req_id, 13, vol, g["delta"], g["price"], g["gamma"],
                                         g["vega"], g["theta"], und))

    def calculate_implied_vol(self, f: Fields) -> None:
        f.skip()
        req_id = f.int()
        info = self.server.resolve(f.contract())
        price, und = f.float(), f.float()
        if info is None or info.sec_type != "OPT" or not price or not und:
            raise BadRequest(req_id, 200, "No security definition has been found for the request")
        t = self.server.market.t_years(info.expiry)
        low, high = 1e-4, 5.0
        for _ in range(80):
            mid = (low + high) / 2
            value = black_scholes(und, info.strike, t, RISK_FREE_RATE, mid, info.right == "C")["price"]
            low, high = (mid, high) if value < price else (low, mid)
        iv = (low + high) / 2
        g = black_scholes(und, info.strike, t, RISK_FREE_RATE, iv, info.right == "C")
        self.send(msg.option_computation(req_id, 13, iv, g["delta"], price, g["gamma"],
                                         g["vega"], g["theta"], und))


HANDLERS: dict[int, Callable[[Session, Fields], None]] = {
    59: MarketDataRequests.req_market_data_type, 1: MarketDataRequests.req_mkt_data,
    2: MarketDataRequests.cancel_mkt_data, 55: MarketDataRequests.calculate_option_price,
    54: MarketDataRequests.calculate_implied_vol,
}


def send_ticks(server: SimServer, session: Session, sub: MarketSub, first: bool = False) -> None:
    sent = sub.sent
    rid = sub.req_id
    if sub.legs:
        bid, ask = _combo_quote(server, sub.legs)
        if first or sent.get("bid") != bid:
            sent["bid"] = bid
            session.send(msg.tick_price(rid, 1, bid, 1))
        if first or sent.get("ask") != ask:
            sent["ask"] = ask
            session.send(msg.tick_price(rid, 2, ask, 1))
        return
    info = sub.contract
    q = server.quote(info)
    if first:
        session.send(msg.tick_price(rid, 9, server.market.close_price(info), 0))
        session.send(msg.tick_size(rid, 8, server.market.volume(info)))
    elif not server.market.clock.frozen:
        session.send(msg.tick_size(rid, 8, server.market.tick_volume(info)))
    if first or sent.get("bid") != (q.bid, q.bid_size):
        sent["bid"] = (q.bid, q.bid_size)
        session.send(msg.tick_price(rid, 1, q.bid, q.bid_size))
    if first or sent.get("ask") != (q.ask, q.ask_size):
        sent["ask"] = (q.ask, q.ask_size)
        session.send(msg.tick_price(rid, 2, q.ask, q.ask_size))
    if first or sent.get("last") != q.last:
        sent["last"] = q.last
        session.send(msg.tick_price(rid, 4, q.last, q.bid_size))
    if info.sec_type == "OPT":
        if first or sent.get("greeks") != server.market.version:
            sent["greeks"] = server.market.version
            _send_greeks(server, session, rid, MODEL_COMPUTATION, info, q)
        for tick_type, key, price in ((BID_COMPUTATION, "bid_iv", q.bid), (ASK_COMPUTATION, "ask_iv", q.ask),
                                      (LAST_COMPUTATION, "last_iv", q.last)):
            last = sent.get(key)
            now = time.monotonic()
            # on a new price at once; with the underlying alone at most once a second, as TWS
            # throttles these (and each one costs an implied-vol solve)
            if first or last[0] != price or now - last[1] >= COMPUTATION_REFRESH:
                sent[key] = (price, now)
                _send_price_computation(server, session, rid, tick_type, info, q, price)
    elif "106" in sub.generic and (first or sent.get("iv") != server.market.version):
        sent["iv"] = server.market.version
        t = 30 / 365
        spot = server.market.spots[info.symbol]
        session.send(msg.tick_generic(rid, 24, server.market.implied_vol(info.symbol, spot, t)))

def implied_vol_at(spot: float, strike: float, t: float, is_call: bool, price: float,
                   guess: float) -> tuple[float, dict[str, float]] | None:
    """(implied vol, Greeks at it) that price the option at `price` (Newton from the model vol),
    or None when no vol does (at or below intrinsic value)."""
    intrinsic = max(spot - strike, 0.0) if is_call else max(strike - spot, 0.0)
    if price <= intrinsic + 1e-6:
        return None
    iv = guess
    for _ in range(8):
        g = black_scholes(spot, strike, t, RISK_FREE_RATE, iv, is_call)
        diff = g["price"] - price
        if abs(diff) < 1e-4:              # a hundredth of a cent: far below the tick
            return iv, g
        if g["vega"] < 1e-8:
            return None
        iv = min(max(iv - diff / (g["vega"] * 100.0), 1e-4), 5.0)
    return None


def price_computation(server: SimServer, info: ContractInfo, q: Quote, tick_type: int,
                      price: float) -> tuple:
    """(iv, delta, optPrice, gamma, vega, theta, undPrice) at `price`; cached per market step, so
    every session subscribed to the option shares one computation."""
    key = (info.con_id, tick_type)                 # one entry per option and side: bounded
    cached = server.computation_cache.get(key)
    if cached is not None and cached[:2] == (server.market.version, price):
        return cached[2]
    t = server.market.t_years(info.expiry)
    solved = implied_vol_at(q.und_price, info.strike, t, info.right == "C", price, q.iv)
    if solved is None:
        values: tuple = (NOT_COMPUTED, -2.0, price, -2.0, -2.0, -2.0, q.und_price)
    else:
        iv, g = solved
        values = (iv, g["delta"], price, g["gamma"], g["vega"], g["theta"], q.und_price)
    server.computation_cache[key] = (server.market.version, price, values)
    return values


def _send_price_computation(server: SimServer, session: Session, rid: int, tick_type: int,
                            info: ContractInfo, q: Quote, price: float) -> None:
    """Ticks 10/11/12: the implied vol and Greeks at the bid / ask / last price itself."""
    mode = server.faults.greeks_mode(info.con_id)
    if mode == "withhold" or price <= 0:
        return
    if mode is not None:
        session.send(msg.option_computation(rid, tick_type, *corrupt_greeks(mode, q.und_price)))
        return
    session.send(msg.option_computation(rid, tick_type, *price_computation(server, info, q, tick_type, price)))


def _send_greeks(server: SimServer, session: Session, rid: int, tick_type: int, info: ContractInfo,
                 q: Quote) -> None:
    mode = server.faults.greeks_mode(info.con_id)
    if mode == "withhold":
        return
    session.send(msg.tick_generic(rid, 24, q.iv))
    g = q.greeks
    if mode is None:
        session.send(msg.option_computation(rid, tick_type, q.iv, g["delta"], g["price"],
                                            g["gamma"], g["vega"], g["theta"], q.und_price))
    else:
        session.send(msg.option_computation(rid, tick_type, *corrupt_greeks(mode, q.und_price)))

def _combo_quote(server: SimServer, legs: list[tuple[ContractInfo, int, str]]) -> tuple[float, float]:
    bid = ask = 0.0
    for info, ratio, action in legs:
        q = server.quote(info)
        if action == "BUY":
            bid += ratio * q.bid
            ask += ratio * q.ask
        else:
            bid -= ratio * q.ask
            ask -= ratio * q.bid
    return round(bid, 2), round(ask, 2)
