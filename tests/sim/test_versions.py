"""Version negotiation: hand-written handshakes, and the official client held to a lower highest
version, each followed by an order, a what-if, a fill and completed orders (decoded strictly)."""

from __future__ import annotations

import socket
import struct

import pytest
from ibapi.contract import Contract
from ibapi.order_cancel import OrderCancel

from tests.sim.official import OfficialClient
from tests.sim.test_official_client import WAIT, limit, market, next_id, stock
from v6core.sim.versions import MIN_CLIENT_VERSION, SERVER_VERSION

HOST = "127.0.0.1"


def _frame(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


def _read_frame(sock: socket.socket) -> list[str] | None:
    header = b""
    while len(header) < 4:
        chunk = sock.recv(4 - len(header))
        if not chunk:
            return None
        header += chunk
    (size,) = struct.unpack(">I", header)
    body = b""
    while len(body) < size:
        chunk = sock.recv(size - len(body))
        if not chunk:
            return None
        body += chunk
    return body.decode().split("\0")[:-1]


def handshake(port: int, hello: str) -> tuple[socket.socket, list[str]]:
    sock = socket.create_connection((HOST, port), timeout=WAIT)
    sock.sendall(b"API\0" + _frame(hello.encode()))
    reply = _read_frame(sock)
    assert reply is not None, "server closed without an answer"
    return sock, reply


@pytest.mark.parametrize("hello, negotiated", [
    ("v100..226", SERVER_VERSION),          # today's official client offers up to 226
    (f"v{MIN_CLIENT_VERSION}..{SERVER_VERSION}", SERVER_VERSION),   # ib_async 2.1
    ("v100..176", 176),
    ("v163..170", 170),
    (f"v{MIN_CLIENT_VERSION}", MIN_CLIENT_VERSION),
])
def test_hand_written_handshake_negotiates_the_client_highest_version(gw, hello, negotiated):
    sock, reply = handshake(gw.port, hello)
    try:
        assert int(reply[0]) == negotiated and reply[1].endswith("UTC")
        sock.sendall(_frame(b"71\x002\x005\x00\x00"))          # startApi v2, client id 5
        first = _read_frame(sock)
        assert first[:2] == ["15", "1"] or first[:2] == ["9", "1"], first
    finally:
        sock.close()


def test_a_client_older_than_the_lowest_version_is_told_why_before_the_close(gw):
    sock, reply = handshake(gw.port, f"v100..{MIN_CLIENT_VERSION - 1}")
    try:
        assert int(reply[0]) == MIN_CLIENT_VERSION - 1
        error = _read_frame(sock)
        assert error[0] == "4" and error[3] == "506" and "Unsupported version" in error[4], error
        assert f"v{MIN_CLIENT_VERSION}..{SERVER_VERSION}" in error[4]
        assert len(error) == 5                  # the client is older than 166: no advanced JSON
        assert _read_frame(sock) is None        # then the connection closes
    finally:
        sock.close()


VERSIONS = [MIN_CLIENT_VERSION, 158, 162, 163, 164, 166, 170, 176, 177, SERVER_VERSION]


@pytest.mark.parametrize("version", VERSIONS)
def test_order_what_if_fill_and_completed_orders_at_each_version(gw, version):
    c = OfficialClient(max_version=version).start(gw.port, client_id=40)
    try:
        assert c.serverVersion() == version
        aapl = stock(gw)
        price = round(gw.quote(aapl.conId)["bid"] * 0.8, 2)

        resting = next_id(c)
        c.placeOrder(resting, aapl, limit("BUY", 2, price, orderRef=f"v{version}"))
        c.wait_for(lambda: c.named("orderStatus", resting), WAIT, "resting order status")
        _, contract, order, _ = c.first("openOrder", resting)
        assert (contract.conId, order.orderRef, order.lmtPrice) == (aapl.conId, f"v{version}", price)

        what_if = next_id(c)
        c.placeOrder(what_if, aapl, limit("SELL", 5, round(price * 1.5, 2), whatIf=True))
        _, _, order, state = c.wait_for(lambda: c.first("openOrder", what_if), WAIT, "what-if")
        assert order.whatIf and float(state.initMarginChange) != 0 and state.commissionAndFees > 0
        assert not [o for o in gw.orders() if o.order_id == what_if and o.client_id == 40]

        filled = next_id(c)
        c.placeOrder(filled, stock(gw, "SPY"), market("BUY", 3))
        c.wait_for(lambda: any(a[1] == "Filled" for a in c.named("orderStatus", filled)), WAIT)
        c.wait_for(lambda: c.named("commissionAndFeesReport"), WAIT)
        (_, _, execution), = [a for a in c.named("execDetails") if a[2].orderId == filled]
        assert execution.shares == 3 and execution.side == "BOT"

        c.cancelOrder(resting, OrderCancel())
        c.wait_for(lambda: 202 in c.errors(resting), WAIT, "cancel confirmation")

        c.reqCompletedOrders(False)
        c.wait_for(lambda: c.first("completedOrdersEnd") is not None, WAIT)
        done = {(k.symbol, s.status) for k, o, s in c.named("completedOrder")}
        assert ("SPY", "Filled") in done and ("AAPL", "Cancelled") in done

        spy_details = Contract()
        spy_details.conId = gw.lookup("SPY").con_id
        c.reqContractDetails(1, spy_details)
        c.wait_for(lambda: c.first("contractDetailsEnd", 1), WAIT)
        (_, details), = c.named("contractDetails", 1)
        assert details.contract.symbol == "SPY" and details.tradingHours
        assert c.problems == [], c.problems
    finally:
        c.stop()
