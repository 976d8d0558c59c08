"""A real S3 API for the lake tests: moto's server in its own process on a free loopback port.

Started once per session by `moto_server`, stopped at the end. Every test gets its own bucket
(`s3_lake`), so tests never see each other's objects. If the server cannot start the tests FAIL
with the fix (never skip): a skipped S3 suite would hide that the lake was never tested on S3.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from v6core.lake.storage import S3Root, s3_options

FIX = "install the S3 test server: /work/main/.venv/bin/pip install 'moto[server]>=5' (see requirements-dev.txt)"
ACCESS_KEY, SECRET_KEY = "v6testkey", "v6-test-secret-value-0123456789"


@dataclass(frozen=True)
class MotoServer:
    endpoint: str
    process: subprocess.Popen

    def options(self) -> dict[str, str]:
        return s3_options(self.endpoint, "us-east-1", ACCESS_KEY, SECRET_KEY)

    def env(self) -> dict[str, str]:
        """Environment for child processes: the standard AWS variables pointing at this server."""
        return {**os.environ, "AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": "us-east-1"}

    def new_bucket(self) -> str:
        from v6core.lake.s3store import s3_client
        name = f"v6-{uuid.uuid4().hex[:12]}"
        s3_client(S3Root(f"s3://{name}", self.options())).create_bucket(Bucket=name)
        return name


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    try:
        import flask  # noqa: F401 - moto's server extra
        import moto.server  # noqa: F401
    except ImportError as exc:
        pytest.fail(f"moto's S3 server is not installed ({exc}): {FIX}")
    port = _free_port()
    log_path = tmp_path_factory.mktemp("moto") / "server.log"
    with open(log_path, "wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                   stdout=out, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            pytest.fail(f"moto server exited with {process.returncode}: "
                        f"{Path(log_path).read_text(errors='replace')[-2000:]}\n{FIX}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"moto server did not listen on {endpoint} within 60 s. {FIX}")
            time.sleep(0.2)
    server = MotoServer(endpoint, process)
    try:
        yield server
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(autouse=True)
def local_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The audit journal of an S3 lake stays on the host's disk: here, in the test's tmp dir."""
    path = tmp_path / "journal"
    monkeypatch.setenv("V6_LAKE_JOURNAL_DIR", str(path))
    return path


@pytest.fixture
def s3_lake(moto_server: MotoServer) -> S3Root:
    """An empty lake root `s3://<fresh bucket>/lake` on the moto server."""
    return S3Root(f"s3://{moto_server.new_bucket()}/lake", moto_server.options())
