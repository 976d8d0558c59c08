"""Browser harness (after Streamlit's e2e_playwright/conftest.py): `streamlit run app.py` on a free
port with the embedded simulator and a tmp lake, output to a file, `/_stcore/health` polled, then
Debian's chromium driven headless through Playwright (one Playwright at a time per process:
this module's own, closed when the module ends).
"""

from __future__ import annotations

import shutil

import pytest

from tests.browser_harness import ARTIFACTS, ROOT, SCRIPT_IDLE, streamlit_app  # noqa: F401 (re-exported)


@pytest.fixture(scope="module")
def app_server(tmp_path_factory):
    """Base URL of a running `streamlit run serve.py` on the embedded simulator."""
    tmp = tmp_path_factory.mktemp("e2e")
    log = tmp / "streamlit.log"
    try:
        with streamlit_app({"V6_MODE": "sim", "V6_LAKE_PATH": str(tmp / "lake")}, log) as url:
            yield url
    finally:
        if ARTIFACTS.is_dir() and log.exists():
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
