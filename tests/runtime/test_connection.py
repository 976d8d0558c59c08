"""Connection lifecycle against the real simulator: restart, settings, one connection.

The circuit breaker and reconnect timing after real gateway restarts: `test_reconnect.py`."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from v6core.config import Settings, SettingsError
from v6core.models import ConnState
from v6core.runtime import Runtime
from tests.runtime.conftest import fast_settings
from tests.runtime.helpers import seeded_ids, wait_ready


def test_gateway_restart_is_survived_with_subscriptions_restored(gateway, make_runtime):
    gw = gateway
    rt = make_runtime(gw)
    wait_ready(rt, gw)
    gw.stop_listening()
    gw.faults.drop_all_clients()
    down = rt.wait_for(lambda s: s.connection.state != ConnState.CONNECTED, 10)
    assert down is not None
    # the data from before the drop stays visible, marked stale
    stale = rt.wait_for(lambda s: s.connection.state == ConnState.DISCONNECTED
                        and s.connection.attempts >= 2, 10)
    assert stale is not None
    assert {l.contract.con_id for l in stale.legs} == seeded_ids(gw)
    assert all(l.stale for l in stale.legs)
    assert all(l.greeks is not None for l in stale.legs)
    assert stale.connection.last_error
    assert any(a.level == "error" and "Disconnected" in a.message for a in stale.alerts)
    assert stale.connection.next_retry_at is not None

    gw.start_listening()
    reconnected_at = datetime.now(timezone.utc)
    back = wait_ready(rt, gw)
    assert back.connection.connected_since >= reconnected_at
    # every subscription is live again: fresh quotes for legs and underlyings, P&L flowing
    symbols = {l.contract.symbol for l in back.legs} | {"SPY"}
    ids = seeded_ids(gw) | {gw.lookup(s).con_id for s in symbols}
    fresh = rt.wait_for(lambda s: all((q := s.quote(i)) is not None and q.time is not None
                                      and q.time >= reconnected_at for i in ids)
                        and all(l.daily_pnl is not None for l in s.legs)
                        and s.daily_pnl is not None
                        and s.account.updated_at is not None
                        and s.account.updated_at >= reconnected_at, 15)
    assert fresh is not None
    assert not any("Disconnected" in a.message for a in fresh.alerts)


def test_bad_settings_fail_at_start_naming_the_setting():
    bad = Settings.model_construct(**{**Settings().model_dump(), "sim_tick_rate": -1.0})
    with pytest.raises(SettingsError, match="V6_SIM_TICK_RATE"):
        Runtime(bad)
    with pytest.raises(SettingsError, match="V6_IB_HOST"):
        Runtime(fast_settings(mode="ib", ib_host=" "))
    with pytest.raises(SettingsError, match="V6_MODE"):
        Runtime(Settings.model_construct(**{**Settings().model_dump(), "mode": "paper"}))


def test_one_connection_per_gateway_address(gateway, make_runtime):
    rt = make_runtime(gateway)
    wait_ready(rt, gateway)
    second = make_runtime(gateway, start=False)
    with pytest.raises(RuntimeError, match="already connected"):
        second.start()
    rt.start()   # starting again is a no-op, not a second connection
    assert rt.snapshot().connection.state == ConnState.CONNECTED


def test_live_accounts_are_reported_live():
    assert Runtime._is_paper("DU1234567")
    assert not Runtime._is_paper("U1234567")
    assert not Runtime._is_paper("F7654321")


def test_commands_fail_cleanly_when_not_running():
    rt = Runtime(fast_settings(ib_port=1))
    with pytest.raises(RuntimeError, match="not running"):
        rt.cancel_all().result(timeout=1)


def test_ib_connectivity_codes_degrade_and_restore(gateway, make_runtime):
    gw = gateway
    rt = make_runtime(gw)
    wait_ready(rt, gw)
    wrapper = rt._ib.wrapper           # feed the codes exactly where the decoder delivers ERR_MSG
    rt._loop.call_soon_threadsafe(wrapper.error, -1, 1100,
                                  "Connectivity between IB and Trader Workstation has been lost.", "")
    degraded = rt.wait_for(lambda s: s.connection.state == ConnState.DEGRADED, 5)
    assert degraded is not None
    assert all(l.stale for l in degraded.legs)
    assert any(n.startswith("1100") for n in degraded.connection.notices)
    rt._loop.call_soon_threadsafe(wrapper.error, -1, 1101,
                                  "Connectivity between IB and TWS has been restored- data lost.", "")
    restored_at = datetime.now(timezone.utc)
    # data lost: every quote is subscribed again and fresh
    back = rt.wait_for(lambda s: s.connection.state == ConnState.CONNECTED and all(
        l.quote_time is not None and l.quote_time > restored_at and not l.stale for l in s.legs), 10)
    assert back is not None
    rt._loop.call_soon_threadsafe(wrapper.error, -1, 2103, "Market data farm connection is broken:usfarm", "")
    assert rt.wait_for(lambda s: s.connection.state == ConnState.DEGRADED
                       and any(n.startswith("2103") for n in s.connection.notices), 5)
    rt._loop.call_soon_threadsafe(wrapper.error, -1, 2104, "Market data farm connection is OK:usfarm", "")
    assert rt.wait_for(lambda s: s.connection.state == ConnState.CONNECTED, 5)
