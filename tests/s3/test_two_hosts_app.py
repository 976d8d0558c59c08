"""Two v6 processes on one S3 lake: the store decides who writes snapshots, and the sidebar says so."""

from __future__ import annotations


import pytest

from pages.components import common
from tests.app.conftest import open_page, unescape
from tests.app.synthetic import remove_stand_in
from tests.s3.test_concurrency_s3 import _child
from v6core.lake import LakeReader, LakeWriter
from v6core.services import lake_status_line


def _services_on_s3(moto_server, s3_lake, **env: str):
    """The process-wide services (what the pages get) on the S3 lake, simulator embedded."""
    with pytest.MonkeyPatch.context() as mp:
        aws = {key: value for key, value in moto_server.env().items() if key.startswith("AWS_")}
        for key, value in {**aws, **env}.items():
            mp.setenv(key, value)
        mp.setenv("V6_MODE", "sim")
        mp.setenv("V6_LAKE_URI", str(s3_lake))
        mp.delenv("V6_PASSWORD", raising=False)
        remove_stand_in()
        services = common.get_services()
        try:
            yield services
        finally:
            services.stop()
            common.get_services.clear()


@pytest.fixture
def s3_services(moto_server, s3_lake):
    yield from _services_on_s3(moto_server, s3_lake)


def test_one_writer_per_lake_decided_through_the_store_and_shown(moto_server, s3_lake, s3_services):
    assert s3_services.writer is not None and s3_services.writer.holds_lake
    at = open_page("overview", timeout=90)
    captions = " ".join(unescape(c.value) for c in at.sidebar.caption)
    assert f"Lake {s3_lake}: this process writes snapshots" in captions
    assert "SECRET" not in captions.upper() and moto_server.env()["AWS_SECRET_ACCESS_KEY"] not in captions
    # a second v6 process (another host, as far as the store can tell) stays read-only
    other = _child(moto_server, "write", str(s3_lake), "3")
    out, err = other.communicate(timeout=120)
    assert other.returncode == 3, (out, err)
    assert "is written by" in err and "opening read-only" in err


def test_status_line_of_a_read_only_process(s3_lake):
    holder = LakeWriter(s3_lake)
    holder.acquire()
    try:
        second = LakeWriter(s3_lake)
        try:
            second.acquire()
        except Exception as exc:          # what start_services keeps as lake_error
            line = lake_status_line(LakeReader(s3_lake).root, None, str(exc))
        assert line.startswith(f"Lake {s3_lake}: read-only here; lake {s3_lake} is written by ")
    finally:
        holder.stop()


@pytest.fixture
def short_lease_services(moto_server, s3_lake):
    """s3_services with a 4 s writer lease and a snapshot every second."""
    yield from _services_on_s3(moto_server, s3_lake, V6_LAKE_LEASE_SECONDS="4", V6_SNAPSHOT_INTERVAL="1")


def _sidebar(at) -> str:
    return " ".join(unescape(c.value) for c in at.sidebar.caption)


@pytest.mark.timeout(600)
def test_a_writer_that_loses_its_lease_says_read_only_and_takes_the_role_back(moto_server, s3_lake,
                                                                              short_lease_services):
    import itertools
    import os
    import socket

    from tests.s3.test_lease_loss_s3 import Lines, _wait, cut_lease_network, writers_by_version
    from v6core.lake import AuditLog

    services = short_lease_services
    first = services.writer
    _wait(lambda: first.last_version is not None, 180, "the writer never recorded a snapshot")
    # 40 snapshots, 0.2 s apart: it holds the role well past this process's first retry (after 4 s)
    other = _child(moto_server, "take", str(s3_lake), "40", V6_LAKE_LEASE_SECONDS="4")
    try:
        out = Lines(other)
        out.wait("waiting", 120)
        cut_lease_network(first)                      # this process's lease renewals fail from now on
        _wait(lambda: services.writer is None and services.lost_role, 4 + 10, "never noticed the lost lease")
        last_by_me = first.last_version
        out.wait("locked", 60)
        holder = f"holder {socket.gethostname()} pid {other.pid}"
        _wait(lambda: holder in services.lake_error, 30, f"the standby never named the holder: {services.lake_error}")
        assert services.lake_status.startswith(
            f"Lake {s3_lake}: read-only here; another process ({holder}) writes this lake; this process's "
            f"writer lease could not be renewed for 4 s at "), services.lake_status
        assert services.lake_status.endswith("this process takes over if that writer stops")
        at = open_page("overview", timeout=90)
        assert f"History read-only: another process ({holder}) writes this lake" in _sidebar(at)
        assert any("read-only here" in unescape(w.value) for w in at.sidebar.warning)
        # The desk keeps its audit log (claims decide confirmations, not the writer role): what
        # happens to its orders is still recorded in the shared store, not only in a backlog.
        assert services.orders.trading_available and services.audit is not None
        assert services.orders._book.write_raw("T-standby", "status", "", status="Filled")
        assert services.orders.audit_backlog == 0
        assert AuditLog(s3_lake).audit("T-standby")["status"].to_list() == ["Filled"]

        out.wait("released", 180)                     # the other writer stops: the role comes back
        _wait(lambda: services.writer is not None and services.writer.holds_lake, 4 + 30, "never took it back")
        assert services.lake_status.startswith(f"Lake {s3_lake}: this process writes snapshots (took the "
                                               f"writer role over at "), services.lake_status
        assert services.orders.trading_available and not services.lake_error
        back = services.writer
        _wait(lambda: (back.last_version or -1) > last_by_me + 10, 60, "never wrote after taking back")
        at = open_page("overview", timeout=90)
        assert f"Lake {s3_lake}: this process writes snapshots (took the writer role over at " in _sidebar(at)
    finally:
        if other.poll() is None:
            other.kill()
        other.wait(30)
    services.stop()
    me = f"{socket.gethostname()} pid {os.getpid()}"
    rows = writers_by_version(s3_lake)
    assert [v for v, _, _ in rows] == list(range(len(rows)))
    runs = [(who, [v for v, _, _ in g]) for who, g in itertools.groupby(rows, key=lambda r: r[1] == me)]
    assert [mine for mine, _ in runs] == [True, False, True], runs
    assert runs[0][1][-1] == last_by_me and len(runs[1][1]) == 40
