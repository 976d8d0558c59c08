"""The lake on a real S3 API (moto's server): copy a local lake with its history, read it there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from polars.testing import assert_frame_equal

from tests.lake.conftest import write_lake
from tests.lake.s3_server import moto_server
from v6core.lake import AuditEvent, AuditLog, LakeLocation, LakeReader, s3_options

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def s3():
    with moto_server() as server:
        yield server


def test_storage_options_come_from_the_aws_environment_and_stay_out_of_repr(s3):
    options = s3_options(environ=s3.environ())
    assert options["AWS_ENDPOINT_URL"] == s3.endpoint and options["AWS_ALLOW_HTTP"] == "true"
    assert options["AWS_VIRTUAL_HOSTED_STYLE_REQUEST"] == "false" and options["aws_conditional_put"] == "etag"
    location = LakeLocation.of("s3://bucket/lake", options)
    assert "v6-test-secret" not in repr(location) and "v6-test-secret" not in str(location)
    assert LakeLocation.of("data/lake").local == Path("data/lake")


def test_copy_moves_a_local_lake_to_s3_and_every_version_opens_there(s3, tmp_path, monkeypatch):
    local = tmp_path / "lake"
    write_lake(local, 12, batch_size=4)
    AuditLog(local).append_audit([AuditEvent("T1", "drafted"), AuditEvent("T1", "checked")])
    s3.create_bucket("copy")
    for name, value in s3.environ().items():
        monkeypatch.setenv(name, value)
    uri = "s3://copy/desk/lake"
    done = subprocess.run([sys.executable, "-m", "v6core.lake", "copy", "--from", str(local), "--to", uri],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "v6-test-secret" not in done.stdout + done.stderr

    here, there = LakeReader(local), LakeReader(uri)
    assert_frame_equal(there.versions(), here.versions())
    for version in here.versions()["version"].to_list():
        assert_frame_equal(there.portfolio(version), here.portfolio(version))
    moment = here.versions()["snapshot_time"][5]
    assert there.version_at(moment) == here.version_at(moment) == int(here.versions()["version"][5])
    diff_here, diff_there = here.diff(2, 9), there.diff(2, 9)
    assert_frame_equal(diff_there.legs, diff_here.legs)
    assert_frame_equal(diff_there.totals, diff_here.totals)
    assert_frame_equal(there.greeks_history(), here.greeks_history())
    assert_frame_equal(there.account_history(), here.account_history())
    audit = LakeLocation.of(uri).read("orders_audit")
    assert audit["event"].sort().to_list() == ["checked", "drafted"]
