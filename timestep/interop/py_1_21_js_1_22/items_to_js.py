"""Raw items and usage, Python (the OpenAI Responses API shapes, snake_case) -> JS protocol
(camelCase; a tool result is a ``function_call_result`` naming its tool, with a structured
output).

Fields the JS SDK does not model travel in the item's ``providerData`` (the JS SDK's place for
provider fields, which its OpenAI model sends back to the API as they were), so a message's
``annotations`` survive Python -> JS -> Python.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...errors import IncompatibleStateError
from .common import (
    UNSUPPORTED_ITEMS,
    extra_fields,
    merged_numbers,
    numeric_records,
    refuse,
    refuse_program_caller,
    type_of,
)

__all__ = ["py_item_to_js", "py_usage_to_js"]

_FUNCTION_CALL_FIELDS = {"type", "id", "call_id", "name", "namespace", "arguments", "status"}


def py_item_to_js(
    raw: Mapping[str, Any], where: str, call_names: Mapping[str, str]
) -> dict[str, Any]:
    """One Python raw item (input, output or tool result) in the JS protocol shape.

    ``call_names`` maps call ids to tool names: a JS tool result names its tool, a Python one
    does not.
    """
    kind = raw.get("type")
    if kind is None or kind == "message":
        return _message(raw, where)
    if kind == "function_call":
        return _function_call(raw, where)
    if kind == "function_call_output":
        return _function_output(raw, where, call_names)
    if kind == "reasoning":
        return _reasoning(raw)
    raise refuse(where, UNSUPPORTED_ITEMS.get(str(kind), f"an item of type {kind!r}"), "JS")


def py_usage_to_js(usage: Mapping[str, Any] | None) -> dict[str, Any]:
    """Aggregate or per-response usage in the JS shape (detail records keep API key names)."""
    usage = usage or {}
    return {
        "requests": usage.get("requests", 0),
        "inputTokens": usage.get("input_tokens", 0),
        "outputTokens": usage.get("output_tokens", 0),
        "totalTokens": usage.get("total_tokens", 0),
        "inputTokensDetails": numeric_records(usage.get("input_tokens_details")),
        "outputTokensDetails": numeric_records(usage.get("output_tokens_details")),
        "requestUsageEntries": [
            {
                "inputTokens": entry.get("input_tokens", 0),
                "outputTokens": entry.get("output_tokens", 0),
                "totalTokens": entry.get("total_tokens", 0),
                "inputTokensDetails": merged_numbers(entry.get("input_tokens_details")),
                "outputTokensDetails": merged_numbers(entry.get("output_tokens_details")),
            }
            for entry in usage.get("request_usage_entries") or []
            if isinstance(entry, Mapping)
        ],
    }


def _message(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    role = raw.get("role")
    content = raw.get("content")
    if role == "assistant":
        parts = (
            [{"type": "output_text", "text": content}]
            if isinstance(content, str)
            else [_output_part(part, where) for part in content or []]
        )
        message: dict[str, Any] = {
            "type": "message",
            "role": "assistant",
            "status": raw.get("status") or "completed",
            "content": parts,
        }
        if raw.get("id") is not None:
            message["id"] = raw["id"]
        if raw.get("phase") in {"commentary", "final_answer"}:
            message["phase"] = raw["phase"]
        extra = extra_fields(raw, {"type", "role", "status", "content", "id"})
        if extra:
            message["providerData"] = extra
        return message
    if role == "user":
        user_content: Any = (
            content
            if isinstance(content, str)
            else [_input_part(part, where) for part in content or []]
        )
        return _with_id({"type": "message", "role": "user", "content": user_content}, raw)
    if role == "system" and isinstance(content, str):
        return _with_id({"type": "message", "role": "system", "content": content}, raw)
    raise refuse(
        where,
        f"a {role!r} message" + ("" if isinstance(content, str) else " with content parts"),
        "JS",
        "The JS SDK holds user, assistant and plain-text system messages only.",
    )


def _with_id(message: dict[str, Any], raw: Mapping[str, Any]) -> dict[str, Any]:
    if raw.get("id") is not None:
        message["id"] = raw["id"]
    return message


def _output_part(part: Any, where: str) -> dict[str, Any]:
    if isinstance(part, Mapping) and part.get("type") in {"output_text", "refusal"}:
        field = "text" if part["type"] == "output_text" else "refusal"
        converted: dict[str, Any] = {"type": part["type"], field: part.get(field, "")}
        extra = extra_fields(part, {"type", field})
        if extra:
            converted["providerData"] = extra
        return converted
    raise refuse(where, f"assistant content of type {type_of(part)!r}", "JS")


def _input_part(part: Any, where: str) -> dict[str, Any]:
    kind = type_of(part)
    if kind == "input_text":
        return {"type": "input_text", "text": part.get("text", "")}
    if kind == "input_image" and (part.get("image_url") or part.get("file_id")):
        image = part.get("image_url") or {"id": part["file_id"]}
        converted: dict[str, Any] = {"type": "input_image", "image": image}
        if part.get("detail"):
            converted["detail"] = part["detail"]
        return converted
    if kind == "input_file":
        file: Any = (
            part.get("file_data")
            or ({"url": part["file_url"]} if part.get("file_url") else None)
            or ({"id": part["file_id"]} if part.get("file_id") else None)
        )
        if file is not None:
            converted = {"type": "input_file", "file": file}
            if part.get("filename"):
                converted["filename"] = part["filename"]
            return converted
    raise refuse(where, f"user content of type {kind!r}", "JS")


def _function_call(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    refuse_program_caller(raw.get("caller"), where, "JS")
    call: dict[str, Any] = {
        "type": "function_call",
        "callId": raw["call_id"],
        "name": raw["name"],
        "arguments": raw.get("arguments", ""),
    }
    for field in ("id", "namespace", "status"):
        if raw.get(field) is not None:
            call[field] = raw[field]
    extra = extra_fields(raw, _FUNCTION_CALL_FIELDS | {"caller"})
    if extra:
        call["providerData"] = extra
    return call


def _function_output(
    raw: Mapping[str, Any], where: str, call_names: Mapping[str, str]
) -> dict[str, Any]:
    call_id = raw["call_id"]
    name = call_names.get(call_id)
    if name is None:
        raise IncompatibleStateError(
            f"Cannot translate {where}: the tool output for call {call_id!r} has no matching "
            "tool call in the saved run, and the JS SDK needs the tool's name. The state is "
            "incomplete; resume it in the SDK that saved it.",
            item=where,
        )
    output = raw.get("output")
    result: dict[str, Any] = {
        "type": "function_call_result",
        "name": name,
        "callId": call_id,
        "status": raw.get("status") or "completed",
        "output": (
            {"type": "text", "text": output}
            if isinstance(output, str)
            else [_input_part(part, where) for part in output or []]
        ),
    }
    if raw.get("id") is not None:
        result["id"] = raw["id"]
    return result


def _reasoning(raw: Mapping[str, Any]) -> dict[str, Any]:
    reasoning: dict[str, Any] = {
        "type": "reasoning",
        "content": [
            {"type": "input_text", "text": part.get("text", "")}
            for part in raw.get("summary") or []
            if isinstance(part, Mapping)
        ],
    }
    if raw.get("id") is not None:
        reasoning["id"] = raw["id"]
    raw_content = [
        {"type": "reasoning_text", "text": part.get("text", "")}
        for part in raw.get("content") or []
        if isinstance(part, Mapping)
    ]
    if raw_content:
        reasoning["rawContent"] = raw_content
    extra = extra_fields(raw, {"type", "id", "summary", "content"})
    if extra:
        reasoning["providerData"] = extra
    return reasoning
