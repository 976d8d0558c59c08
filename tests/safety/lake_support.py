"""Shared by the lake safety tests: real services (V6_MODE=sim) on a given lake, AppTest pages, waiting."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from pages.components import common
from tests.app.conftest import open_page, unescape
from tests.app.synthetic import remove_stand_in


def wait_until(predicate: Callable[[], object], timeout: float = 60.0, step: float = 0.05) -> object:
    """The predicate's first truthy value; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    pytest.fail(f"condition not met within {timeout:.0f} s")


@contextmanager
def sim_services(lake: Path, **env: str) -> Iterator[object]:
    """The process-wide services (the object the pages get) on `lake`, simulator embedded."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("V6_MODE", "sim")
        mp.setenv("V6_LAKE_PATH", str(lake))
        mp.delenv("V6_PASSWORD", raising=False)
        for name, value in env.items():
            mp.setenv(name, value)
        remove_stand_in()
        common.get_services.clear()
        services = common.get_services()
        try:
            yield services
        finally:
            services.stop()
            common.get_services.clear()


def connected(services, timeout: float = 90.0) -> None:
    wait_until(lambda: services.runtime.snapshot().connection.state.value == "connected"
               and services.runtime.snapshot().legs, timeout)


def shown_texts(page: str = "overview") -> tuple[AppTest, list[str], list[str]]:
    """(app, sidebar error/warning texts, main-area error/warning texts) of a page run."""
    at = open_page(page, timeout=90)
    assert not at.exception, [e.value for e in at.exception]
    sidebar = [unescape(e.value) for kind in (at.sidebar.error, at.sidebar.warning) for e in kind]
    main = [unescape(e.value) for kind in (at.main.error, at.main.warning) for e in kind]
    return at, sidebar, main
