"""The paper account persists across restarts (state file written atomically, reloaded at start),
a fresh seeded book on request, an overnight roll, and the embedded simulator's file beside the lake."""

from __future__ import annotations

import json
from ib_async import LimitOrder, MarketOrder, Stock

from tests.sim.conftest import HOST, connect, run, until
from v6core.sim import SimGateway
from v6core.sim.persistence import state_path_beside


def _gateway(path, fresh: bool = False) -> SimGateway:
    gw = SimGateway(seed=7, host=HOST, port=0, tick_rate=5.0, state_path=path, fresh=fresh)
    gw.start()
    return gw


def _trade(gw: SimGateway) -> dict:
    """Buy 10 SPY at market and leave a GTC bid resting; return what the client saw."""
    async def go():
        ib = await connect(gw.port, client_id=3)
        try:
            spy = Stock(conId=gw.lookup("SPY").con_id, exchange="SMART")
            filled = ib.placeOrder(spy, MarketOrder("BUY", 10, orderRef="keep-fill"))
            await until(lambda: filled.orderStatus.status == "Filled", what="fill")
            price = round(gw.quote(spy.conId)["bid"] * 0.8, 2)
            resting = ib.placeOrder(spy, LimitOrder("BUY", 4, price, tif="GTC", orderRef="keep-rest"))
            await until(lambda: resting.orderStatus.status == "Submitted", what="resting")
            return {"resting_id": resting.order.orderId, "perm_id": resting.order.permId,
                    "fill_exec": filled.fills[0].execution.execId}
        finally:
            ib.disconnect()

    return run(go)


def test_the_paper_account_survives_a_restart(tmp_path):
    path = tmp_path / "lake.sim-state.json"
    first = _gateway(path)
    try:
        seen = _trade(first)
        before = {"positions": {p.contract.con_id: (p.quantity, p.avg_cost) for p in first.positions()},
                  "cash": first.account_values()["TotalCashValue"],
                  "orders": {(o.client_id, o.order_id): o.status for o in first.orders()},
                  "fills": [f["exec_id"] for f in first.fills()]}
    finally:
        first.stop()
    assert path.exists() and not list(tmp_path.glob(".*"))        # written, no temp file left
    json.loads(path.read_text())

    second = _gateway(path)
    try:
        assert second.restored
        assert {p.contract.con_id: (p.quantity, p.avg_cost) for p in second.positions()} == before["positions"]
        assert second.account_values()["TotalCashValue"] == before["cash"]
        assert {(o.client_id, o.order_id): o.status for o in second.orders()} == before["orders"]
        assert [f["exec_id"] for f in second.fills()] == before["fills"]

        async def go():
            ib = await connect(second.port, client_id=3)
            try:
                open_ids = {t.order.orderId for t in await ib.reqAllOpenOrdersAsync()}
                fills = await ib.reqExecutionsAsync()
                next_id = ib.client.getReqId()
                spy = Stock(conId=second.lookup("SPY").con_id, exchange="SMART")
                again = ib.placeOrder(spy, MarketOrder("SELL", 10, orderRef="after-restart"))
                await until(lambda: again.orderStatus.status == "Filled", what="closing fill")
                return open_ids, {f.execution.execId for f in fills}, next_id, again.order.permId
            finally:
                ib.disconnect()

        open_ids, exec_ids, next_id, perm_id = run(go)
        assert seen["resting_id"] in open_ids and seen["fill_exec"] in exec_ids
        assert next_id > seen["resting_id"]                 # the order-id sequence continues
        assert perm_id > seen["perm_id"]                    # and so do perm ids
        spy_id = second.lookup("SPY").con_id
        assert spy_id not in {p.contract.con_id for p in second.positions()}
    finally:
        second.stop()


def test_fresh_starts_the_seeded_book_and_replaces_the_saved_one(tmp_path):
    path = tmp_path / "state.json"
    first = _gateway(path)
    try:
        _trade(first)
    finally:
        first.stop()
    fresh = _gateway(path, fresh=True)
    try:
        assert not fresh.restored and fresh.orders() == [] and fresh.fills() == []
        assert sorted((p.contract.con_id, p.quantity) for p in fresh.positions()) == \
            sorted((p.contract.con_id, p.quantity) for p in fresh.seeded_positions())
    finally:
        fresh.stop()
    assert json.loads(path.read_text())["orders"] == []       # the fresh book is what persists now


def test_an_unreadable_state_file_is_kept_aside_and_the_book_starts_fresh(tmp_path):
    path = tmp_path / "state.json"
    path.write_text("{ not json")
    gw = _gateway(path)
    try:
        assert not gw.restored and gw.orders() == []
    finally:
        gw.stop()
    assert [p.name.startswith("state.json.unreadable-") for p in tmp_path.iterdir()].count(True) == 1


def test_a_new_day_cancels_day_orders_keeps_gtc_and_settles_expired_options(tmp_path):
    path = tmp_path / "state.json"
    first = _gateway(path)
    try:
        seen = _trade(first)

        async def day_order():
            ib = await connect(first.port, client_id=3)
            try:
                aapl = Stock(conId=first.lookup("AAPL").con_id, exchange="SMART")
                price = round(first.quote(aapl.conId)["bid"] * 0.8, 2)
                t = ib.placeOrder(aapl, LimitOrder("BUY", 1, price, tif="DAY"))
                await until(lambda: t.orderStatus.status == "Submitted", what="day order")
                return t.order.orderId
            finally:
                ib.disconnect()

        day_id = run(day_order)
        cash_before = first.account_values()["TotalCashValue"]
    finally:
        first.stop()
    state = json.loads(path.read_text())
    today = state["day"]
    state["day"] = "2000-01-03"                                  # saved long ago
    option = next(h for h in state["holdings"] if h["contract"]["sec_type"] == "OPT" and h["quantity"] > 0)
    option["contract"]["expiry"] = "2000-01-07"                  # and expired since
    path.write_text(json.dumps(state))

    second = _gateway(path)
    try:
        status = {o.order_id: o.status for o in second.orders() if o.client_id == 3}
        assert status[day_id] == "Cancelled" and status[seen["resting_id"]] == "Submitted"
        assert option["contract"]["con_id"] not in {p.contract.con_id for p in second.positions()}
        assert second.account_values()["TotalCashValue"] >= cash_before   # settled at intrinsic >= 0
        assert today == second.today.isoformat()
    finally:
        second.stop()


def test_the_embedded_simulator_keeps_its_account_beside_the_lake(tmp_path, monkeypatch):
    from v6core.config import Settings
    from v6core.runtime import Runtime

    lake = tmp_path / "lake"
    rt = Runtime(Settings(_env_file=None, mode="sim", lake_path=lake))
    rt.start()
    try:
        assert rt.sim.state_path == state_path_beside(lake, rt.sim.account_id)
        assert rt.sim.state_path.parent == tmp_path and not rt.sim.restored
    finally:
        rt.stop()
    assert not rt.sim.state_path.exists()          # nothing traded, nothing written
    monkeypatch.setenv("V6_SIM_FRESH", "1")
    rt = Runtime(Settings(_env_file=None, mode="sim", lake_path=lake))
    assert rt.settings.sim_fresh
    rt.start()
    try:
        assert not rt.sim.restored
    finally:
        rt.stop()
    assert rt.sim.state_path.exists()              # a fresh book on purpose is the one kept
