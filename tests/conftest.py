"""Fixtures shared by every test folder.

One Playwright per test module: the sync API leaves its event loop marked running in the main
thread while it is open, so a second `sync_playwright()` fails ("Sync API inside the asyncio
loop") and so does every later `asyncio.run()`. Opening it per module and closing it when the
module ends keeps the browser tests and the loop-driven tests of other modules apart.
"""

from __future__ import annotations

import shutil

import pytest

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync",
                 "--disable-dev-shm-usage"]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import expect, sync_playwright

    # The first run of an app starts its runtime and simulator: be patient, not flaky.
    expect.set_options(timeout=60_000)
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        # `make test` installs it first: a missing browser is a broken setup, never a quiet skip
        pytest.fail("Debian's chromium is not installed: run `make browser` (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
