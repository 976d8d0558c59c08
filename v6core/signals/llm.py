"""The LLM analyst: any OpenAI-compatible chat-completions endpoint through the `openai` client.

The model's answer is data. It is parsed as JSON, validated against `SignalAnswer`, and screened
(`screening`): order text, order-like structures at any depth, fields outside the schema and tool
calls are flagged, and a flagged answer is suspect, never actionable. This module has no access
to the runtime or the order desk, passes no tools to the model, and never acts on the answer.

Attempts are bounded: one request plus `llm_max_retries` retries on invalid output, each retry
telling the model why its previous answer was rejected. A timeout, an unreachable endpoint or an
HTTP error ends the analysis at once (the caller falls back to the rule analyst).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any

import openai
from pydantic import ValidationError

from v6core.config import Settings
from v6core.signals.prompt import build_messages, prompt_hash
from v6core.signals.schema import AnalystInput, SignalAnswer
from v6core.signals.screening import (describe_tool_calls, find_order_instructions,
                                      find_order_structures, find_unknown_fields)

__all__ = ["LLMAnalyst", "LLMOutcome", "find_order_instructions", "parse_json_object"]

log = logging.getLogger(__name__)

MAX_RAW_CHARS = 8000


def parse_json_object(text: str) -> dict[str, Any]:
    """The JSON object in a model's answer (tolerating code fences and text around it)."""
    body = (text or "").strip()
    if body.startswith("```"):
        body = re.sub(r"^```[a-zA-Z]*\s*|\s*```$", "", body)
    try:
        value = json.loads(body)
    except json.JSONDecodeError:
        start, end = body.find("{"), body.rfind("}")
        if start < 0 or end <= start:
            raise ValueError("the answer is not JSON") from None
        try:
            value = json.loads(body[start:end + 1])
        except json.JSONDecodeError as exc:
            raise ValueError(f"the answer is not valid JSON ({exc.msg} at position {exc.pos})") from None
    if not isinstance(value, dict):
        raise ValueError(f"the answer must be a JSON object, got {type(value).__name__}")
    return value


def describe_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:8]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "answer"
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


@dataclass(slots=True, frozen=True)
class LLMOutcome:
    """What the LLM analyst produced: a validated answer, or the reason there is none."""

    analyst: str                       # "llm:<model>"
    prompt_hash: str
    answer: SignalAnswer | None
    raw_text: str                      # last answer text received (truncated)
    reason: str                        # why there is no answer ("" when there is one)
    attempts: int
    flags: tuple[str, ...] = ()


class LLMAnalyst:
    def __init__(self, settings: Settings, client: openai.OpenAI | None = None) -> None:
        if not settings.llm_enabled:
            raise ValueError("LLM analyst needs llm_base_url and llm_model")
        self.model = settings.llm_model
        self.temperature = settings.llm_temperature
        self.timeout = settings.llm_timeout
        self.max_retries = settings.llm_max_retries
        # The client's own retries are off: attempts are counted here, bounded by llm_max_retries.
        self.client = client or openai.OpenAI(
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key.get_secret_value() or "not-needed",
            timeout=settings.llm_timeout, max_retries=0,
        )
        self._json_mode = True         # response_format json_object, until the server refuses it

    @property
    def name(self) -> str:
        return f"llm:{self.model}"

    def _complete(self, messages: list[dict[str, str]]) -> tuple[str, tuple[str, ...]]:
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages,
                                  "temperature": self.temperature}
        if self._json_mode:
            kwargs["response_format"] = {"type": "json_object"}
        try:
            response = self.client.chat.completions.create(**kwargs)
        except openai.BadRequestError:
            if not self._json_mode:
                raise
            # Some OpenAI-compatible servers reject response_format: ask again without it.
            self._json_mode = False
            kwargs.pop("response_format")
            response = self.client.chat.completions.create(**kwargs)
        if not response.choices:
            return "", ()
        message = response.choices[0].message
        # No tools are offered: a model that calls one is off the contract, whatever else it says.
        return message.content or "", describe_tool_calls(message)

    def analyse(self, inp: AnalystInput) -> LLMOutcome:
        messages = build_messages(inp)
        digest = prompt_hash(messages)
        context = {"symbol": inp.symbol, "reference_price": inp.reference_price}
        flags: list[str] = []
        text, reason = "", ""
        attempts = 0
        for attempts in range(1, self.max_retries + 2):
            try:
                text, call_flags = self._complete(messages)
            except openai.APITimeoutError:
                reason = f"LLM timed out after {self.timeout:g} s"
                break
            except openai.APIConnectionError as exc:
                reason = f"LLM endpoint unreachable: {exc.__class__.__name__}"
                break
            except openai.APIStatusError as exc:
                reason = f"LLM endpoint answered HTTP {exc.status_code}"
                break
            flags.extend(call_flags)
            flags.extend(find_order_instructions(text))
            try:
                fields = parse_json_object(text)
                # Structure outside the schema is found before validation, which ignores it.
                flags.extend(find_order_structures(fields))
                flags.extend(find_unknown_fields(fields, SignalAnswer.model_fields))
                answer = SignalAnswer.model_validate(fields, context=context)
            except ValidationError as exc:
                reason = "answer failed validation: " + describe_validation_error(exc)
            except ValueError as exc:
                reason = str(exc)
            else:
                return LLMOutcome(self.name, digest, answer, text[:MAX_RAW_CHARS], "", attempts,
                                  tuple(dict.fromkeys(flags)))
            log.info("LLM answer for %s rejected (attempt %d): %s", inp.symbol, attempts, reason)
            messages = [*messages,
                        {"role": "assistant", "content": text[:MAX_RAW_CHARS]},
                        {"role": "user", "content": f"That answer was rejected: {reason}. "
                                                    "Reply again with only the corrected JSON object."}]
        return LLMOutcome(self.name, digest, None, text[:MAX_RAW_CHARS], reason, attempts,
                          tuple(dict.fromkeys(flags)))
