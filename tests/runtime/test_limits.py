"""Portfolio limit breaches become alerts, naming the figure and the limit."""

from v6core.config import load_settings
from v6core.models import AccountValues, PositionGreeks
from v6core.state import limit_alerts

SETTINGS = load_settings(limit_beta_delta=500, limit_vega=1_000, limit_margin_use_pct=40,
                         limit_daily_loss=2_000)


def test_within_limits_no_alert():
    totals = PositionGreeks(delta=100, vega=-999, beta_delta=-499)
    account = AccountValues(net_liquidation=100_000, init_margin=39_000)
    assert limit_alerts(SETTINGS, totals, account, daily_pnl=-1_999) == ()


def test_each_breach_is_reported_both_signs():
    totals = PositionGreeks(vega=-1_500, beta_delta=650)
    account = AccountValues(net_liquidation=100_000, init_margin=45_000)
    messages = [a.message for a in limit_alerts(SETTINGS, totals, account, daily_pnl=-2_500)]
    assert messages == [
        "Limit breach: beta-weighted delta +650 SPY sh beyond ±500",
        "Limit breach: vega -1,500 $/vol pt beyond ±1,000",
        "Limit breach: margin use 45.0% above 40%",
        "Limit breach: daily P&L -2,500 $ below -2,000",
    ]
    assert limit_alerts(SETTINGS, PositionGreeks(beta_delta=-501), AccountValues(), None)[0].level == "error"


def test_unknown_account_figures_raise_nothing():
    assert limit_alerts(SETTINGS, PositionGreeks(), AccountValues(), daily_pnl=None) == ()
