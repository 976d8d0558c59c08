"""Browser harness (after Streamlit's e2e_playwright/conftest.py): `streamlit run app.py` on a free
port with the embedded simulator and a tmp lake, output to a file, `/_stcore/health` polled, then
Debian's chromium driven headless through Playwright (one Playwright at a time per process:
this module's own, closed when the module ends).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import CHROMIUM_ARGS

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
SCRIPT_IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_health(url: str, process: subprocess.Popen, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"streamlit did not become healthy in {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    """Base URL of a running `streamlit run app.py` on the embedded simulator."""
    tmp = tmp_path_factory.mktemp("e2e")
    port = free_port()
    log = tmp / "streamlit.log"
    env = {**os.environ, "V6_MODE": "sim", "V6_LAKE_PATH": str(tmp / "lake"), "PYTHONUNBUFFERED": "1"}
    env.pop("V6_PASSWORD", None)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
             "--server.headless", "true", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://localhost:{port}"
    try:
        wait_for_health(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if ARTIFACTS.is_dir():
            shutil.copy(log, ARTIFACTS / "streamlit.log")


@pytest.fixture(scope="module")
def page(browser, app_server):
    """One browser tab for the whole run: tests move between pages through the sidebar, as an
    operator does (a fresh tab per test would boot the frontend and a new session each time)."""
    context = browser.new_context(viewport={"width": 1600, "height": 1000}, color_scheme="dark")
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


@pytest.fixture(scope="session", autouse=True)
def artifacts_dir():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
