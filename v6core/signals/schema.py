"""The trading signal: what an analyst (rules or LLM) must answer, and the record v6 keeps of it.

`SignalAnswer` is the edge model: an analyst's answer is validated against it (market semantics,
confidence score agreeing with its level, prices coherent with the action, risk/reward checked).
`SignalRecord` is the frozen value that travels inside v6 and is stored in Delta: either an
ACCEPTED signal or a REJECTED answer with the reason (shown as such, never as a signal).

A signal is advice for a human. Nothing here, or anywhere in `v6core.signals`, places an order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from v6core.signals.screening import is_suspect_flag


class Action(str, Enum):
    BUY = "BUY"
    SELL = "SELL"
    HOLD = "HOLD"


class Confidence(str, Enum):
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"


class Status(str, Enum):
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"


class SignalState(str, Enum):
    """What a record is, at first sight: a usable signal, a suspect answer, or no signal at all."""

    ACCEPTED = "ACCEPTED"
    SUSPECT = "SUSPECT"                # valid fields, but the answer stepped outside its contract
    REJECTED = "REJECTED"


NOT_ACTIONABLE = "not actionable"


# Score bands: HIGH >= 70, MEDIUM 40..<70, LOW < 40 (score 0..100).
HIGH_MIN_SCORE = 70.0
MEDIUM_MIN_SCORE = 40.0

# Suggested prices further than this from the reference price are not a plausible plan.
MAX_ENTRY_DEVIATION = 0.25      # entry within +-25% of the reference price
MAX_LEVEL_DEVIATION = 0.60      # stop/target within +-60% of the reference price
RISK_REWARD_TOLERANCE = 0.10    # a stated risk/reward may differ from ours by 10% (rounding)

TIMEFRAMES = ("daily", "weekly")
TREND_SYNONYMS = {
    "UP": "UP", "UPTREND": "UP", "BULLISH": "UP", "BULL": "UP", "RISING": "UP",
    "DOWN": "DOWN", "DOWNTREND": "DOWN", "BEARISH": "DOWN", "BEAR": "DOWN", "FALLING": "DOWN",
    "SIDEWAYS": "SIDEWAYS", "NEUTRAL": "SIDEWAYS", "RANGE": "SIDEWAYS", "FLAT": "SIDEWAYS",
    "RANGEBOUND": "SIDEWAYS", "RANGE-BOUND": "SIDEWAYS", "MIXED": "SIDEWAYS",
}


def confidence_for_score(score: float) -> Confidence:
    if score >= HIGH_MIN_SCORE:
        return Confidence.HIGH
    if score >= MEDIUM_MIN_SCORE:
        return Confidence.MEDIUM
    return Confidence.LOW


def risk_reward(action: Action, entry: float | None, stop: float | None,
                target: float | None) -> float | None:
    """Reward per unit of risk (|target - entry| / |entry - stop|); None when not a BUY/SELL plan."""
    if action is Action.HOLD or entry is None or stop is None or target is None:
        return None
    risk = abs(entry - stop)
    return abs(target - entry) / risk if risk > 0 else None


class SignalAnswer(BaseModel):
    """An analyst's answer, validated at the edge.

    Validation context (optional): `symbol` the answer must be about, `reference_price` the
    suggested prices must be near.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)

    symbol: str = Field(min_length=1, max_length=16)
    action: Action
    confidence: Confidence
    confidence_score: float = Field(ge=0, le=100)
    reasoning: str = Field(min_length=1, max_length=6000)
    key_factors: list[str] = Field(default_factory=list, max_length=12)
    trend: Literal["UP", "DOWN", "SIDEWAYS"]
    support: float | None = Field(default=None, gt=0)
    resistance: float | None = Field(default=None, gt=0)
    entry: float | None = Field(default=None, gt=0)
    stop: float | None = Field(default=None, gt=0)
    target: float | None = Field(default=None, gt=0)
    risk_reward: float | None = Field(default=None, ge=0)
    timeframes: list[Literal["daily", "weekly"]] = Field(default_factory=lambda: list(TIMEFRAMES),
                                                          min_length=1)

    @field_validator("symbol")
    @classmethod
    def _upper_symbol(cls, v: str) -> str:
        return v.upper()

    @field_validator("action", "confidence", mode="before")
    @classmethod
    def _upper_enum(cls, v: Any) -> Any:
        return v.strip().upper() if isinstance(v, str) else v

    @field_validator("trend", mode="before")
    @classmethod
    def _trend_synonyms(cls, v: Any) -> Any:
        if isinstance(v, str):
            return TREND_SYNONYMS.get(v.strip().upper().replace(" ", ""), v)
        return v

    @field_validator("timeframes", mode="before")
    @classmethod
    def _lower_timeframes(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [v]
        if isinstance(v, list):
            return sorted({str(t).strip().lower() for t in v}, key=lambda t: (t != "daily", t))
        return v

    @field_validator("key_factors")
    @classmethod
    def _short_factors(cls, v: list[str]) -> list[str]:
        factors = [f.strip() for f in v if f and f.strip()]
        for f in factors:
            if len(f) > 400:
                raise ValueError("each key factor must be at most 400 characters")
        return factors

    @field_validator("confidence_score", "support", "resistance", "entry", "stop", "target",
                     "risk_reward")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v

    @model_validator(mode="after")
    def _coherent(self, info: ValidationInfo) -> SignalAnswer:
        ctx = info.context or {}
        expected_symbol = ctx.get("symbol")
        if expected_symbol and self.symbol != str(expected_symbol).upper():
            raise ValueError(f"answer is about {self.symbol}, expected {str(expected_symbol).upper()}")

        band = confidence_for_score(self.confidence_score)
        if band is not self.confidence:
            raise ValueError(
                f"confidence {self.confidence.value} does not agree with score "
                f"{self.confidence_score:g} (HIGH >= {HIGH_MIN_SCORE:g}, "
                f"MEDIUM {MEDIUM_MIN_SCORE:g}..<{HIGH_MIN_SCORE:g}, LOW < {MEDIUM_MIN_SCORE:g})")

        if self.support is not None and self.resistance is not None and self.support >= self.resistance:
            raise ValueError(f"support {self.support:g} must be below resistance {self.resistance:g}")

        entry, stop, target = self.entry, self.stop, self.target
        if self.action is not Action.HOLD:
            missing = [n for n, v in (("entry", entry), ("stop", stop), ("target", target)) if v is None]
            if missing:
                raise ValueError(f"{self.action.value} needs {', '.join(missing)}")
            if self.action is Action.BUY and not (stop < entry < target):
                raise ValueError(
                    f"BUY needs stop < entry < target, got stop {stop:g}, entry {entry:g}, target {target:g}")
            if self.action is Action.SELL and not (target < entry < stop):
                raise ValueError(
                    f"SELL needs target < entry < stop, got target {target:g}, entry {entry:g}, stop {stop:g}")

        reference = ctx.get("reference_price")
        if reference is not None and reference > 0:
            if entry is not None and abs(entry / reference - 1) > MAX_ENTRY_DEVIATION:
                raise ValueError(f"entry {entry:g} is more than {MAX_ENTRY_DEVIATION:.0%} away from "
                                 f"the current price {reference:g}")
            for name, level in (("stop", stop), ("target", target)):
                if level is not None and abs(level / reference - 1) > MAX_LEVEL_DEVIATION:
                    raise ValueError(f"{name} {level:g} is more than {MAX_LEVEL_DEVIATION:.0%} away "
                                     f"from the current price {reference:g}")

        computed = risk_reward(self.action, entry, stop, target)
        if self.risk_reward is not None and computed is not None:
            if abs(self.risk_reward - computed) > RISK_REWARD_TOLERANCE * computed + 0.01:
                raise ValueError(f"stated risk/reward {self.risk_reward:g} does not match the prices "
                                 f"(computed {computed:.2f})")
        # The stored figure is always ours, computed from the prices.
        object.__setattr__(self, "risk_reward", None if computed is None else round(computed, 4))
        return self


def _utc(ts: datetime) -> datetime:
    if ts.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware UTC")
    return ts.astimezone(timezone.utc)


@dataclass(slots=True, frozen=True)
class SignalRecord:
    """One analysis outcome as kept in the `signals` Delta table.

    ACCEPTED: a validated signal. REJECTED: an answer that failed validation (or an analysis that
    could not run), with `reject_reason`; its signal fields are empty. `final` is False for an LLM
    answer that was rejected and replaced by the rule analyst's fallback in the same run.
    """

    record_id: str
    run_id: str
    symbol: str
    status: Status
    analyst: str                        # "rules" or "llm:<model>"
    prompt_hash: str
    created_at: datetime                # UTC
    action: Action | None = None
    confidence: Confidence | None = None
    confidence_score: float | None = None
    reasoning: str = ""
    key_factors: tuple[str, ...] = ()
    trend: str | None = None
    support: float | None = None
    resistance: float | None = None
    entry: float | None = None
    stop: float | None = None
    target: float | None = None
    risk_reward: float | None = None
    timeframes: tuple[str, ...] = ()
    reference_price: float | None = None  # price the plan was checked against
    reject_reason: str = ""
    raw_answer: str = ""                # the analyst's text as received (LLM only), for review
    flags: tuple[str, ...] = ()         # e.g. "order-instruction: ..." found in LLM text (ignored)
    attempts: int = 1
    final: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "created_at", _utc(self.created_at))

    @property
    def accepted(self) -> bool:
        return self.status is Status.ACCEPTED

    @property
    def suspect_flags(self) -> tuple[str, ...]:
        return tuple(f for f in self.flags if is_suspect_flag(f))

    @property
    def suspect(self) -> bool:
        """The answer gave orders, carried order structures or unknown fields, or called a tool:
        keep it for review, never one click from a ticket."""
        return bool(self.suspect_flags)

    @property
    def state(self) -> SignalState:
        if not self.accepted:
            return SignalState.REJECTED
        return SignalState.SUSPECT if self.suspect else SignalState.ACCEPTED

    @property
    def actionable(self) -> bool:
        return (self.state is SignalState.ACCEPTED and self.action in (Action.BUY, Action.SELL)
                and self.confidence in (Confidence.HIGH, Confidence.MEDIUM))

    @property
    def not_actionable_reason(self) -> str:
        """Why no ticket can come from this record, the weightiest reason first; "" when one can.
        Always starts with "not actionable", so every list and the stored row say it in words."""
        if self.actionable:
            return ""
        if not self.accepted:
            why = f"rejected, {self.reject_reason or 'no signal'}"
        elif self.suspect:
            why = f"suspect, {self.suspect_flags[0]}"
        elif self.action in (Action.HOLD, None):
            why = "HOLD, nothing to trade"
        else:
            why = f"{self.confidence.value if self.confidence else 'no'} confidence"
        return f"{NOT_ACTIONABLE}: {why}"

    @property
    def is_llm(self) -> bool:
        return self.analyst.startswith("llm:")

    @classmethod
    def from_answer(cls, answer: SignalAnswer, *, record_id: str, run_id: str, analyst: str,
                    prompt_hash: str, created_at: datetime, reference_price: float | None,
                    raw_answer: str = "", flags: tuple[str, ...] = (), attempts: int = 1,
                    final: bool = True) -> SignalRecord:
        return cls(
            record_id=record_id, run_id=run_id, symbol=answer.symbol, status=Status.ACCEPTED,
            analyst=analyst, prompt_hash=prompt_hash, created_at=created_at, action=answer.action,
            confidence=answer.confidence, confidence_score=answer.confidence_score,
            reasoning=answer.reasoning, key_factors=tuple(answer.key_factors), trend=answer.trend,
            support=answer.support, resistance=answer.resistance, entry=answer.entry,
            stop=answer.stop, target=answer.target, risk_reward=answer.risk_reward,
            timeframes=tuple(answer.timeframes), reference_price=reference_price,
            raw_answer=raw_answer, flags=flags, attempts=attempts, final=final,
        )

    @classmethod
    def rejected(cls, *, symbol: str, reason: str, record_id: str, run_id: str, analyst: str,
                 prompt_hash: str, created_at: datetime, reference_price: float | None = None,
                 raw_answer: str = "", flags: tuple[str, ...] = (), attempts: int = 1,
                 final: bool = True) -> SignalRecord:
        return cls(
            record_id=record_id, run_id=run_id, symbol=symbol.upper(), status=Status.REJECTED,
            analyst=analyst, prompt_hash=prompt_hash, created_at=created_at,
            reference_price=reference_price, reject_reason=reason, raw_answer=raw_answer,
            flags=flags, attempts=attempts, final=final,
        )


@dataclass(slots=True, frozen=True)
class AnalystInput:
    """Everything an analyst is given for one symbol (shown on the page as such)."""

    symbol: str
    as_of: datetime
    reference_price: float              # live underlying price if known, else last daily close
    price_source: str                   # "live quote" / "last daily close"
    daily: dict[str, Any]               # indicator summary (see indicators.summarize)
    weekly: dict[str, Any]
    recent_bars: tuple[dict[str, Any], ...]
    exposure: dict[str, Any]
    weekly_source: str = "gateway"      # "gateway" or "resampled from daily"
    notes: tuple[str, ...] = field(default_factory=tuple)
