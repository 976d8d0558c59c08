"""What the LLM analyst is sent: the messages, built from an AnalystInput, and their hash."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from v6core.signals.schema import (HIGH_MIN_SCORE, MAX_ENTRY_DEVIATION, MEDIUM_MIN_SCORE,
                                   AnalystInput, SignalAnswer)

SYSTEM_PROMPT = """\
You are a technical analyst helping a human options trader. For the one symbol you are given,
produce ONE trading signal as advice. You cannot place, change or cancel orders, and you must not
tell anyone to: a human decides, drafts a ticket and confirms it. Base the signal only on the data
in the user message (daily and weekly indicators, recent daily bars, current exposure).

Reply with ONLY a JSON object (no prose, no code fences) with these fields:
  symbol (string, the symbol given), action ("BUY" | "SELL" | "HOLD"),
  confidence ("HIGH" | "MEDIUM" | "LOW"), confidence_score (number 0-100),
  reasoning (string), key_factors (list of short strings), trend ("UP" | "DOWN" | "SIDEWAYS"),
  support (number or null), resistance (number or null),
  entry (number or null), stop (number or null), target (number or null),
  risk_reward (number or null), timeframes (list of "daily" / "weekly").
Constraints (answers breaking them are rejected):
- confidence must agree with confidence_score: HIGH >= {high:g}, MEDIUM {medium:g} to below {high:g},
  LOW below {medium:g};
- BUY: stop < entry < target; SELL: target < entry < stop; HOLD: entry, stop, target may be null;
- entry within {entry_dev:.0%} of the current price; support below resistance;
- risk_reward = |target - entry| / |entry - stop|.
JSON schema of the answer:
{schema}
"""


def answer_schema_text() -> str:
    return json.dumps(SignalAnswer.model_json_schema(), separators=(",", ":"), sort_keys=True)


def input_payload(inp: AnalystInput) -> dict[str, Any]:
    """The analyst input as plain JSON-able data (also what the page shows)."""
    return {
        "symbol": inp.symbol,
        "as_of": inp.as_of.isoformat(),
        "current_price": inp.reference_price,
        "price_source": inp.price_source,
        "daily_indicators": inp.daily,
        "weekly_indicators": inp.weekly,
        "weekly_bars_source": inp.weekly_source,
        "recent_daily_bars": list(inp.recent_bars),
        "current_exposure": inp.exposure,
        "notes": list(inp.notes),
    }


def build_messages(inp: AnalystInput) -> list[dict[str, str]]:
    system = SYSTEM_PROMPT.format(high=HIGH_MIN_SCORE, medium=MEDIUM_MIN_SCORE,
                                  entry_dev=MAX_ENTRY_DEVIATION, schema=answer_schema_text())
    user = ("Analyse this symbol and answer with the JSON object only.\n"
            + json.dumps(input_payload(inp), separators=(",", ":"), default=str))
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def prompt_hash(payload: Any) -> str:
    """sha256 of the canonical JSON of what an analyst was given (messages or input payload)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
