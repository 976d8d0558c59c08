"""Two v6 processes on one S3 lake: the store decides who writes snapshots, and the sidebar says so."""

from __future__ import annotations


import pytest

from pages.components import common
from tests.app.conftest import open_page, unescape
from tests.app.synthetic import remove_stand_in
from tests.s3.test_concurrency_s3 import _child
from v6core.lake import LakeReader, LakeWriter
from v6core.services import lake_status_line


@pytest.fixture
def s3_services(moto_server, s3_lake):
    with pytest.MonkeyPatch.context() as mp:
        for key, value in moto_server.env().items():
            if key.startswith("AWS_"):
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
