"""The tool-invocation identities each SDK records, computed the way each SDK computes them.

Both SDKs keep a ledger of tool calls (which ran, which completed, which an approval is bound
to) keyed by a fingerprint of the call, and each refuses a saved state whose ledger does not
match the calls in its history. A translated state therefore needs the *target* SDK's
fingerprints, recomputed from the translated items:

- JS (``@openai/agents-core``): a stable JSON string of caller, type, canonical tool name and
  the arguments, with every JSON number rewritten to a canonical token so ``1.50`` and ``1.5``
  agree.
- Python (``openai-agents``): SHA-256 digests of an approval scope (call type and tool lookup
  key, plus ``invocation_role`` for handoffs) and of the call's semantic fields.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "escape_lone_surrogates",
    "handoff_tool_name",
    "js_fingerprint",
    "js_state_key",
    "python_invocation",
]

# The JS SDK's marker for numbers inside a canonicalised argument string.
_JSON_TOKEN = "\u0000openai-agents-json:"
# A JSON string (any escaped character) or a JSON number, scanned left to right as JS does.
_TOKENS = re.compile(
    r'"(?:[^"\\]|\\.)*"|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?', re.DOTALL
)
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
# Surrogates left in a Python str are unpaired; JSON.stringify writes those as \uXXXX escapes.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def js_state_key(lookup_key: Sequence[str]) -> str:
    """The JS ``functionToolStateKey`` of a lookup key such as ``("bare", "get_weather")``."""
    return json.dumps(list(lookup_key), ensure_ascii=False, separators=(",", ":"))


def handoff_tool_name(handoff_name: str) -> str:
    """The name the JS ledger files a handoff call under."""
    return f"handoff:{handoff_name}"


def js_fingerprint(tool_name: str, call: Mapping[str, Any]) -> str:
    """The JS SDK's fingerprint of a direct ``function_call`` (JS shape) to ``tool_name``."""
    # The keys of this object are already in the JS SDK's sorted order.
    payload = _stable_json(_js_arguments(call.get("arguments", "")))
    return (
        f'{{"caller":{{"type":"direct"}},"payload":{payload},'
        f'"toolName":{_js_string(tool_name)},"type":{_js_string(call["type"])}}}'
    )


def python_invocation(
    call: Mapping[str, Any], lookup_key: Sequence[str], *, handoff: bool = False
) -> tuple[str, str]:
    """``(approval_scope, fingerprint)`` of a ``function_call`` (Python shape), as the Python
    SDK's tool-invocation ledger records them."""
    scope_payload: dict[str, Any] = {"type": "function_call", "tool_lookup_key": list(lookup_key)}
    if handoff:
        scope_payload["invocation_role"] = "handoff"
    scope = _sha256(scope_payload)
    semantic: dict[str, Any] = {"approval_scope": scope, "type": "function_call"}
    if call.get("arguments") is not None:
        semantic["arguments"] = _python_arguments(call["arguments"])
    if call.get("caller") is not None:
        semantic["caller"] = _sorted(call["caller"])
    return scope, _sha256(semantic)


def _sha256(payload: Mapping[str, Any]) -> str:
    encoded = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def _python_arguments(arguments: Any) -> Any:
    if not isinstance(arguments, str):
        return _sorted(arguments)
    try:
        parsed = json.loads(arguments, parse_constant=_refuse_constant)
    except ValueError:
        return arguments
    return _sorted(parsed)


def _refuse_constant(constant: str) -> Any:
    raise ValueError(f"Invalid JSON constant: {constant}")


def _sorted(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _sorted(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [_sorted(item) for item in value]
    return value


def _js_arguments(arguments: str) -> dict[str, Any]:
    try:
        return {"format": "json", "value": json.loads(_encode_numbers(arguments))}
    except ValueError:
        return {"format": "raw", "value": arguments}


def _encode_numbers(text: str) -> str:
    """Rewrite every JSON number outside strings as a canonical string token (JS semantics)."""
    return _TOKENS.sub(_encode_token, text)


def _encode_token(match: re.Match[str]) -> str:
    token = match.group()
    if token[0] != '"':
        return _js_string(f"{_JSON_TOKEN}number:{_canonical_number(token)}")
    # Only a string spelling the marker itself needs escaping (JS does the same).
    if "openai-agents-json:" in token:
        decoded = json.loads(token)
        if isinstance(decoded, str) and decoded.startswith(_JSON_TOKEN):
            return _js_string(f"{_JSON_TOKEN}string:{decoded}")
    return token


def _canonical_number(literal: str) -> str:
    mantissa, _, exponent_text = literal.lower().partition("e")
    negative = mantissa.startswith("-")
    integer, _, fraction = mantissa.lstrip("-").partition(".")
    digits = (integer + fraction).lstrip("0")
    if not digits:
        return "-0" if negative else "0"
    exponent = int(exponent_text or "0") - len(fraction)
    stripped = digits.rstrip("0")
    exponent += len(digits) - len(stripped)
    return f"{'-' if negative else ''}{stripped}e{exponent}"


def _js_string(value: str) -> str:
    return escape_lone_surrogates(json.dumps(value, ensure_ascii=False))


def _stable_json(value: Any) -> str:
    """``JSON.stringify`` with object keys sorted by UTF-16 code units, as the JS SDK does."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    # Code-point order (Python) and UTF-16 order (JS) differ only around astral characters.
    if _ASTRAL.search(text) is not None:
        text = json.dumps(_js_sorted(value), ensure_ascii=False, separators=(",", ":"))
    return escape_lone_surrogates(text)


def escape_lone_surrogates(text: str) -> str:
    """JSON ``text`` with each lone surrogate as a ``\\uXXXX`` escape, as JSON.stringify does."""
    if _LONE_SURROGATE.search(text) is None:
        return text
    return _LONE_SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def _js_sorted(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _js_sorted(value[k]) for k in sorted(value, key=_utf16_key)}
    if isinstance(value, list):
        return [_js_sorted(item) for item in value]
    return value


def _utf16_key(key: str) -> bytes:
    return key.encode("utf-16-be")
