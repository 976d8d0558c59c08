"""Screening an LLM answer for anything that is not advice: order text, order structures, fields
outside the answer schema, tool or function calls.

The request offers the model no tools and asks for one JSON object with the `SignalAnswer` fields.
An answer that steps outside that contract is *suspect*: it is kept for review with flags saying
exactly what was found, and it is never actionable (no ticket can be drafted from it). Each flag
starts with one of `SUSPECT_FLAG_PREFIXES`, which is how a stored record is recognised as suspect.
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable

ORDER_INSTRUCTION = "order-instruction in LLM text (not actionable)"
ORDER_STRUCTURE = "order-structure in LLM answer (not actionable)"
UNKNOWN_FIELDS = "fields outside the schema in LLM answer (not actionable)"
TOOL_CALL = "tool/function call in LLM answer (not actionable)"
SUSPECT_RUN = "suspect LLM answer in this run (not actionable)"

# Every flag that makes a record suspect. The last one is how records written before these
# checks existed named a tool call: a stored record keeps meaning what it meant.
SUSPECT_FLAG_PREFIXES = ("order-instruction", "order-structure", "fields outside the schema",
                         "tool/function call", "suspect LLM answer", "LLM answered with a tool")

MAX_SHOWN_CHARS = 400   # per value quoted in a flag; the raw answer is stored whole anyway

# Text that tells someone (or something) to trade.
ORDER_INSTRUCTION_PATTERNS = tuple(re.compile(p, re.IGNORECASE) for p in (
    r"\b(place|submit|send|execute|transmit|route|enter)\s+(?:an?\s+|the\s+|this\s+|my\s+|your\s+)?"
    r"(?:\w+\s+){0,2}orders?\b",
    r"\b(buy|sell|short)\s+(?:to\s+open\s+)?\d[\d,]*\s*(shares?|contracts?|lots?|units?)\b",
    r"\bplace_?order\b|\bcancel_?all\b|\bwhat_?if\b",
    r"\bmarket\s+order\b",
    r"\bignore\s+(?:all\s+|any\s+)?(?:previous|prior|above|earlier|your)\s+(?:instructions|rules)\b",
    r"\b(without|skip|bypass)\s+(?:the\s+)?(?:human\s+|operator\s+)?(confirmation|approval|review)\b",
    r"\bexecute\s+(?:the\s+|this\s+)?(trade|signal)\b",
    r"\bauto[- ]?(trade|execute)\b",
))

# A key is order-like when its letters (case and separators ignored: totalQuantity, TOTAL_QUANTITY,
# total-quantity) name an order, a size, or a command to send one. None of the schema's own
# field names match, so this never flags a clean answer.
ORDER_KEY_PATTERN = re.compile(
    r"order|quantit|qty|transmit|execut|placeorder|submit|sendnow|tradenow|autotrade|"
    r"^(tif|timeinforce|lmtprice|auxprice|limitprice|account|conid|shares|contracts|lots)$")


def is_suspect_flag(flag: str) -> bool:
    return flag.startswith(SUSPECT_FLAG_PREFIXES)


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= MAX_SHOWN_CHARS else text[:MAX_SHOWN_CHARS] + "…"


def find_order_instructions(text: str) -> tuple[str, ...]:
    """Flags for each order instruction found in `text` (empty when none)."""
    flags = []
    for pattern in ORDER_INSTRUCTION_PATTERNS:
        for match in pattern.finditer(text or ""):
            start, end = max(0, match.start() - 30), min(len(text), match.end() + 30)
            snippet = " ".join(text[start:end].split())
            flags.append(f"{ORDER_INSTRUCTION}: ...{snippet}...")
    return tuple(dict.fromkeys(flags))


def _embedded_json(text: str) -> Any:
    """A JSON object or array written inside a string value (a structure smuggled as text)."""
    body = text.strip()
    if len(body) < 2 or body[0] not in "{[" or body[-1] not in "}]":
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _walk(value: Any, path: str) -> Iterable[tuple[str, str, Any]]:
    """(path, key, value) for every dict key at any depth, looking into JSON kept in strings."""
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            yield where, str(key), item
            yield from _walk(item, where)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk(item, f"{path}[{i}]")
    elif isinstance(value, str):
        inner = _embedded_json(value)
        if inner is not None:
            yield from _walk(inner, f"{path}<json>")


def find_order_structures(answer: dict[str, Any]) -> tuple[str, ...]:
    """Flags for each order-like key anywhere in the answer, with what it carried."""
    flags = []
    for path, key, value in _walk(answer, ""):
        if ORDER_KEY_PATTERN.search(re.sub(r"[^a-z]", "", key.lower())):
            flags.append(f"{ORDER_STRUCTURE}: {path} = {_shown(value)}")
    return tuple(dict.fromkeys(flags))


def find_unknown_fields(answer: dict[str, Any], known: Iterable[str]) -> tuple[str, ...]:
    """One flag naming the top-level fields the schema does not have, with their values."""
    allowed = set(known)
    extra = {key: value for key, value in answer.items() if key not in allowed}
    if not extra:
        return ()
    return (f"{UNKNOWN_FIELDS}: {_shown(extra)}",)


def describe_tool_calls(message: Any) -> tuple[str, ...]:
    """One flag per tool call (and legacy function call) in a chat-completions message, with
    the function's name and arguments as the model sent them."""
    flags = []
    for call in getattr(message, "tool_calls", None) or ():
        function = getattr(call, "function", None)
        name = getattr(function, "name", None) or getattr(call, "type", None) or "?"
        arguments = getattr(function, "arguments", None)
        flags.append(f"{TOOL_CALL}: {name}({_shown(arguments or '')})")
    legacy = getattr(message, "function_call", None)
    if legacy is not None:
        flags.append(f"{TOOL_CALL}: {getattr(legacy, 'name', None) or '?'}"
                     f"({_shown(getattr(legacy, 'arguments', None) or '')})")
    return tuple(flags)
