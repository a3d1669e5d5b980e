"""Raw items and usage, JS protocol -> Python (the OpenAI Responses API shapes).

``providerData`` fields go back onto the item, as the JS SDK's own OpenAI model sends them; a
status only the JS SDK requires is dropped where Python's SDK writes none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .common import (
    UNSUPPORTED_ITEMS,
    merge_provider_data,
    merged_numbers,
    refuse,
    refuse_program_caller,
    type_of,
)

__all__ = ["js_item_to_py", "js_usage_to_py"]

_FUNCTION_CALL_FIELDS = {"type", "id", "call_id", "name", "namespace", "arguments", "status"}


def js_item_to_py(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """One JS protocol item in the Python (Responses API) shape."""
    kind = raw.get("type")
    if kind is None or kind == "message":
        return _message(raw, where)
    if kind == "function_call":
        return _function_call(raw, where)
    if kind == "function_call_result":
        return _function_result(raw, where)
    if kind == "reasoning":
        return _reasoning(raw)
    raise refuse(where, UNSUPPORTED_ITEMS.get(str(kind), f"an item of type {kind!r}"), "Python")


def js_usage_to_py(usage: Mapping[str, Any] | None) -> dict[str, Any]:
    """JS usage in the Python shape (one aggregate details record, as Python keeps it)."""
    usage = usage or {}
    return {
        "requests": usage.get("requests", 0),
        "input_tokens": usage.get("inputTokens", 0),
        "input_tokens_details": [
            {"cached_tokens": 0, **merged_numbers(usage.get("inputTokensDetails"))}
        ],
        "output_tokens": usage.get("outputTokens", 0),
        "output_tokens_details": [
            {"reasoning_tokens": 0, **merged_numbers(usage.get("outputTokensDetails"))}
        ],
        "total_tokens": usage.get("totalTokens", 0),
        "request_usage_entries": [
            {
                "input_tokens": entry.get("inputTokens", 0),
                "output_tokens": entry.get("outputTokens", 0),
                "total_tokens": entry.get("totalTokens", 0),
                "input_tokens_details": {
                    "cached_tokens": 0,
                    **merged_numbers(entry.get("inputTokensDetails")),
                },
                "output_tokens_details": {
                    "reasoning_tokens": 0,
                    **merged_numbers(entry.get("outputTokensDetails")),
                },
            }
            for entry in usage.get("requestUsageEntries") or []
            if isinstance(entry, Mapping)
        ],
    }


def _message(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    role = raw.get("role")
    content = raw.get("content")
    if role == "assistant":
        message: dict[str, Any] = {}
        if raw.get("id") is not None:
            message["id"] = raw["id"]
        message.update(
            {
                "type": "message",
                "role": "assistant",
                "status": raw.get("status") or "completed",
                "content": (
                    [{"type": "output_text", "text": content, "annotations": []}]
                    if isinstance(content, str)
                    else [_output_part(part, where) for part in content or []]
                ),
            }
        )
        if raw.get("phase") is not None:
            message["phase"] = raw["phase"]
        merge_provider_data(message, raw, {"type", "role", "status", "content", "id"})
        return message
    if role == "user":
        user: dict[str, Any] = {
            "type": "message",
            "role": "user",
            "content": (
                content
                if isinstance(content, str)
                else [_input_part(part, where) for part in content or []]
            ),
        }
        return _with_id(user, raw)
    if role == "system" and isinstance(content, str):
        return _with_id({"type": "message", "role": "system", "content": content}, raw)
    raise refuse(where, f"a {role!r} message", "Python")


def _with_id(message: dict[str, Any], raw: Mapping[str, Any]) -> dict[str, Any]:
    if raw.get("id") is not None:
        message["id"] = raw["id"]
    return message


def _output_part(part: Any, where: str) -> dict[str, Any]:
    kind = type_of(part)
    if kind == "output_text":
        converted: dict[str, Any] = {"type": "output_text", "text": part.get("text", "")}
        merge_provider_data(converted, part, {"type", "text"})
        # The Python SDK's message model requires the list.
        converted.setdefault("annotations", [])
        return converted
    if kind == "refusal":
        refusal: dict[str, Any] = {"type": "refusal", "refusal": part.get("refusal", "")}
        merge_provider_data(refusal, part, {"type", "refusal"})
        return refusal
    raise refuse(where, f"assistant content of type {kind!r}", "Python")


def _input_part(part: Any, where: str) -> dict[str, Any]:
    kind = type_of(part)
    if kind == "input_text":
        return {"type": "input_text", "text": part.get("text", "")}
    if kind == "input_image":
        image = part.get("image")
        converted: dict[str, Any] = {"type": "input_image", "detail": part.get("detail") or "auto"}
        if isinstance(image, str):
            converted["image_url"] = image
            return converted
        if isinstance(image, Mapping) and isinstance(image.get("id"), str):
            converted["file_id"] = image["id"]
            return converted
    if kind == "input_file":
        file = part.get("file")
        converted = {"type": "input_file"}
        if isinstance(file, str):
            converted["file_data"] = file
        elif isinstance(file, Mapping) and isinstance(file.get("url"), str):
            converted["file_url"] = file["url"]
        elif isinstance(file, Mapping) and isinstance(file.get("id"), str):
            converted["file_id"] = file["id"]
        else:
            raise refuse(where, "an input file without data, URL or file id", "Python")
        if part.get("filename"):
            converted["filename"] = part["filename"]
        return converted
    raise refuse(where, f"user content of type {kind!r}", "Python")


def _function_call(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    refuse_program_caller(raw.get("caller"), where, "Python")
    call: dict[str, Any] = {
        "arguments": raw.get("arguments", ""),
        "call_id": raw["callId"],
        "name": raw["name"],
        "type": "function_call",
    }
    for field in ("id", "namespace", "status"):
        if raw.get(field) is not None:
            call[field] = raw[field]
    merge_provider_data(call, raw, _FUNCTION_CALL_FIELDS | {"caller"})
    return call


def _function_result(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    refuse_program_caller(raw.get("caller"), where, "Python")
    output = raw.get("output")
    if isinstance(output, str):
        converted: Any = output
    elif isinstance(output, Mapping) and output.get("type") == "text":
        converted = output.get("text", "")
    elif isinstance(output, list):
        converted = [_input_part(part, where) for part in output]
    else:
        raise refuse(where, f"a tool output of type {type_of(output)!r}", "Python")
    result: dict[str, Any] = {"call_id": raw["callId"], "output": converted}
    result["type"] = "function_call_output"
    if raw.get("id") is not None:
        result["id"] = raw["id"]
    # Python's SDK writes no status on the outputs it creates; keep only one that says more.
    if raw.get("status") not in (None, "completed"):
        result["status"] = raw["status"]
    return result


def _reasoning(raw: Mapping[str, Any]) -> dict[str, Any]:
    reasoning: dict[str, Any] = {}
    if raw.get("id") is not None:
        reasoning["id"] = raw["id"]
    reasoning["summary"] = [
        {"type": "summary_text", "text": part.get("text", "")}
        for part in raw.get("content") or []
        if isinstance(part, Mapping)
    ]
    reasoning["type"] = "reasoning"
    if raw.get("rawContent"):
        reasoning["content"] = [
            {"type": "reasoning_text", "text": part.get("text", "")}
            for part in raw["rawContent"]
            if isinstance(part, Mapping)
        ]
    merge_provider_data(reasoning, raw, {"type", "id", "summary", "content"})
    return reasoning
