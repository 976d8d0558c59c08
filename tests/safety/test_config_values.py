"""Issue #11 defect 9: settings that would switch a check off silently are refused at start,
and a setting that cannot be parsed is named (with its file when it comes from one)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from tests.app.conftest import APP, unescape
from v6core import services as wiring
from v6core.config import SettingsError, load_settings

FINITE_SETTINGS = ["V6_MAX_ORDER_QUANTITY", "V6_MAX_ORDER_NOTIONAL", "V6_MAX_DELTA_CHANGE",
                   "V6_STALE_AFTER", "V6_CONNECT_TIMEOUT"]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    """No V6_* from the machine, and a working directory without .env or secrets.toml."""
    import os

    for key in list(os.environ):
        if key.startswith("V6_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("name", FINITE_SETTINGS)
@pytest.mark.parametrize("value", ["inf", "Infinity", "-inf", "nan", "NaN", "1e400"])
def test_limits_and_timeouts_must_be_finite(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as e:
        load_settings()
    assert f"{name}: Input should be a finite number" in str(e.value)


@pytest.mark.parametrize("name", FINITE_SETTINGS)
def test_the_same_limits_from_secrets_toml_must_be_finite(name):
    secrets = Path(".streamlit/secrets.toml")
    secrets.parent.mkdir()
    secrets.write_text(f"[v6]\n{name[3:].lower()} = inf\n")
    with pytest.raises(SettingsError, match=f"{name}: Input should be a finite number"):
        load_settings()


@pytest.mark.parametrize("env", [
    {"V6_BETAS": '{"SPY": NaN, "QQQ": 1.1}'},
    {"V6_BETAS": '{"SPY": Infinity}'},
    {"V6_BETAS__SPY": "nan"},
])
def test_a_beta_must_be_finite(monkeypatch, env):
    for key, raw in env.items():
        monkeypatch.setenv(key, raw)
    with pytest.raises(SettingsError, match=r"V6_BETAS\.SPY: Input should be a finite number"):
        load_settings()


def test_beta_symbols_are_upper_case_like_every_other_symbol(monkeypatch):
    monkeypatch.setenv("V6_BETAS__spy", "1.3")
    assert load_settings().betas == {"SPY": 1.3}


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_lake_path_is_refused_not_turned_into_the_working_directory(monkeypatch, value):
    monkeypatch.setenv("V6_LAKE_PATH", value)
    with pytest.raises(SettingsError, match="V6_LAKE_PATH: must not be empty"):
        load_settings()


@pytest.mark.parametrize("name, value, example", [
    ("V6_WATCHLIST", "SPY,QQQ", '["SPY", "QQQ"]'),
    ("V6_ALLOWED_SYMBOLS", '["SPY", ', '["SPY", "QQQ"]'),
    ("V6_BETAS", "SPY=1.0", '{"SPY": 1.0, "QQQ": 1.15}'),
])
def test_a_list_or_mapping_that_does_not_parse_names_the_setting(monkeypatch, name, value, example):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as e:
        load_settings()
    assert str(e.value) == (f"invalid settings: {name} in the environment is not valid JSON; "
                            f"write it as JSON, e.g. {example}")


def test_a_list_value_of_the_wrong_type_in_secrets_names_the_setting():
    secrets = Path(".streamlit/secrets.toml")
    secrets.parent.mkdir()
    secrets.write_text('[v6]\nwatchlist = "SPY"\n')
    with pytest.raises(SettingsError, match="V6_WATCHLIST: Input should be a valid list"):
        load_settings()


@pytest.mark.parametrize("text, problem", [
    ('[v6]\nwatchlist = ["SPY"\n', "cannot be read as TOML"),
    ("[v6]\npassword = 's3cret\n", "cannot be read as TOML"),
    ('v6 = "not a table"\n', "`v6` must be a table"),
    (b"[v6]\nmode = '\xff'\n", "cannot be read as TOML"),
])
def test_a_malformed_secrets_file_is_named(text, problem):
    secrets = Path(".streamlit/secrets.toml")
    secrets.parent.mkdir()
    (secrets.write_bytes if isinstance(text, bytes) else secrets.write_text)(text)
    with pytest.raises(SettingsError) as e:
        load_settings()
    assert str(e.value).startswith(f"{secrets.resolve()}: {problem}")
    assert "s3cret" not in str(e.value)


def test_the_app_names_the_bad_setting_instead_of_could_not_start(monkeypatch):
    """What the operator sees: the setting and what to write, not 'could not start (...)'."""
    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)
    monkeypatch.setenv("V6_WATCHLIST", "SPY,QQQ")
    held = wiring.forget_process_services()
    try:
        at = AppTest.from_file(str(APP), default_timeout=60)
        at.run()
        assert not at.exception
        [error] = [unescape(e.value) for e in at.error]
        assert error.startswith("v6 cannot start: invalid settings: V6_WATCHLIST in the environment")
        assert "could not start" not in error
    finally:
        wiring.forget_process_services()
        if held is not None:
            wiring.process_services(lambda: held)
