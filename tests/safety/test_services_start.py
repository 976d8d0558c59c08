"""Issue #11 defect 2, unit level: a start that fails halfway leaves nothing behind, and the
process-wide services are started once, whatever empties Streamlit's caches.

The failures are injected into real parts (the real runtime with its embedded simulator, the
real lake writer and its flock) at the points where a start can break after something runs.
"""

from __future__ import annotations

import fcntl
import os
import socket
import threading

import pytest
import streamlit as st

from v6core import greeks_warmup
from v6core import services as wiring
from v6core.config import Settings
from v6core.lake import LakeWriter
from v6core.orders import OrderDesk
from v6core.signals import SignalService
from v6core.sim import SimGateway


class InjectedFault(RuntimeError):
    pass


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(_env_file=None, mode="sim", lake_path=tmp_path / "lake", client_id=71)


@pytest.fixture
def sim_ports(monkeypatch) -> list[int]:
    """Every port an embedded simulator listened on during the test."""
    ports: list[int] = []
    real_start = SimGateway.start

    def start(self):
        port = real_start(self)
        ports.append(port)
        return port

    monkeypatch.setattr(SimGateway, "start", start)
    return ports


def fail_after(real, *, before: bool = False):
    def patched(self, *args, **kwargs):
        if before:
            raise InjectedFault("injected")
        real(self, *args, **kwargs)
        raise InjectedFault("injected after the part had started")
    return patched


FAULTS = {
    # the writer took the lake's lock and started its thread, then the start failed
    "lake-writer": (LakeWriter, "start", False),
    # runtime, simulator, writer and audit up; the order follower fails as it starts
    "order-desk": (OrderDesk, "start", False),
    # everything running; building the last part fails
    "signals": (SignalService, "__init__", True),
}


def lock_is_free(lake) -> bool:
    fd = os.open(lake / ".writer.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def port_closed(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_start_that_fails_halfway_stops_everything_it_started(settings, sim_ports, monkeypatch,
                                                                 fault):
    cls, name, before = FAULTS[fault]
    # The Greeks kernels compile once per process on a thread of their own, started by the first
    # runtime: not a part this start leaves behind. Compiled first, so this test does not depend
    # on whether an earlier test in the process already did it.
    greeks_warmup.start_warm_up()
    assert greeks_warmup.wait_warm(300)
    monkeypatch.setattr(cls, name, fail_after(getattr(cls, name), before=before))
    threads_before = set(threading.enumerate())

    with pytest.raises(InjectedFault):
        wiring.start_services(settings)

    left = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    assert left == [], [t.name for t in left]
    assert len(sim_ports) == 1 and port_closed(sim_ports[0])
    assert lock_is_free(settings.lake_path)
    # The runtime is no longer registered as holding its gateway connection: a new start works.
    monkeypatch.undo()
    services = wiring.start_services(settings)
    try:
        assert services.writer is not None and services.audit is not None
    finally:
        services.stop()


def test_process_services_start_once_and_survive_a_cleared_cache(settings):
    previous = wiring.forget_process_services()
    started: list[object] = []

    def start():
        services = wiring.start_services(settings)
        started.append(services)
        return services

    results: list[object] = []
    barrier = threading.Barrier(8)

    def first_caller():
        barrier.wait()
        results.append(wiring.process_services(start))

    callers = [threading.Thread(target=first_caller) for _ in range(8)]
    try:
        for t in callers:
            t.start()
        for t in callers:
            t.join(60)
        assert len(started) == 1 and all(r is started[0] for r in results) and len(results) == 8
        # What a client's "Clear cache" does on the server: both caches emptied.
        st.cache_resource.clear()
        st.cache_data.clear()
        assert wiring.process_services(start) is started[0] and len(started) == 1
        assert started[0].writer is not None and not started[0].read_only
    finally:
        for services in started:
            services.stop()
        wiring.forget_process_services()
        if previous is not None:
            wiring.process_services(lambda: previous)


def test_a_failed_process_start_leaves_nothing_and_the_next_call_starts(settings, monkeypatch):
    previous = wiring.forget_process_services()
    monkeypatch.setattr(OrderDesk, "start", fail_after(OrderDesk.start))
    try:
        with pytest.raises(InjectedFault):
            wiring.process_services(lambda: wiring.start_services(settings))
        monkeypatch.undo()
        assert lock_is_free(settings.lake_path)
        services = wiring.process_services(lambda: wiring.start_services(settings))
        try:
            assert services.audit is not None and wiring.process_services() is services
        finally:
            services.stop()
    finally:
        wiring.forget_process_services()
        if previous is not None:
            wiring.process_services(lambda: previous)
