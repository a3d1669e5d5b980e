"""Ollama replies as the SDK's output items (Responses format) and usage.

Shared by the plain and the streamed path, so both produce the very same items.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

import ollama
from agents import ModelBehaviorError, Usage
from agents.items import TResponseOutputItem
from agents.models.fake_id import FAKE_RESPONSES_ID
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseReasoningItem,
)
from openai.types.responses.response_reasoning_item import Content
from openai.types.responses.response_usage import (
    InputTokensDetails,
    OutputTokensDetails,
    ResponseUsage,
)

__all__ = [
    "check_not_truncated",
    "function_call_item",
    "message_item",
    "output_items",
    "raw_usage",
    "reasoning_item",
    "response_usage",
    "usage",
]


def output_items(response: ollama.ChatResponse, model: str) -> list[TResponseOutputItem]:
    """The output items of one non-streamed reply: thinking, text, then tool calls.

    A reply without tool calls always has a message (possibly empty), so the run can end.
    """
    message = response.message
    items: list[TResponseOutputItem] = []
    if message.thinking:
        items.append(reasoning_item(message.thinking, model))
    calls = [
        function_call_item(call.function.name, call.function.arguments)
        for call in message.tool_calls or []
    ]
    text = message.content or ""
    check_not_truncated(response, model, produced=bool(text or calls))
    if text or not calls:
        items.append(message_item(text))
    items.extend(calls)
    return items


def check_not_truncated(response: ollama.ChatResponse, model: str, *, produced: bool) -> None:
    """Refuse a reply cut off by the token limit before it said or called anything."""
    if response.done_reason == "length" and not produced:
        raise ModelBehaviorError(
            f"Ollama model {model!r} hit its token limit before producing any text or tool "
            "call (done_reason='length'). Raise ModelSettings(max_tokens=...) or the context "
            "size (ModelSettings(extra_args={'num_ctx': ...}))."
        )


def reasoning_item(thinking: str, model: str) -> ResponseReasoningItem:
    """A reasoning item holding the model's ``thinking`` text."""
    item = ResponseReasoningItem(
        id=FAKE_RESPONSES_ID,
        summary=[],
        content=[Content(text=thinking, type="reasoning_text")],
        type="reasoning",
    )
    # Marks the reasoning as foreign, so the SDK drops it rather than send it to OpenAI's
    # Responses API (which only accepts its own reasoning items) after a handoff.
    item.provider_data = {"model": model}  # type: ignore[attr-defined]
    return item


def message_item(text: str) -> ResponseOutputMessage:
    """A completed assistant message with one text part."""
    return ResponseOutputMessage(
        id=FAKE_RESPONSES_ID,
        content=[ResponseOutputText(text=text, type="output_text", annotations=[], logprobs=[])],
        role="assistant",
        status="completed",
        type="message",
    )


def function_call_item(name: str, arguments: Mapping[str, Any] | None) -> ResponseFunctionToolCall:
    """A completed function call with a fresh call id.

    Ollama does not identify tool calls (its Python client drops any id), yet the SDK pairs
    every result with its call by id, so each call gets a unique one here.
    """
    return ResponseFunctionToolCall(
        id=FAKE_RESPONSES_ID,
        call_id=f"call_{uuid.uuid4().hex}",
        name=name,
        arguments=json.dumps(dict(arguments or {})),
        type="function_call",
        status="completed",
    )


def usage(response: ollama.ChatResponse) -> Usage:
    """Token usage of one request: ``prompt_eval_count`` in, ``eval_count`` out."""
    input_tokens = response.prompt_eval_count or 0
    output_tokens = response.eval_count or 0
    return Usage(
        requests=1,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
    )


def response_usage(response: ollama.ChatResponse | None) -> ResponseUsage:
    """The same usage in the Responses shape a ``response.completed`` event carries."""
    counted = usage(response) if response is not None else Usage(requests=1)
    return ResponseUsage(
        input_tokens=counted.input_tokens,
        output_tokens=counted.output_tokens,
        total_tokens=counted.total_tokens,
        # Validated from a dict: openai releases differ on whether cache_write_tokens exists.
        input_tokens_details=InputTokensDetails.model_validate(
            {"cached_tokens": 0, "cache_write_tokens": 0}
        ),
        output_tokens_details=OutputTokensDetails(reasoning_tokens=0),
    )


def raw_usage(response: ollama.ChatResponse | None) -> dict[str, Any] | None:
    """Ollama's own counters and timings, for ``ModelSettings(preserve_raw_usage=True)``."""
    if response is None:
        return None
    fields = (
        "prompt_eval_count",
        "eval_count",
        "total_duration",
        "load_duration",
        "prompt_eval_duration",
        "eval_duration",
    )
    return {name: getattr(response, name) for name in fields if getattr(response, name) is not None}
