"""placeOrder as the real ib_async client encodes it (incl. optional groups) parses field-exactly."""

from __future__ import annotations

from datetime import date

import pytest
from ib_async import ComboLeg, Contract, LimitOrder, MarketOrder, Option, Stock, TagValue
from ib_async.client import Client

from v6core.models import ContractInfo
from v6core.sim.chains import Universe
from v6core.sim.codec import split_fields
from v6core.sim.server import Fields, Session

SPOTS = {"SPY": 590.0, "QQQ": 510.0, "IWM": 225.0, "AAPL": 230.0, "TSLA": 340.0}
UNIVERSE = Universe(SPOTS, date(2026, 11, 23))


class CapturingClient(Client):
    """ib_async's own encoder at server version 178, writing into a list instead of a socket."""

    def __init__(self) -> None:
        super().__init__(wrapper=None)
        self._serverVersion = 178
        self.connState = Client.CONNECTED
        self.sent: list[list[str]] = []

    def sendMsg(self, msg: str) -> None:
        self.sent.append(split_fields(msg.encode()))


class FakeEngine:
    def __init__(self) -> None:
        self.requests = []

    def place(self, client_id, request) -> None:
        self.requests.append(request)


class FakeMarket:
    universe = UNIVERSE


class FakeServer:
    def __init__(self) -> None:
        self.engine = FakeEngine()
        self.market = FakeMarket()

    def resolve(self, spec, many=False):
        return UNIVERSE.by_id.get(spec["con_id"])


def parse(contract, order):
    client = CapturingClient()
    client.placeOrder(41, contract, order)
    server = FakeServer()
    session = Session.__new__(Session)
    session.server = server
    session.client_id = 3
    session.place_order(Fields(client.sent[-1]))
    return server.engine.requests[-1]


def _option() -> ContractInfo:
    return next(iter(UNIVERSE.options.values()))


def _variants():
    plain = LimitOrder("BUY", 2, 1.25, orderRef="r-1", tif="GTC")
    algo = LimitOrder("SELL", 1, 2.5, orderRef="r-2", algoStrategy="Adaptive",
                      algoParams=[TagValue("adaptivePriority", "Normal")])
    hedged = MarketOrder("BUY", 3, orderRef="r-3", hedgeType="D", hedgeParam="0.5")
    neutral = LimitOrder("BUY", 1, 1.0, orderRef="r-4", deltaNeutralOrderType="MKT",
                         deltaNeutralAuxPrice=1.0, volatilityType=2)
    scaled = LimitOrder("BUY", 10, 1.0, orderRef="r-5", scalePriceIncrement=0.05,
                        scaleInitLevelSize=2, scaleSubsLevelSize=2)
    return [plain, algo, hedged, neutral, scaled]


@pytest.mark.parametrize("what_if", [False, True])
@pytest.mark.parametrize("index", range(5))
def test_place_order_fields_including_optional_groups(index, what_if):
    order = _variants()[index]
    order.whatIf = what_if
    info = _option()
    request = parse(Option(conId=info.con_id, exchange="SMART"), order)
    assert request.contract == info
    assert (request.action, request.quantity, request.order_type) == \
        (order.action, order.totalQuantity, order.orderType)
    assert request.order_ref == order.orderRef and request.what_if is what_if
    if order.orderType == "LMT":
        assert request.limit_price == order.lmtPrice
    else:
        assert request.limit_price is None


def test_place_order_bag_legs():
    options = list(UNIVERSE.options.values())[:3]
    bag = Contract(symbol=options[0].symbol, secType="BAG", exchange="SMART", currency="USD",
                   comboLegs=[ComboLeg(conId=o.con_id, ratio=r, action=a, exchange="SMART")
                              for o, r, a in zip(options, (1, 2, 1), ("BUY", "SELL", "BUY"))])
    order = LimitOrder("BUY", 1, -0.35, orderRef="fly", whatIf=True)
    request = parse(bag, order)
    assert request.sec_type == "BAG" and request.what_if and request.limit_price == -0.35
    assert [(i.con_id, r, a) for i, r, a in request.legs] == \
        [(o.con_id, r, a) for o, r, a in zip(options, (1, 2, 1), ("BUY", "SELL", "BUY"))]


def test_stock_order_quantity_sent_as_int():
    request = parse(Stock(conId=UNIVERSE.stock("AAPL").con_id, exchange="SMART"),
                    MarketOrder("SELL", 100))
    assert request.quantity == 100.0 and request.contract.sec_type == "STK"
