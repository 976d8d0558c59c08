"""Running `streamlit run serve.py` for browser tests, after Streamlit's e2e_playwright/conftest.py:
a free port, output to a file, `/_stcore/health` polled until the server answers."""

from __future__ import annotations

import re

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"
# The app root once a script run has finished: act only then.
SCRIPT_IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_health(url: str, process: subprocess.Popen, log: Path, timeout: float = 120.0) -> None:
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


@contextlib.contextmanager
def streamlit_app(env: dict[str, str], log: Path) -> Iterator[str]:
    """Base URL of `streamlit run serve.py` with these V6_* settings; stopped on exit."""
    with streamlit_process(env, log) as (url, _process):
        yield url


@contextlib.contextmanager
def streamlit_process(env: dict[str, str], log: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """(base URL, server process) of `streamlit run serve.py`; stopped on exit."""
    port = free_port()
    full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
    full_env.pop("V6_PASSWORD", None)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "serve.py", "--server.port", str(port),
             "--server.headless", "true", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://localhost:{port}"
    try:
        wait_for_health(url, process, log)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def choose(page, label: str, text: str) -> None:
    """Pick the option of the selectbox `label` that starts with `text`, by typing it (the list
    is virtualised); waits for the run the pick starts."""
    from playwright.sync_api import expect

    box = page.get_by_role("combobox", name=label, exact=True)
    box.click()
    box.fill(text)
    page.get_by_role("option", name=re.compile("^" + re.escape(text))).first.click()
    page.wait_for_selector(SCRIPT_IDLE, timeout=60_000)
    expect(box).to_have_value(re.compile("^" + re.escape(text)))


PANEL = "Close or roll a strategy"      # Positions: the picker of the close/roll panel
