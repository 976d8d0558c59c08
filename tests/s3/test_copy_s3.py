"""`python -m v6core.lake copy --from <local lake> --to s3://…` keeps the full history."""

from __future__ import annotations

import subprocess
import sys

from polars.testing import assert_frame_equal

from tests.lake.factory import STEP, T0, snapshot_at
from tests.s3.test_concurrency_s3 import REPO
from v6core.lake import AuditEvent, AuditLog, LakeMaintenance, LakeReader, LakeWriter


def _cli(moto_server, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "v6core.lake", *args], cwd=REPO, text=True,
                          capture_output=True, env=moto_server.env(), timeout=300)


def test_copy_a_local_lake_to_s3_every_version_opens(moto_server, s3_lake, tmp_path):
    local = tmp_path / "lake"
    writer = LakeWriter(local, batch_size=4)
    for i in range(15):
        writer.write_snapshot(snapshot_at(i))
    writer.stop()
    AuditLog(local).append_audit([AuditEvent("T1", "drafted"), AuditEvent("T1", "confirmed")])
    LakeMaintenance(local).checkpoint()          # a checkpoint travels with the log
    done = _cli(moto_server, "copy", "--from", str(local), "--to", str(s3_lake))
    assert done.returncode == 0, done.stderr
    assert "portfolio: " in done.stdout and f"15 versions opened at {s3_lake}/portfolio" in done.stdout
    assert moto_server.env()["AWS_SECRET_ACCESS_KEY"] not in done.stdout + done.stderr

    before, after = LakeReader(local), LakeReader(s3_lake)
    assert_frame_equal(after.versions(), before.versions())
    for version in range(15):
        assert_frame_equal(after.portfolio(version), before.portfolio(version))
    assert after.version_at(T0 + 7 * STEP) == 7
    assert_frame_equal(after.greeks_history(), before.greeks_history())
    assert AuditLog(s3_lake).audit("T1")["event"].to_list() == ["drafted", "confirmed"]
    listed = _cli(moto_server, "--lake", str(s3_lake), "versions", "--last", "3")
    assert listed.returncode == 0 and listed.stdout.startswith("15 snapshot versions"), listed.stderr
    # the copy never overwrites history
    again = _cli(moto_server, "copy", "--from", str(local), "--to", str(s3_lake))
    assert again.returncode == 2 and "already holds a Delta table" in again.stderr
