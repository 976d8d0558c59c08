"""Fault controls and bad clients: each fault affects only what it targets."""

from __future__ import annotations

import asyncio
import math
import socket
import struct

import pytest
from ib_async import IB, Option

from tests.sim.conftest import HOST, ErrorLog, connect, run, until
from v6core.sim.codec import FrameReader, encode_message, split_fields


def _two_options(gw):
    held = [p.contract for p in gw.seeded_positions() if p.contract.sec_type == "OPT"]
    return held[0], held[1]


def test_withheld_and_bad_greeks(gw):
    normal, withheld = _two_options(gw)
    held = [p.contract for p in gw.seeded_positions() if p.contract.sec_type == "OPT"]
    nan_c, range_c, malformed_c = held[2], held[3], held[4]
    gw.faults.withhold_greeks({withheld.con_id})
    gw.faults.bad_greeks(nan_c.con_id, "nan")
    gw.faults.bad_greeks(range_c.con_id, "out_of_range")
    gw.faults.bad_greeks(malformed_c.con_id, "malformed")
    with pytest.raises(ValueError):
        gw.faults.bad_greeks(nan_c.con_id, "weird")

    async def go():
        ib = await connect(gw.port)
        try:
            contracts = [Option(conId=c.con_id, exchange="SMART")
                         for c in (normal, withheld, nan_c, range_c, malformed_c)]
            await ib.qualifyContractsAsync(*contracts)
            tickers = [ib.reqMktData(c) for c in contracts]
            await until(lambda: all(t.bid == t.bid for t in tickers)
                        and tickers[0].modelGreeks and tickers[2].modelGreeks
                        and tickers[3].modelGreeks, what="quotes")
            await asyncio.sleep(0.5)
            return tickers, ib.isConnected()
        finally:
            ib.disconnect()

    (t_normal, t_withheld, t_nan, t_range, t_bad), connected = run(go)
    assert connected
    assert t_normal.modelGreeks.delta == t_normal.modelGreeks.delta
    assert t_withheld.modelGreeks is None and t_withheld.bid >= 0
    assert math.isnan(t_nan.modelGreeks.delta) and math.isnan(t_nan.modelGreeks.gamma)
    assert t_range.modelGreeks.delta > 1 and t_range.modelGreeks.gamma < 0
    assert t_bad.modelGreeks is None and t_bad.ask > 0      # unparsable message dropped, quote fine


def test_delay_replies(gw):
    async def go():
        ib = await connect(gw.port)
        gw.faults.delay_replies(0.4)
        try:
            loop = asyncio.get_running_loop()
            start = loop.time()
            await ib.reqCurrentTimeAsync()
            delayed = loop.time() - start
            gw.faults.delay_replies(0)
            start = loop.time()
            await ib.reqCurrentTimeAsync()
            return delayed, loop.time() - start
        finally:
            ib.disconnect()

    delayed, _ = run(go)
    assert delayed >= 0.4


def test_drop_all_clients_then_reconnect(gw):
    async def go():
        ib = await connect(gw.port)
        dropped = asyncio.Event()
        ib.disconnectedEvent += lambda: dropped.set()
        gw.faults.drop_all_clients()
        await asyncio.wait_for(dropped.wait(), 5)
        assert not ib.isConnected()
        await ib.connectAsync(HOST, gw.port, clientId=1, timeout=5, raiseSyncErrors=True)
        try:
            return ib.isConnected(), len(ib.positions())
        finally:
            ib.disconnect()

    assert run(go) == (True, len(gw.seeded_positions()))


def test_stop_and_restart_listening_on_the_same_port(gw):
    port = gw.port

    async def go():
        existing = await connect(gw.port, client_id=1)
        try:
            gw.stop_listening()
            with pytest.raises(OSError):
                await asyncio.open_connection(HOST, port)
            assert existing.isConnected()
            await existing.reqCurrentTimeAsync()           # open sessions keep working
            assert gw.start_listening() == port
            late = await connect(port, client_id=2)
            late.disconnect()
        finally:
            existing.disconnect()

    run(go)


def test_duplicate_client_id_is_refused(gw):
    async def go():
        first = await connect(gw.port, client_id=4)
        second = IB()
        errors = ErrorLog(second)
        try:
            with pytest.raises((ConnectionError, TimeoutError, asyncio.TimeoutError)):
                await second.connectAsync(HOST, gw.port, clientId=4, timeout=1)
            return errors.codes(), first.isConnected()
        finally:
            second.disconnect()
            first.disconnect()

    codes, still_connected = run(go)
    assert 326 in codes and still_connected


def _raw_client(port: int, client_id: int) -> tuple[socket.socket, FrameReader]:
    sock = socket.create_connection((HOST, port), timeout=5)
    hello = b"v157..178"
    sock.sendall(b"API\0" + struct.pack(">I", len(hello)) + hello)
    sock.sendall(encode_message([71, 2, client_id, ""]))
    return sock, FrameReader()


def _read_until(sock: socket.socket, reader: FrameReader, wanted) -> list[list[str]]:
    seen: list[list[str]] = []
    while True:
        data = sock.recv(65536)
        if not data:
            return seen
        for frame in reader.feed(data):
            fields = split_fields(frame)
            seen.append(fields)
            if wanted(fields):
                return seen


def test_garbage_from_one_client_leaves_others_running(gw):
    async def go():
        ib = await connect(gw.port, client_id=1)
        try:
            loop = asyncio.get_running_loop()
            sock, reader = await loop.run_in_executor(None, _raw_client, gw.port, 50)

            def abuse() -> list[list[str]]:
                _read_until(sock, reader, lambda f: f[0] == "9")          # API ready
                sock.sendall(encode_message([9999, 1]))                    # unknown message id
                sock.sendall(encode_message(["abc"]))                      # not a message id
                sock.sendall(encode_message([9, 8]))                       # too few fields
                sock.sendall(struct.pack(">I", 6) + b"\xff\xfe\x00\x01\x02\x00")   # not UTF-8
                sock.sendall(encode_message([49, 1]))                      # still served
                return _read_until(sock, reader, lambda f: f[0] == "49")

            replies = await loop.run_in_executor(None, abuse)
            codes = [int(f[3]) for f in replies if f[0] == "4"]
            assert codes.count(505) >= 3 and 320 in codes
            assert replies[-1][0] == "49"

            def flood() -> bytes:
                sock.sendall(struct.pack(">I", 0x7FFFFFFF) + b"junk")      # absurd frame length
                return sock.recv(100)

            assert await loop.run_in_executor(None, flood) == b""          # that client is closed
            sock.close()
            bad = socket.create_connection((HOST, gw.port), timeout=5)
            bad.sendall(b"GET / HTTP/1.1\r\n\r\n")                          # not a TWS client
            assert await loop.run_in_executor(None, bad.recv, 100) == b""
            bad.close()
            assert ib.isConnected()
            await ib.reqCurrentTimeAsync()
            positions = await ib.reqPositionsAsync()
            return len(positions)
        finally:
            ib.disconnect()

    assert run(go) == len(gw.seeded_positions())
