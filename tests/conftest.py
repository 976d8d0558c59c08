"""Fixtures shared by every test folder.

One Playwright for the whole run: the sync API drives its own event loop, and a second
`sync_playwright()` in the same process while the first is open fails ("Sync API inside the
asyncio loop"), so the e2e pages and the confirm-to-trade browser tests share this browser.
"""

from __future__ import annotations

import shutil

import pytest

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync",
                 "--disable-dev-shm-usage"]


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import expect, sync_playwright

    # The first run of an app starts its runtime and simulator: be patient, not flaky.
    expect.set_options(timeout=60_000)
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("Debian's chromium is not installed (`make browser` installs it)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
