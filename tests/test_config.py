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



@pytest.mark.parametrize("name", ["max_order_quantity", "max_order_notional", "max_delta_change",
                                  "stale_after", "connect_timeout"])
@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_inf_and_nan_are_refused_for_limits_and_timeouts(name, value):
    with pytest.raises(SettingsError, match=f"V6_{name.upper()}: Input should be a finite number"):
        load_settings(**{name: value})


def test_a_nan_beta_is_refused():
    with pytest.raises(SettingsError, match=r"V6_BETAS\.SPY: Input should be a finite number"):
        load_settings(betas={"SPY": float("nan")})


def test_an_empty_lake_path_is_refused():
    with pytest.raises(SettingsError, match="V6_LAKE_PATH: must not be empty"):
        load_settings(lake_path="")
