"""asyncio TWS server: one Session per client connection, a message table per session, and one
market task that ticks every subscribed contract and re-checks working orders.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from v6core.models import ContractInfo
from v6core.sim import messages as msg
from v6core.sim.account import Account
from v6core.sim.chains import MARKET_RULES, SPEC_BY_SYMBOL
from v6core.sim.codec import (
    FrameReader, ProtocolError, encode_message, frame_raw, parse_bool, parse_float, parse_int,
    split_fields,
)
from v6core.sim.faults import Faults, corrupt_greeks
from v6core.sim.history import HistoryError, bars, format_bar_time, parse_end
from v6core.sim.market import RISK_FREE_RATE, Market, Quote, black_scholes
from v6core.sim.orders import Fill, LiveOrder, OrderEngine, OrderRequest

log = logging.getLogger(__name__)

MIN_CLIENT_VERSION = 157
MAX_WRITE_BUFFER = 64 * 1024 * 1024      # a client that stops reading is dropped past this
ACCOUNT_REFRESH_SECONDS = 1.0
FARM_NOTICES = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)
# where the request/order id sits in requests that carry one (the client's shared id counter)
ID_FIELD = {1: 2, 3: 1, 7: 2, 9: 2, 20: 1, 54: 2, 55: 2, 62: 2, 76: 2, 78: 1, 92: 1, 94: 1}
ACCOUNT_TEXT_VALUES = (("AccountType", "INDIVIDUAL", ""), ("Currency", "USD", "USD"))


class BadRequest(Exception):
    """A request that parsed but cannot be served; answered with an IB error."""

    def __init__(self, req_id: int, code: int, message: str) -> None:
        super().__init__(message)
        self.req_id, self.code, self.message = req_id, code, message


class Fields:
    """Cursor over a request's fields (index 0 is the message id)."""

    def __init__(self, fields: list[str]) -> None:
        self.fields = fields
        self.pos = 1

    def text(self) -> str:
        value = self.fields[self.pos]
        self.pos += 1
        return value

    def int(self, default: int = 0) -> int:
        return parse_int(self.text(), default)

    def float(self, default: float | None = None) -> float | None:
        return parse_float(self.text(), default)

    def bool(self) -> bool:
        return parse_bool(self.text())

    def skip(self, n: int = 1) -> None:
        self.pos += n
        if self.pos > len(self.fields):
            raise IndexError("message too short")

    def contract(self) -> dict:
        keys = ("con_id", "symbol", "sec_type", "expiry", "strike", "right", "multiplier",
                "exchange", "primary_exchange", "currency", "local_symbol", "trading_class")
        values = [self.text() for _ in keys]
        spec = dict(zip(keys, values))
        spec["con_id"] = parse_int(spec["con_id"])
        spec["strike"] = parse_float(spec["strike"], 0.0) or 0.0
        return spec


# live tick type -> the delayed one real TWS uses under reqMarketDataType(3/4)
DELAYED_TICKS = {1: 66, 2: 67, 4: 68, 9: 75, 8: 74, 13: 83}


@dataclass(slots=True)
class MarketSub:
    req_id: int
    contract: ContractInfo | None
    legs: list[tuple[ContractInfo, int, str]]
    generic: set[str]
    delayed: bool = False
    sent: dict = field(default_factory=dict)

    def tick(self, tick_type: int) -> int:
        return DELAYED_TICKS.get(tick_type, tick_type) if self.delayed else tick_type


