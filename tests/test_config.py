import pytest

from v6core.config import SettingsError, load_settings


def test_defaults_are_sim_mode_and_paper_locked():
    s = load_settings()
    assert s.mode == "sim"
    assert s.live_trading_enabled is False


def test_bad_mode_names_setting_and_accepted_values():
    with pytest.raises(SettingsError) as e:
        load_settings(mode="tws")
    assert "V6_MODE" in str(e.value) and "'sim' or 'ib'" in str(e.value)


def test_bad_env_value_names_setting(monkeypatch):
    monkeypatch.setenv("V6_IB_PORT", "not-a-port")
    with pytest.raises(SettingsError) as e:
        load_settings()
    assert "V6_IB_PORT" in str(e.value)


def test_llm_url_without_model_is_refused():
    with pytest.raises(SettingsError) as e:
        load_settings(llm_base_url="http://127.0.0.1:9/v1")
    assert "llm_model" in str(e.value)

