"""The signal schema: score bands, price coherence per action, risk/reward, context checks."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from v6core.signals.schema import (Action, Confidence, SignalAnswer, SignalRecord, Status,
                                   confidence_for_score, risk_reward)


def answer(**overrides) -> dict:
    base = {"symbol": "SPY", "action": "BUY", "confidence": "MEDIUM", "confidence_score": 55,
            "reasoning": "Uptrend.", "key_factors": ["SMA stack"], "trend": "UP",
            "support": 95.0, "resistance": 110.0, "entry": 100.0, "stop": 95.0, "target": 110.0}
    base.update(overrides)
    return base


def validate(data: dict, **context) -> SignalAnswer:
    return SignalAnswer.model_validate(data, context=context or None)


@pytest.mark.parametrize("score, level", [(0, "LOW"), (39.99, "LOW"), (40, "MEDIUM"),
                                          (69.9, "MEDIUM"), (70, "HIGH"), (100, "HIGH")])
def test_score_bands(score, level):
    assert confidence_for_score(score) is Confidence(level)
    validate(answer(confidence=level, confidence_score=score))


def test_confidence_that_disagrees_with_the_score_is_rejected():
    with pytest.raises(ValidationError, match="confidence HIGH does not agree with score 55"):
        validate(answer(confidence="HIGH", confidence_score=55))


def test_buy_prices_must_be_stop_entry_target_ascending():
    good = validate(answer())
    assert (good.stop, good.entry, good.target) == (95.0, 100.0, 110.0)
    assert good.risk_reward == pytest.approx(2.0)
    with pytest.raises(ValidationError, match="BUY needs stop < entry < target"):
        validate(answer(stop=101.0))
    with pytest.raises(ValidationError, match="BUY needs stop < entry < target"):
        validate(answer(target=99.0))


def test_sell_prices_must_be_target_entry_stop_ascending():
    sell = validate(answer(action="SELL", trend="DOWN", entry=100.0, stop=104.0, target=92.0))
    assert sell.risk_reward == pytest.approx(2.0)
    with pytest.raises(ValidationError, match="SELL needs target < entry < stop"):
        validate(answer(action="SELL", entry=100.0, stop=95.0, target=110.0))


def test_buy_and_sell_need_all_three_prices_hold_does_not():
    with pytest.raises(ValidationError, match="BUY needs target"):
        validate(answer(target=None))
    hold = validate(answer(action="HOLD", confidence="LOW", confidence_score=20, entry=None,
                           stop=None, target=None))
    assert hold.risk_reward is None


def test_stated_risk_reward_is_checked_and_ours_is_kept():
    assert validate(answer(risk_reward=2.05)).risk_reward == pytest.approx(2.0)
    with pytest.raises(ValidationError, match="stated risk/reward 3 does not match"):
        validate(answer(risk_reward=3.0))
    assert risk_reward(Action.SELL, 100.0, 104.0, 92.0) == pytest.approx(2.0)


def test_context_symbol_and_reference_price():
    with pytest.raises(ValidationError, match="answer is about QQQ, expected SPY"):
        validate(answer(symbol="QQQ"), symbol="SPY")
    with pytest.raises(ValidationError, match="entry 100 is more than 25% away"):
        validate(answer(), reference_price=200.0)
    validate(answer(), symbol="spy", reference_price=101.0)


def test_edge_values_are_rejected():
    with pytest.raises(ValidationError):
        validate(answer(confidence_score=101))
    with pytest.raises(ValidationError):
        validate(answer(entry=-1.0))
    with pytest.raises(ValidationError, match="finite"):
        validate(answer(target=float("inf")))
    with pytest.raises(ValidationError, match="support 110 must be below resistance 95"):
        validate(answer(support=110.0, resistance=95.0))
    with pytest.raises(ValidationError):
        validate(answer(action="STRONG BUY"))
    with pytest.raises(ValidationError):
        validate(answer(reasoning=""))


def test_lenient_spellings_are_normalised():
    got = validate(answer(symbol="spy", action="buy", confidence="medium", trend="Bullish",
                          timeframes=["Weekly", "daily"]))
    assert (got.symbol, got.action, got.confidence, got.trend) == ("SPY", Action.BUY, Confidence.MEDIUM, "UP")
    assert got.timeframes == ["daily", "weekly"]


def _record(**kw) -> SignalRecord:
    base = dict(record_id="r", run_id="u", symbol="SPY", status=Status.ACCEPTED, analyst="rules",
                prompt_hash="h", created_at=datetime(2026, 11, 21, tzinfo=timezone.utc),
                action=Action.BUY, confidence=Confidence.MEDIUM)
    base.update(kw)
    return SignalRecord(**base)


def test_actionable_only_for_accepted_high_or_medium_buy_or_sell():
    assert _record().actionable
    assert _record(confidence=Confidence.HIGH, action=Action.SELL).actionable
    assert not _record(confidence=Confidence.LOW).actionable
    assert not _record(action=Action.HOLD, confidence=Confidence.HIGH).actionable
    assert not _record(status=Status.REJECTED).actionable


def test_record_times_must_be_aware_and_become_utc():
    with pytest.raises(ValueError, match="timezone-aware"):
        _record(created_at=datetime(2026, 11, 21))
    from datetime import timedelta
    local = datetime(2026, 11, 21, 10, tzinfo=timezone(timedelta(hours=-5)))
    assert _record(created_at=local).created_at == datetime(2026, 11, 21, 15, tzinfo=timezone.utc)