class Session:
    """One client connection: handshake, then a table from message id to handler."""

    def __init__(self, server: SimServer, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.client_id: int | None = None
        self.subs: dict[int, MarketSub] = {}
        self.account_updates = False
        self.positions_sub = False
        self.pnl_reqs: dict[int, int | None] = {}       # reqId -> conId (None: account PnL)
        self.multi_reqs: set[int] = set()
        self.market_data_type = 1
        self.next_id = 1
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self.closed = False
        self.handlers: dict[int, Callable[[Fields], None]] = {
            71: self.start_api, 61: self.req_positions, 64: self.cancel_positions,
            5: self.req_open_orders, 16: self.req_all_open_orders, 15: self.ignore,
            99: self.req_completed_orders, 6: self.req_account_updates,
            76: self.req_account_updates_multi, 77: self.cancel_account_updates_multi,
            7: self.req_executions, 8: self.req_ids, 17: self.req_managed_accounts,
            9: self.req_contract_details, 1: self.req_mkt_data, 2: self.cancel_mkt_data,
            59: self.req_market_data_type, 3: self.place_order, 4: self.cancel_order,
            58: self.req_global_cancel, 20: self.req_historical_data, 25: self.ignore,
            78: self.req_sec_def_opt_params, 92: self.req_pnl, 93: self.cancel_pnl,
            94: self.req_pnl_single, 95: self.cancel_pnl, 62: self.req_account_summary,
            63: self.ignore, 49: self.req_current_time, 55: self.calculate_option_price,
            54: self.calculate_implied_vol, 57: self.ignore, 56: self.ignore,
            91: self.req_market_rule,
        }

    # ---- output, batched per loop iteration
    def send(self, fields: list) -> None:
        if self.closed:
            return
        self._out.append(encode_message(fields))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._out and not self.closed:
            data = b"".join(self._out)
            self._out.clear()
            try:
                self.writer.write(data)
            except (ConnectionError, RuntimeError):
                self.close()
                return
            if self.writer.transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
                log.warning("sim: client %s is not reading; dropping it", self.client_id)
                self.close()

    def error(self, req_id: int, code: int, message: str) -> None:
        self.send(msg.error(req_id, code, message))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.writer.close()
            except RuntimeError:
                pass

    # ---- connection lifecycle
    async def run(self) -> None:
        try:
            await self._handshake()
            framer = FrameReader()
            while not self.closed:
                data = await self.reader.read(65536)
                if not data:
                    break
                for payload in framer.feed(data):
                    if self.server.faults.delay:
                        await asyncio.sleep(self.server.faults.delay)
                    self.dispatch(payload)
                    if self.closed:
                        break
        except (ProtocolError, asyncio.IncompleteReadError, ConnectionError) as exc:
            log.info("sim: closing client %s: %s", self.client_id, exc)
        finally:
            self.close()
            self.server.session_ended(self)

    async def _handshake(self) -> None:
        prefix = await self.reader.readexactly(4)
        if prefix != b"API\0":
            raise ProtocolError("client did not start with API\\0")
        size = int.from_bytes(await self.reader.readexactly(4), "big")
        if size > 1024:
            raise ProtocolError("oversized hello")
        hello = (await self.reader.readexactly(size)).decode("ascii", errors="replace")
        match = re.match(r"v(\d+)(?:\.\.(\d+))?", hello)
        if not match:
            raise ProtocolError(f"bad version hello {hello!r}")
        low = int(match.group(1))
        high = int(match.group(2) or low)
        if low > msg.SERVER_VERSION or high < MIN_CLIENT_VERSION:
            raise ProtocolError(f"unsupported client versions {low}..{high}")
        version = min(high, msg.SERVER_VERSION)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d %H:%M:%S UTC")
        self.writer.write(frame_raw(f"{version}\0{stamp}\0".encode()))

    def dispatch(self, payload: bytes) -> None:
        try:
            fields = split_fields(payload)
            msg_id = int(fields[0])
        except (ValueError, IndexError, UnicodeDecodeError):
            self.error(-1, 505, "Fatal Error: Unknown message id.")
            return
        handler = self.handlers.get(msg_id)
        if handler is None:
            self.error(-1, 505, "Fatal Error: Unknown message id.")
            return
        if self.client_id is None and msg_id != 71:
            self.error(-1, 504, "Not connected")
            return
        try:
            handler(Fields(fields))
        except BadRequest as exc:
            self.error(exc.req_id, exc.code, exc.message)
        except Exception as exc:  # noqa: BLE001 - one bad request must not end the session
            if not isinstance(exc, (ValueError, IndexError, KeyError, TypeError)):
                log.exception("sim: request %s failed", msg_id)
            self.error(-1, 320, f"Error reading request. Message id {msg_id}. "
                                f"Unable to parse data. {type(exc).__name__}")
        self.server.note_id(self, fields)

    # ---- handlers: connection
    def ignore(self, f: Fields) -> None:
        return None

    def start_api(self, f: Fields) -> None:
        f.skip()
        client_id = f.int()
        if self.client_id is not None:
            return
        if not self.server.claim_client_id(self, client_id):
            self.error(-1, 326, "Unable to connect as the client id is already in use. "
                                "Retry with a unique client id.")
            self._flush()
            self.close()
            return
        self.client_id = client_id
        self.next_id = self.server.next_order_id(client_id)
        self.send(msg.managed_accounts(self.server.account.account_id))
        self.send(msg.next_valid_id(self.next_id))
        for code, text in FARM_NOTICES:
            self.error(-1, code, text)

    def req_ids(self, f: Fields) -> None:
        self.send(msg.next_valid_id(self.server.next_order_id(self.client_id)))

    def req_managed_accounts(self, f: Fields) -> None:
        self.send(msg.managed_accounts(self.server.account.account_id))

    def req_market_rule(self, f: Fields) -> None:
        rule_id = f.int()
        increments = MARKET_RULES.get(rule_id)
        if increments is None:
            raise BadRequest(-1, 200, f"No market rule {rule_id}")
        fields: list = [93, rule_id, len(increments)]
        for low_edge, increment in increments:
            fields += [low_edge, increment]
        self.send(fields)

    def req_current_time(self, f: Fields) -> None:
        self.send([49, 1, int(self.server.market.clock.now().timestamp())])

    # ---- account
    def req_positions(self, f: Fields) -> None:
        self.positions_sub = True
        acct = self.server.account
        for h in acct.holdings.values():
            if h.quantity:
                self.send(msg.position(acct.account_id, h.contract, h.quantity, h.avg_cost))
        self.send([62, 1])

    def cancel_positions(self, f: Fields) -> None:
        self.positions_sub = False

    def req_account_updates(self, f: Fields) -> None:
        f.skip()
        subscribe = f.bool()
        self.account_updates = subscribe
        if subscribe:
            self.send_account_values(include_portfolio=True)
            self.send([54, 1, self.server.account.account_id])

    def send_account_values(self, include_portfolio: bool) -> None:
        acct = self.server.account
        values = self.server.account_summary()
        for key, value in values.items():
            self.send(msg.account_value(key, f"{value:.2f}", "USD", acct.account_id))
        for key, value, currency in ACCOUNT_TEXT_VALUES:
            self.send(msg.account_value(key, value, currency, acct.account_id))
        self.send(msg.account_value("AccountCode", acct.account_id, "", acct.account_id))
        if include_portfolio:
            for h in acct.holdings.values():
                if h.quantity:
                    self.send_portfolio_row(h)
        self.send([8, 1, self.server.market.clock.now().strftime("%H:%M")])

    def send_portfolio_row(self, h) -> None:
        acct = self.server.account
        row = self.server.portfolio_row(h)
        self.send(msg.portfolio_value(acct.account_id, h.contract, h.quantity, row, h.avg_cost,
                                      h.realized))

    def req_account_updates_multi(self, f: Fields) -> None:
        f.skip()
        req_id = f.int()
        acct = self.server.account
        for key, value in self.server.account_summary().items():
            self.send([73, 1, req_id, acct.account_id, "", key, f"{value:.2f}", "USD"])
        self.send([74, 1, req_id])

    def cancel_account_updates_multi(self, f: Fields) -> None:
        return None

    def req_account_summary(self, f: Fields) -> None:
        f.skip()
        req_id = f.int()
        f.text()
        tags = [t.strip() for t in f.text().split(",") if t.strip()]
        acct = self.server.account
        values = self.server.account_summary()
        for tag in tags:
            if tag in values:
                self.send([63, 1, req_id, acct.account_id, tag, f"{values[tag]:.2f}", "USD"])
            elif tag == "AccountType":
                self.send([63, 1, req_id, acct.account_id, tag, "INDIVIDUAL", ""])
            elif tag.startswith("$LEDGER"):
                for key in ("CashBalance", "TotalCashBalance"):
                    self.send([63, 1, req_id, acct.account_id, key,
                               f"{values['TotalCashValue']:.2f}", "USD"])
                self.send([63, 1, req_id, acct.account_id, "NetLiquidationByCurrency",
                           f"{values['NetLiquidation']:.2f}", "USD"])
        self.send([64, 1, req_id])

    def req_pnl(self, f: Fields) -> None:
        req_id = f.int()
        self.pnl_reqs[req_id] = None
        self.server.send_pnl(self, req_id, None)

    def req_pnl_single(self, f: Fields) -> None:
        req_id = f.int()
        f.text()
        f.text()
        con_id = f.int()
        self.pnl_reqs[req_id] = con_id
        self.server.send_pnl(self, req_id, con_id)

    def cancel_pnl(self, f: Fields) -> None:
        self.pnl_reqs.pop(f.int(), None)

    # ---- contracts
    def req_contract_details(self, f: Fields) -> None:
        f.skip()
        req_id = f.int()
        spec = f.contract()
        matches = self.server.resolve(spec, many=True)
        if not matches:
            raise BadRequest(req_id, 200, "No security definition has been found for the request")
        for info in matches:
            self.send(self.server.contract_data(req_id, info))
        self.send([52, 1, req_id])

    def req_sec_def_opt_params(self, f: Fields) -> None:
        req_id = f.int()
        symbol = f.text().upper()
        universe = self.server.market.universe
        if symbol not in SPEC_BY_SYMBOL:
            raise BadRequest(req_id, 200, "No security definition has been found for the request")
        expiries = [d.strftime("%Y%m%d") for d in universe.expiries[symbol]]
        strikes = universe.strikes[symbol]
        self.send([75, req_id, "SMART", SPEC_BY_SYMBOL[symbol].con_id, symbol, "100",
                   len(expiries), *expiries, len(strikes), *strikes])
        self.send([76, req_id])

    # ---- market data
    def req_market_data_type(self, f: Fields) -> None:
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
        sub = MarketSub(req_id, contract, legs, generic, delayed=self.market_data_type in (3, 4))
        self.send([58, 1, req_id, self.market_data_type])
        if sub.delayed:
            self.error(req_id, 10167, "Requested market data is not subscribed. "
                                      "Displaying delayed market data.")
        self.send([81, req_id, 0.01, "9c0001", 3])
        self.server.send_ticks(self, sub, first=True)
        if snapshot or regulatory:
            self.send([57, 1, req_id])
        else:
            self.subs[req_id] = sub

    def cancel_mkt_data(self, f: Fields) -> None:
        f.skip()
        self.subs.pop(f.int(), None)

    def req_historical_data(self, f: Fields) -> None:
        req_id = f.int()
        spec = f.contract()
        f.bool()
        end_text = f.text()
        bar_size = f.text().strip()
        duration = f.text()
        f.text()
        what_to_show = f.text() or "TRADES"
        format_date = f.int(1)
        info = self.server.resolve(spec)
        if info is None:
            raise BadRequest(req_id, 200, "No security definition has been found for the request")
        try:
            rows = bars(self.server.market, self.server.seed, info, bar_size, duration,
                        parse_end(end_text), what_to_show)
        except (HistoryError, ValueError) as exc:
            raise BadRequest(req_id, 162, str(exc)) from exc
        start = format_bar_time(rows[0][0], format_date)
        end = format_bar_time(rows[-1][0], format_date)
        fields: list = [17, req_id, start, end, len(rows)]
        for stamp, o, h, lo, c, v, wap, count in rows:
            fields += [format_bar_time(stamp, format_date), o, h, lo, c, v, wap, count]
        self.send(fields)

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

    # ---- orders
    def place_order(self, f: Fields) -> None:
        order_id = f.int()
        spec = f.contract()
        f.skip(2)
        action = f.text().upper()
        quantity = f.float()
        order_type = f.text().upper()
        limit_price = f.float()
        aux_price = f.float()
        tif = f.text()
        f.text()
        account = f.text()
        f.skip(2)
        order_ref = f.text()
        transmit = f.text() != "0"
        f.skip(7)
        legs: list[tuple[ContractInfo | None, int, str]] = []
        is_bag = spec["sec_type"].upper() == "BAG"
        if is_bag:
            for _ in range(f.int()):
                con_id, ratio, leg_action = f.int(), f.int(), f.text().upper()
                f.skip(5)
                legs.append((self.server.market.universe.by_id.get(con_id), ratio, leg_action))
            for _ in range(f.int()):
                f.text()
            f.skip(2 * f.int())
        f.skip(7)                         # sharesAllocation .. faPercentage
        f.skip(22)                        # modelCode .. volatilityType
        delta_neutral_type = f.text()
        f.skip(1)                         # deltaNeutralAuxPrice
        if delta_neutral_type:
            f.skip(8)
        f.skip(6)                         # continuousUpdate .. scaleSubsLevelSize
        increment = f.float()
        if increment is not None and 0 < increment:
            f.skip(7)
        f.skip(3)                         # scaleTable, activeStartTime, activeStopTime
        if f.text():                      # hedgeType
            f.skip(1)
        f.skip(4)                         # optOutSmartRouting .. notHeld
        if f.bool():                      # delta-neutral contract
            f.skip(3)
        if f.text():                      # algoStrategy
            f.skip(2 * f.int())
        f.skip(1)                         # algoId
        what_if = f.bool()
        contract = None if is_bag else self.server.resolve(spec)
        request = OrderRequest(
            order_id=order_id, contract=contract, sec_type="BAG" if is_bag else (
                contract.sec_type if contract else spec["sec_type"]),
            symbol=spec["symbol"], action=action, quantity=quantity, order_type=order_type,
            limit_price=limit_price, aux_price=aux_price, tif=tif, account=account,
            order_ref=order_ref, transmit=transmit, what_if=what_if, legs=legs,
        )
        self.server.engine.place(self.client_id, request)

    def cancel_order(self, f: Fields) -> None:
        f.skip()
        self.server.engine.cancel(self.client_id, f.int())

    def req_global_cancel(self, f: Fields) -> None:
        self.server.engine.global_cancel()

    def _send_open(self, orders: list[LiveOrder]) -> None:
        for order in orders:
            self.send(msg.open_order(order))
            self.send(msg.order_status(order))
        self.send([53, 1])

    def req_open_orders(self, f: Fields) -> None:
        self._send_open([o for o in self.server.engine.orders.values()
                         if o.status in ("PreSubmitted", "Submitted", "PendingCancel")
                         and (self.client_id == 0 or o.client_id == self.client_id)])

    def req_all_open_orders(self, f: Fields) -> None:
        self._send_open([o for o in self.server.engine.orders.values()
                         if o.status in ("PreSubmitted", "Submitted", "PendingCancel")])

    def req_completed_orders(self, f: Fields) -> None:
        for order in self.server.engine.orders.values():
            if order.status in ("Filled", "Cancelled", "ApiCancelled", "Inactive"):
                self.send(msg.completed_order(order))
        self.send([102])

    def req_executions(self, f: Fields) -> None:
        f.skip()
        req_id = f.int()
        client_filter = f.int()
        account = f.text()
        f.text()
        symbol, sec_type, _exchange, side = (f.text().upper() for _ in range(4))
        for fill in self.server.engine.fills:
            if client_filter and fill.client_id != client_filter:
                continue
            if account and account != fill.account:
                continue
            if symbol and fill.contract.symbol != symbol:
                continue
            if sec_type and fill.contract.sec_type != sec_type:
                continue
            if side and side[0] != fill.side[0]:          # BUY/BOT, SELL/SLD
                continue
            self.send(msg.execution(req_id, fill))
            self.send(msg.commission_report(fill))
        self.send([55, 1, req_id])


class SimServer:
    """Shared state (market, account, orders) and the sessions; lives on one asyncio loop."""

    def __init__(self, seed: int, tick_rate: float, market: Market, account: Account) -> None:
        self.seed = seed
        self.tick_rate = tick_rate
        self.market = market
        self.account = account
        self.faults = Faults(on_drop_all=self._drop_all_threadsafe)
        self.engine = OrderEngine(market, account, self, seed)
        self.sessions: set[Session] = set()
        self.client_ids: dict[int, Session] = {}
        self.next_ids: dict[int, int] = {}
        self._server: asyncio.base_events.Server | None = None
        self._tasks: list[asyncio.Task] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self.host = ""
        self.port = 0
        self._quote_cache: dict[int, tuple[int, Quote]] = {}
        self._summary_cache: tuple[int, int, dict] | None = None
        self._fills_version = 0

    # ---- lifecycle
    async def start(self, host: str, port: int) -> int:
        self.loop = asyncio.get_running_loop()
        self.host = host
        await self.start_listening(port)
        self._tasks = [asyncio.create_task(self._market_task()),
                       asyncio.create_task(self._account_task())]
        return self.port

    async def start_listening(self, port: int | None = None) -> int:
        if self._server is not None:
            return self.port
        self._server = await asyncio.start_server(
            self._on_connect, self.host, self.port if port is None else port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop_listening(self) -> None:
        if self._server is not None:
            # no wait_closed(): from Python 3.12 it also waits for every open connection
            self._server.close()
            self._server = None

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        self.drop_all()
        if self._server is not None:
            self._server.close()
            self._server = None
        await asyncio.sleep(0)

    def drop_all(self) -> None:
        for session in list(self.sessions):
            session.close()

    def _drop_all_threadsafe(self) -> None:
        if self.loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self.drop_all()
        else:
            asyncio.run_coroutine_threadsafe(self._drop_all_async(), self.loop).result(5)

    async def _drop_all_async(self) -> None:
        self.drop_all()

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(self, reader, writer)
        self.sessions.add(session)
        await session.run()

    def session_ended(self, session: Session) -> None:
        self.sessions.discard(session)
        if session.client_id is not None and self.client_ids.get(session.client_id) is session:
            del self.client_ids[session.client_id]

    def claim_client_id(self, session: Session, client_id: int) -> bool:
        holder = self.client_ids.get(client_id)
        if holder is not None and not holder.closed:
            return False
        self.client_ids[client_id] = session
        return True

    def next_order_id(self, client_id: int) -> int:
        return self.next_ids.get(client_id, 1)

    def note_id(self, session: Session, fields: list[str]) -> None:
        """Track the highest request/order id a client used so reqIds/reconnects continue above it."""
        if session.client_id is None or len(fields) < 3:
            return
        try:
            index = ID_FIELD.get(int(fields[0]))
            if index is None:
                return
            candidate = int(fields[index])
        except (ValueError, IndexError):
            return
        if 0 < candidate < 2**31 - 1:
            current = self.next_ids.get(session.client_id, 1)
            self.next_ids[session.client_id] = max(current, candidate + 1)

    # ---- lookups
    def resolve(self, spec: dict, many: bool = False):
        universe = self.market.universe
        if spec["con_id"]:
            info = universe.by_id.get(spec["con_id"])
            found = [info] if info else []
        else:
            sec_type = spec["sec_type"].upper()
            if sec_type == "OPT" and spec["local_symbol"].strip() and not spec["symbol"]:
                found = [i for i in universe.options.values() if i.local_symbol == spec["local_symbol"]]
            else:
                found = universe.matching(spec["symbol"], sec_type, spec["expiry"].strip()[:8],
                                          spec["strike"] or None, spec["right"])
            if spec["local_symbol"].strip() and found:
                found = [i for i in found if i.local_symbol.replace(" ", "") ==
                         spec["local_symbol"].replace(" ", "")] or found
        if many:
            return found
        return found[0] if len(found) == 1 else None

    def contract_data(self, req_id: int, info: ContractInfo) -> list:
        spec = SPEC_BY_SYMBOL[info.symbol]
        if info.sec_type == "OPT":
            name = f"{spec.long_name} {info.expiry:%b%d'%y} {info.strike:g} {'Call' if info.right == 'C' else 'Put'}"
        else:
            name = spec.long_name
        return msg.contract_data(req_id, info, name, 0.01, spec.con_id)

    # ---- valuation helpers (cached per market version)
    def quote(self, info: ContractInfo) -> Quote:
        cached = self._quote_cache.get(info.con_id)
        if cached is not None and cached[0] == self.market.version:
            return cached[1]
        q = self.market.quote(info)
        self._quote_cache[info.con_id] = (self.market.version, q)
        return q

    def account_summary(self) -> dict:
        key = (self.market.version, self._fills_version)
        if self._summary_cache is None or self._summary_cache[:2] != key:
            self._summary_cache = (*key, self.account.summary())
        return self._summary_cache[2]

    def portfolio_row(self, holding) -> dict:
        return self.account.portfolio_row(holding)

    def send_pnl(self, session: Session, req_id: int, con_id: int | None) -> None:
        acct = self.account
        if con_id is None:
            s = self.account_summary()
            session.send([94, req_id, s["DailyPnL"], s["UnrealizedPnL"], s["RealizedPnL"]])
            return
        h = acct.holdings.get(con_id)
        if h is None:
            session.send([95, req_id, 0, 0.0, 0.0, 0.0, 0.0])
            return
        row = acct.portfolio_row(h)
        session.send([95, req_id, msg.quantity_text(h.quantity), row["daily"] if h.quantity else 0.0,
                      row["unrealized"] if h.quantity else 0.0, h.realized,
                      row["market_value"] if h.quantity else 0.0])

    # ---- ticking
    def send_ticks(self, session: Session, sub: MarketSub, first: bool = False) -> None:
        sent = sub.sent
        rid = sub.req_id
        if sub.legs:
            bid, ask = self._combo_quote(sub.legs)
            if first or sent.get("bid") != bid:
                sent["bid"] = bid
                session.send(msg.tick_price(rid, sub.tick(1), bid, 1))
            if first or sent.get("ask") != ask:
                sent["ask"] = ask
                session.send(msg.tick_price(rid, sub.tick(2), ask, 1))
            return
        info = sub.contract
        q = self.quote(info)
        if first:
            session.send(msg.tick_price(rid, sub.tick(9), self.market.close_price(info), 0))
            session.send(msg.tick_size(rid, sub.tick(8), self.market.volume(info)))
        elif not self.market.clock.frozen:
            session.send(msg.tick_size(rid, sub.tick(8), self.market.tick_volume(info)))
        if first or sent.get("bid") != (q.bid, q.bid_size):
            sent["bid"] = (q.bid, q.bid_size)
            session.send(msg.tick_price(rid, sub.tick(1), q.bid, q.bid_size))
        if first or sent.get("ask") != (q.ask, q.ask_size):
            sent["ask"] = (q.ask, q.ask_size)
            session.send(msg.tick_price(rid, sub.tick(2), q.ask, q.ask_size))
        if first or sent.get("last") != q.last:
            sent["last"] = q.last
            session.send(msg.tick_price(rid, sub.tick(4), q.last, q.bid_size))
        if info.sec_type == "OPT":
            if first and "101" in sub.generic:     # option open interest: tick 27 call, 28 put
                session.send(msg.tick_size(rid, 27 if info.right == "C" else 28,
                                           self.market.open_interest(info)))
            if first or sent.get("greeks") != self.market.version:
                sent["greeks"] = self.market.version
                self._send_greeks(session, rid, sub.tick(13), info, q)
        elif "106" in sub.generic and (first or sent.get("iv") != self.market.version):
            sent["iv"] = self.market.version
            t = 30 / 365
            spot = self.market.spots[info.symbol]
            session.send(msg.tick_generic(rid, 24, self.market.implied_vol(info.symbol, spot, t)))

    def _send_greeks(self, session: Session, rid: int, tick_type: int, info: ContractInfo,
                     q: Quote) -> None:
        mode = self.faults.greeks_mode(info.con_id)
        if mode == "withhold":
            return
        session.send(msg.tick_generic(rid, 24, q.iv))
        g = q.greeks
        if mode is None:
            session.send(msg.option_computation(rid, tick_type, q.iv, g["delta"], g["price"],
                                                g["gamma"], g["vega"], g["theta"], q.und_price))
        else:
            session.send(msg.option_computation(rid, tick_type, *corrupt_greeks(mode, q.und_price)))

    def _combo_quote(self, legs: list[tuple[ContractInfo, int, str]]) -> tuple[float, float]:
        bid = ask = 0.0
        for info, ratio, action in legs:
            q = self.quote(info)
            if action == "BUY":
                bid += ratio * q.bid
                ask += ratio * q.ask
            else:
                bid -= ratio * q.ask
                ask -= ratio * q.bid
        return round(bid, 2), round(ask, 2)

    async def _market_task(self) -> None:
        interval = 1.0 / self.tick_rate
        loop = asyncio.get_running_loop()
        last = due = loop.time()
        while True:
            due += interval
            await asyncio.sleep(max(0.0, due - loop.time()))
            now = loop.time()
            if now - due > 1.0:          # fell far behind (suspended, overloaded): do not burst
                due = now
            try:
                self.market.step(now - last)
                self.on_market_change()
            except Exception:  # noqa: BLE001 - the market must keep ticking for everyone else
                log.exception("sim: market tick failed")
            last = now

    def on_market_change(self) -> None:
        for session in list(self.sessions):
            for sub in list(session.subs.values()):
                self.send_ticks(session, sub)
        self.engine.on_market()

    async def _account_task(self) -> None:
        while True:
            await asyncio.sleep(ACCOUNT_REFRESH_SECONDS)
            try:
                self.refresh_accounts()
            except Exception:  # noqa: BLE001 - keep refreshing the other sessions next time
                log.exception("sim: account refresh failed")

    def refresh_accounts(self) -> None:
        for session in list(self.sessions):
            if session.account_updates:
                session.send_account_values(include_portfolio=True)
            for req_id, con_id in list(session.pnl_reqs.items()):
                self.send_pnl(session, req_id, con_id)

    # ---- OrderSink
    def _owner(self, client_id: int) -> Session | None:
        session = self.client_ids.get(client_id)
        return session if session is not None and not session.closed else None

    def order_error(self, client_id: int, order_id: int, code: int, message: str) -> None:
        session = self._owner(client_id)
        if session:
            session.error(order_id, code, message)

    def order_open(self, order: LiveOrder, what_if: dict | None = None) -> None:
        session = self._owner(order.client_id)
        if session:
            session.send(msg.open_order(order, what_if))

    def order_status(self, order: LiveOrder) -> None:
        session = self._owner(order.client_id)
        if session:
            if order.status == "Filled":
                session.send(msg.open_order(order))
            session.send(msg.order_status(order))

    def order_fill(self, order: LiveOrder, fill: Fill) -> None:
        self._fills_version += 1
        session = self._owner(order.client_id)
        if session:
            session.send(msg.execution(-1, fill))
            session.send(msg.commission_report(fill))

    def positions_changed(self, con_ids: list[int]) -> None:
        self._fills_version += 1
        acct = self.account
        for session in list(self.sessions):
            for con_id in con_ids:
                h = acct.holdings[con_id]
                if session.positions_sub:
                    session.send(msg.position(acct.account_id, h.contract, h.quantity, h.avg_cost))
                if session.account_updates:
                    session.send_portfolio_row(h)
            if session.account_updates:
                session.send_account_values(include_portfolio=False)
