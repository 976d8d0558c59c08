"""The rule-based analyst: transparent rules over the indicator summaries, same schema as the LLM.

It is the default when no LLM is configured and the fallback when the LLM fails. Its records are
labelled `analyst="rules"` and its reasoning says so; it never poses as an LLM.

Rules (points; positive is bullish):
- daily SMA stack: close > SMA20 > SMA50 (> SMA200 when known) +2, the reverse -2; close and
  SMA20 both above SMA50 (not a full stack) +1, both below -1. Moving averages closer together
  than 0.25% of the price count as equal (a flat market has no stack);
- weekly confirmation: weekly close above its SMA20 (and SMA20 above SMA50 when known) +1,
  the reverse -1, with the same 0.25% separation;
- daily RSI 14: above 70 (overbought) -1, below 30 (oversold) +1;
- daily MACD: crossed above its signal within 5 bars +1, below -1; else histogram sign +-0.5;
- Bollinger position: close above the upper band -0.5 (stretched), below the lower band +0.5.
Net >= 2 is a BUY, <= -2 a SELL, else HOLD. Confidence score: 45 + 15 per point beyond 2 (capped
at 90) for BUY/SELL, 35 - 10 per point (floor 10) for HOLD. Entry is the current price, stop
2 ATR against, target 3 ATR in favour (ATR 14 daily; 1% of price when unknown, capped at 15%).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from v6core.signals.indicators import RSI_OVERBOUGHT, RSI_OVERSOLD
from v6core.signals.schema import (Action, AnalystInput, SignalAnswer, confidence_for_score)

RULES_ANALYST = "rules"
BUY_THRESHOLD, SELL_THRESHOLD = 2.0, -2.0
STOP_ATRS, TARGET_ATRS = 2.0, 3.0
MIN_ATR_FRACTION, MAX_ATR_FRACTION = 0.01, 0.15
MIN_SMA_GAP = 0.0025                   # fraction of price: closer moving averages are "equal"


class InsufficientData(ValueError):
    """Not enough bars for the rules (needs daily close, SMA20 and SMA50)."""


@dataclass(slots=True, frozen=True)
class RuleHit:
    rule: str
    points: float
    text: str


def _get(summary: dict[str, Any], key: str) -> float | None:
    value = summary.get(key)
    return None if value is None else float(value)


def _above(a: float, b: float, price: float) -> bool:
    return a - b > MIN_SMA_GAP * price


def _chain(values: list[float], price: float, rising: bool) -> bool:
    pairs = list(zip(values, values[1:]))
    return all(_above(a, b, price) if rising else _above(b, a, price) for a, b in pairs)


def _stack_rule(daily: dict[str, Any]) -> RuleHit | None:
    close, s20, s50, s200 = (_get(daily, k) for k in ("close", "sma_20", "sma_50", "sma_200"))
    if close is None or s20 is None or s50 is None:
        raise InsufficientData("not enough daily bars for SMA20/SMA50")
    chain = [close, s20, s50] + ([s200] if s200 is not None else [])
    names = "close > SMA20 > SMA50" + (" > SMA200" if s200 is not None else "")
    if _chain(chain, close, rising=True):
        return RuleHit("sma_stack", 2.0, f"Daily SMA stack bullish ({names})")
    if _chain(chain, close, rising=False):
        return RuleHit("sma_stack", -2.0, f"Daily SMA stack bearish ({names.replace('>', '<')})")
    if _chain([close, s50], close, True) and _chain([s20, s50], close, True):
        return RuleHit("sma_stack", 1.0, "Daily close and SMA20 above SMA50 (partial uptrend)")
    if _chain([close, s50], close, False) and _chain([s20, s50], close, False):
        return RuleHit("sma_stack", -1.0, "Daily close and SMA20 below SMA50 (partial downtrend)")
    return None


def _weekly_rule(weekly: dict[str, Any]) -> RuleHit | None:
    close, s20, s50 = (_get(weekly, k) for k in ("close", "sma_20", "sma_50"))
    if close is None or s20 is None:
        return None
    chain = [close, s20] + ([s50] if s50 is not None else [])
    if _chain(chain, close, rising=True):
        return RuleHit("weekly", 1.0, "Weekly trend confirms: close above weekly SMA20"
                       + ("" if s50 is None else " and SMA20 above SMA50"))
    if _chain(chain, close, rising=False):
        return RuleHit("weekly", -1.0, "Weekly trend confirms down: close below weekly SMA20"
                       + ("" if s50 is None else " and SMA20 below SMA50"))
    return None


def _rsi_rule(daily: dict[str, Any]) -> RuleHit | None:
    value = _get(daily, "rsi_14")
    if value is None:
        return None
    if value > RSI_OVERBOUGHT:
        return RuleHit("rsi", -1.0, f"Daily RSI {value:.1f} overbought (> {RSI_OVERBOUGHT:g})")
    if value < RSI_OVERSOLD:
        return RuleHit("rsi", 1.0, f"Daily RSI {value:.1f} oversold (< {RSI_OVERSOLD:g})")
    return None


def _macd_rule(daily: dict[str, Any]) -> RuleHit | None:
    cross = daily.get("macd_cross_recent")
    if cross == "bullish":
        return RuleHit("macd", 1.0, "Daily MACD crossed above its signal line recently")
    if cross == "bearish":
        return RuleHit("macd", -1.0, "Daily MACD crossed below its signal line recently")
    hist = _get(daily, "macd_hist")
    if hist is None or hist == 0:
        return None
    if hist > 0:
        return RuleHit("macd", 0.5, "Daily MACD above its signal line")
    return RuleHit("macd", -0.5, "Daily MACD below its signal line")


def _band_rule(daily: dict[str, Any]) -> RuleHit | None:
    percent_b = _get(daily, "bb_percent_b")
    if percent_b is None:
        return None
    if percent_b > 1:
        return RuleHit("bollinger", -0.5, "Close above the upper Bollinger band (stretched)")
    if percent_b < 0:
        return RuleHit("bollinger", 0.5, "Close below the lower Bollinger band (stretched)")
    return None


def evaluate_rules(inp: AnalystInput) -> list[RuleHit]:
    """Every rule that fired, in the documented order."""
    hits = [_stack_rule(inp.daily), _weekly_rule(inp.weekly), _rsi_rule(inp.daily),
            _macd_rule(inp.daily), _band_rule(inp.daily)]
    return [h for h in hits if h is not None]


def _trend(hits: list[RuleHit]) -> str:
    stack = next((h.points for h in hits if h.rule == "sma_stack"), 0.0)
    return "UP" if stack > 0 else "DOWN" if stack < 0 else "SIDEWAYS"


def analyse_with_rules(inp: AnalystInput) -> SignalAnswer:
    """The rule analyst's signal for one symbol, validated like any other answer."""
    hits = evaluate_rules(inp)
    net = sum(h.points for h in hits)
    if net >= BUY_THRESHOLD:
        action = Action.BUY
    elif net <= SELL_THRESHOLD:
        action = Action.SELL
    else:
        action = Action.HOLD
    if action is Action.HOLD:
        score = max(10.0, 35.0 - 10.0 * abs(net))
    else:
        score = min(90.0, 45.0 + 15.0 * (abs(net) - 2.0))
    confidence = confidence_for_score(score)

    price = float(inp.reference_price)
    atr = _get(inp.daily, "atr_14") or 0.0
    atr = min(max(atr, MIN_ATR_FRACTION * price), MAX_ATR_FRACTION * price)
    entry = stop = target = None
    if action is Action.BUY:
        entry, stop, target = price, price - STOP_ATRS * atr, price + TARGET_ATRS * atr
    elif action is Action.SELL:
        entry, stop, target = price, price + STOP_ATRS * atr, price - TARGET_ATRS * atr
    if entry is not None:
        # quoted in cents, the stock tick grid, so a ticket can use them as they are
        entry, stop, target = round(entry, 2), round(stop, 2), round(target, 2)

    support, resistance = _get(inp.daily, "low_20"), _get(inp.daily, "high_20")
    if support is not None and resistance is not None and support >= resistance:
        support = resistance = None

    rules_text = "; ".join(f"{h.text} ({h.points:+g})" for h in hits) or "no rule fired"
    plan = ("" if entry is None else
            f" Plan: entry {entry:.2f} (current price), stop {stop:.2f} ({STOP_ATRS:g} ATR), "
            f"target {target:.2f} ({TARGET_ATRS:g} ATR).")
    reasoning = (f"Rule-based analysis (not an LLM) of {inp.symbol} daily and weekly indicators: "
                 f"{rules_text}. Net score {net:+g} -> {action.value} "
                 f"(BUY at >= {BUY_THRESHOLD:+g}, SELL at <= {SELL_THRESHOLD:+g}), "
                 f"confidence {confidence.value} ({score:g}).{plan}")
    timeframes = ["daily"] + (["weekly"] if inp.weekly.get("close") is not None else [])
    return SignalAnswer.model_validate(
        {
            "symbol": inp.symbol, "action": action, "confidence": confidence,
            "confidence_score": score, "reasoning": reasoning,
            "key_factors": [h.text for h in hits], "trend": _trend(hits),
            "support": support, "resistance": resistance,
            "entry": entry, "stop": stop, "target": target, "timeframes": timeframes,
        },
        context={"symbol": inp.symbol, "reference_price": price},
    )
