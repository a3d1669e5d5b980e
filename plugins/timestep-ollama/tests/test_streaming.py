"""Streamed replies become the SDK's Responses stream events, in order."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any, cast

import pytest
from agents import Agent, ModelBehaviorError, ModelSettings, ModelTracing, RunResultStreaming
from agents.items import TResponseStreamEvent
from openai.types.responses import (
    ResponseCompletedEvent,
    ResponseFunctionToolCall,
    ResponseOutputItemAddedEvent,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseReasoningItem,
)

from fake_ollama import FakeOllama, Reply, tool_call
from timestep import run_agent
from timestep_ollama import OllamaModelProvider


async def stream(provider: OllamaModelProvider, text: str = "hi") -> list[TResponseStreamEvent]:
    model = provider.get_model("llama3")
    events = model.stream_response(
        None,
        text,
        ModelSettings(),
        [],
        None,
        [],
        ModelTracing.DISABLED,
        previous_response_id=None,
        conversation_id=None,
        prompt=None,
    )
    return [event async for event in events]


def text_of(item: object) -> str:
    assert isinstance(item, ResponseOutputMessage)
    [part] = item.content
    assert isinstance(part, ResponseOutputText)
    return part.text


def completed(events: list[TResponseStreamEvent]) -> ResponseCompletedEvent:
    last = events[-1]
    assert isinstance(last, ResponseCompletedEvent)
    return last


async def test_streamed_text_arrives_as_text_deltas(
    provider: OllamaModelProvider, ollama_server: FakeOllama
) -> None:
    ollama_server.reply(Reply("The sky is blue.", prompt_eval_count=9, eval_count=5))

    events = await stream(provider)

    assert [event.type for event in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    deltas = [event.delta for event in events if event.type == "response.output_text.delta"]
    assert "".join(deltas) == "The sky is blue."
    response = completed(events).response
    [message] = response.output
    assert isinstance(message, ResponseOutputMessage) and message.status == "completed"
    assert text_of(message) == "The sky is blue."
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (9, 5)
    assert response.usage.total_tokens == 14


async def test_tool_calls_arriving_in_separate_chunks_each_become_a_call(
    provider: OllamaModelProvider, ollama_server: FakeOllama
) -> None:
    ollama_server.reply(
        Reply(
            chunks=[
                {"content": "Checking "},
                {"tool_calls": [tool_call("get_weather", city="Paris")]},
                {"content": "both."},
                {"tool_calls": [tool_call("get_time", city="Rome", hour_format=24)]},
            ]
        )
    )

    events = await stream(provider)

    calls = [
        (event.output_index, event.item)
        for event in events
        if isinstance(event, ResponseOutputItemAddedEvent)
        and isinstance(event.item, ResponseFunctionToolCall)
    ]
    assert [(index, call.name) for index, call in calls] == [(1, "get_weather"), (2, "get_time")]
    assert all(call.arguments == "" for _, call in calls)
    arguments = [
        json.loads(event.delta)
        for event in events
        if event.type == "response.function_call_arguments.delta"
    ]
    assert arguments == [{"city": "Paris"}, {"city": "Rome", "hour_format": 24}]
    done_names = [
        getattr(event, "name", None)
        for event in events
        if event.type == "response.function_call_arguments.done"
    ]
    assert done_names == ["get_weather", "get_time"]

    output = completed(events).response.output
    assert [type(item) for item in output] == [
        ResponseOutputMessage,
        ResponseFunctionToolCall,
        ResponseFunctionToolCall,
    ]
    assert text_of(output[0]) == "Checking both."
    call_ids = [item.call_id for item in output if isinstance(item, ResponseFunctionToolCall)]
    assert all(call_id.startswith("call_") for call_id in call_ids)
    assert len(set(call_ids)) == 2
    # Each call is finished as soon as it arrives, before the text is.
    kinds = [
        (event.type, getattr(event, "output_index", None))
        for event in events
        if event.type in ("response.output_item.done", "response.output_text.delta")
    ]
    assert kinds == [
        ("response.output_text.delta", 0),
        ("response.output_item.done", 1),
        ("response.output_text.delta", 0),
        ("response.output_item.done", 2),
        ("response.output_item.done", 0),
    ]


async def test_thinking_streams_as_reasoning_text_before_the_answer(
    provider: OllamaModelProvider, ollama_server: FakeOllama
) -> None:
    ollama_server.reply(Reply("Blue.", thinking="Rayleigh scattering."))

    events = await stream(provider)

    types = [event.type for event in events]
    assert types[2:8] == [
        "response.output_item.added",
        "response.reasoning_text.delta",
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
        "response.output_item.done",
        "response.output_item.added",
    ]
    output = completed(events).response.output
    assert isinstance(output[0], ResponseReasoningItem)
    assert output[0].content is not None
    assert output[0].content[0].text == "Rayleigh scattering."
    assert isinstance(output[1], ResponseOutputMessage)


async def test_a_reply_with_nothing_in_it_still_ends_in_a_message(
    provider: OllamaModelProvider, ollama_server: FakeOllama
) -> None:
    ollama_server.reply(Reply(""))

    events = await stream(provider)

    [message] = completed(events).response.output
    assert text_of(message) == ""


async def test_run_agent_streams_the_raw_events_to_the_caller(
    provider: OllamaModelProvider, ollama_server: FakeOllama
) -> None:
    ollama_server.reply("Hello there.")
    seen: list[str] = []

    async def watch(result: Any) -> Any:
        assert isinstance(result, RunResultStreaming)
        async for event in result.stream_events():
            if event.type == "raw_response_event":
                seen.append(event.data.type)
        return result

    result = await run_agent(
        Agent(name="Chat", model=provider.get_model("llama3")),
        "hi",
        stream=True,
        result_processor=watch,
    )

    assert result.final_output == "Hello there."
    assert seen.count("response.output_text.delta") == 2
    assert seen[0] == "response.created" and seen[-1] == "response.completed"


async def test_a_stream_cut_before_its_final_chunk_is_an_error(
    provider: OllamaModelProvider, ollama_server: FakeOllama
) -> None:
    ollama_server.reply(Reply("Half an ans", end_early=True))

    with pytest.raises(ModelBehaviorError, match="ended before its final chunk"):
        await stream(provider)


async def test_stopping_early_releases_the_stream(
    provider: OllamaModelProvider, ollama_server: FakeOllama
) -> None:
    ollama_server.reply("A long answer with many words in it.", "Next.")
    model = provider.get_model("llama3")
    # stream_response is declared as an iterator; it is an async generator, closable early.
    events = cast(
        AsyncGenerator[TResponseStreamEvent, None],
        model.stream_response(
            None,
            "hi",
            ModelSettings(),
            [],
            None,
            [],
            ModelTracing.DISABLED,
            previous_response_id=None,
            conversation_id=None,
            prompt=None,
        ),
    )

    seen = [await anext(events) for _ in range(5)]
    await events.aclose()

    assert seen[-1].type == "response.output_text.delta"
    # The half-read reply was dropped cleanly: the next request gets its own answer.
    [message] = completed(await stream(provider)).response.output
    assert text_of(message) == "Next."
