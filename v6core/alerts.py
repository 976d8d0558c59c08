"""Alerts a snapshot carries: connection state, flagged legs, implausible account figures, limits."""

from __future__ import annotations

from v6core.config import Settings
from v6core.models import AccountValues, Alert, ConnectionStatus, ConnState, GreekSource, Leg, PositionGreeks

MAX_LEG_ALERTS = 20


def connection_and_leg_alerts(connection: ConnectionStatus, legs: list[Leg]) -> tuple[Alert, ...]:
    """The connection's state, stale quotes, locally computed Greeks and every flagged leg."""
    alerts: list[Alert] = []
    if connection.state == ConnState.DISCONNECTED:
        why = f": {connection.last_error}" if connection.last_error else ""
        alerts.append(Alert("error", f"Disconnected from the gateway{why}; showing the last known data"))
    elif connection.state == ConnState.DEGRADED:
        alerts.append(Alert("warning", "Gateway connectivity degraded; data may be stale"))
    if connection.breaker == "open":
        alerts.append(Alert("error", "Connection attempts paused by the circuit breaker "
                                     "after repeated failures"))
    stale = sum(1 for leg in legs if leg.stale)
    if stale:
        alerts.append(Alert("warning", f"{stale} leg(s) with stale quotes"))
    computed = sum(1 for leg in legs if leg.greeks is not None
                   and leg.greeks.source == GreekSource.COMPUTED)
    if computed:
        alerts.append(Alert("info", f"{computed} leg(s) with Greeks computed locally "
                                    "(IB sent none or unusable ones)"))
    flagged = [leg for leg in legs if leg.flags]
    for leg in flagged[:MAX_LEG_ALERTS]:
        alerts.append(Alert("warning", f"{leg.contract.label}: {'; '.join(leg.flags)}"))
    if len(flagged) > MAX_LEG_ALERTS:
        alerts.append(Alert("warning", f"{len(flagged) - MAX_LEG_ALERTS} more flagged leg(s)"))
    return tuple(alerts)


def account_alerts(account: AccountValues) -> tuple[Alert, ...]:
    """IB account figures that cannot be right, shown as sent and called out."""
    alerts = []
    for label, value in (("initial margin", account.init_margin),
                         ("maintenance margin", account.maint_margin)):
        if value is not None and value < 0:
            alerts.append(Alert("warning", f"IB reports a negative {label} ({value:,.2f}): shown "
                                           "as sent; margin use is not computed from it"))
    return tuple(alerts)


def limit_alerts(settings: Settings, totals: PositionGreeks, account: AccountValues,
                 daily_pnl: float | None) -> tuple[Alert, ...]:
    """Portfolio limit breaches (settings `limit_*`), stated with the figure and the limit."""
    alerts: list[Alert] = []
    if abs(totals.beta_delta) > settings.limit_beta_delta:
        alerts.append(Alert("error", f"Limit breach: beta-weighted delta {totals.beta_delta:+,.0f} SPY sh "
                                     f"beyond ±{settings.limit_beta_delta:,.0f}"))
    if abs(totals.vega) > settings.limit_vega:
        alerts.append(Alert("error", f"Limit breach: vega {totals.vega:+,.0f} $/vol pt "
                                     f"beyond ±{settings.limit_vega:,.0f}"))
    margin_use = account.margin_use_pct
    if margin_use is not None and margin_use > settings.limit_margin_use_pct:
        alerts.append(Alert("error", f"Limit breach: margin use {margin_use:.1f}% "
                                     f"above {settings.limit_margin_use_pct:g}%"))
    if daily_pnl is not None and daily_pnl < -settings.limit_daily_loss:
        alerts.append(Alert("error", f"Limit breach: daily P&L {daily_pnl:+,.0f} $ "
                                     f"below -{settings.limit_daily_loss:,.0f}"))
    return tuple(alerts)
