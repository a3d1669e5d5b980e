"""Agents on Ollama models, end to end through ``timestep.run_agent`` and the fake server."""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import os
from typing import Any

import pytest
from agents import (
    Agent,
    ReasoningItem,
    RunConfig,
    RunResultStreaming,
    ToolCallItem,
    function_tool,
    set_trace_processors,
)
from agents.agent_output import AgentOutputSchema
from agents.tracing import GenerationSpanData, Span, Trace, TracingProcessor
from agents.tracing.processors import default_processor
from openai.types.responses import ResponseFunctionToolCall
from pydantic import BaseModel

from fake_ollama import FakeOllama, Reply, tool_call
from timestep import RunStateStore, run_agent
from timestep_ollama import OllamaModelProvider

STREAM = pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])


def weather_agent(provider: OllamaModelProvider, calls: list[str] | None = None) -> Agent[Any]:
    @function_tool
    def get_weather(city: str) -> str:
        """Today's weather in a city."""
        if calls is not None:
            calls.append(city)
        return f"Sunny in {city}"

    return Agent(
        name="Forecaster",
        instructions="Answer with the weather.",
        model=provider.get_model("llama3"),
        tools=[get_weather],
    )


@STREAM
async def test_a_local_model_answers_a_plain_chat(
    stream: bool, provider: OllamaModelProvider, ollama_server: FakeOllama
) -> None:
    ollama_server.reply("Hello from llama3, friend.")
    agent = Agent(name="Greeter", instructions="Be brief.", model=provider.get_model("llama3"))

    result = await run_agent(agent, "hi", stream=stream)

    assert isinstance(result, RunResultStreaming) is stream
    assert result.final_output == "Hello from llama3, friend."
    [sent] = ollama_server.requests
    assert sent.model == "llama3"
    assert sent.body["stream"] is stream
    assert sent.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
    ]
    assert sent.tools == [] and "format" not in sent.body


@STREAM
async def test_a_tool_call_and_its_result_make_a_round_trip(
    stream: bool, provider: OllamaModelProvider, ollama_server: FakeOllama
) -> None:
    calls: list[str] = []
    ollama_server.reply(
        Reply(tool_calls=[tool_call("get_weather", city="Paris")]),
        "It is sunny in Paris.",
    )

    result = await run_agent(weather_agent(provider, calls), "Weather in Paris?", stream=stream)

    assert result.final_output == "It is sunny in Paris."
    assert calls == ["Paris"]
    first, second = ollama_server.requests
    assert first.tool_names == second.tool_names == ["get_weather"]
    assert first.tools[0]["function"]["description"] == "Today's weather in a city."
    assert first.tools[0]["function"]["parameters"] == {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    }
    assert second.messages[1:] == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
        },
        {"role": "tool", "content": "Sunny in Paris", "tool_name": "get_weather"},
    ]


@STREAM
async def test_several_tool_calls_in_one_reply_all_run(
    stream: bool, provider: OllamaModelProvider, ollama_server: FakeOllama
) -> None:
    calls: list[str] = []
    ollama_server.reply(
        Reply(
            tool_calls=[
                tool_call("get_weather", city="Paris"),
                tool_call("get_weather", city="Rome"),
            ]
        ),
        "Sunny in both.",
    )

    result = await run_agent(weather_agent(provider, calls), "Paris and Rome?", stream=stream)

    assert result.final_output == "Sunny in both."
    assert sorted(calls) == ["Paris", "Rome"]
    history = ollama_server.requests[1].messages
    assert history[2]["tool_calls"] == [
        {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
        {"function": {"name": "get_weather", "arguments": {"city": "Rome"}}},
    ]
    assert history[3:] == [
        {"role": "tool", "content": "Sunny in Paris", "tool_name": "get_weather"},
        {"role": "tool", "content": "Sunny in Rome", "tool_name": "get_weather"},
    ]
    call_ids = [
        item.raw_item.call_id
        for item in result.new_items
        if isinstance(item, ToolCallItem) and isinstance(item.raw_item, ResponseFunctionToolCall)
    ]
    assert len(set(call_ids)) == 2 and all(call_ids)


@STREAM
async def test_text_and_tool_calls_in_one_reply_stay_one_assistant_turn(
    stream: bool, provider: OllamaModelProvider, ollama_server: FakeOllama
) -> None:
    ollama_server.reply(
        Reply(content="Let me check.", tool_calls=[tool_call("get_weather", city="Oslo")]),
        "Sunny in Oslo.",
    )

    result = await run_agent(weather_agent(provider), "Oslo?", stream=stream)

    assert result.final_output == "Sunny in Oslo."
    assert ollama_server.requests[1].messages[2] == {
        "role": "assistant",
        "content": "Let me check.",
        "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}],
    }


@STREAM
async def test_a_tool_needing_approval_pauses_is_saved_and_resumes(
    stream: bool, provider: OllamaModelProvider, ollama_server: FakeOllama, sqlite_url: str
) -> None:
    deleted: list[str] = []

    @function_tool(needs_approval=True)
    def delete_file(path: str) -> str:
        """Delete a file."""
        deleted.append(path)
        return f"deleted {path}"

    agent = Agent(name="Ops", model=provider.get_model("llama3"), tools=[delete_file])
    ollama_server.reply(Reply(tool_calls=[tool_call("delete_file", path="/tmp/x")]))

    paused = await run_agent(agent, "clean up /tmp/x", stream=stream)
    assert [item.tool_name for item in paused.interruptions] == ["delete_file"]
    assert deleted == []
    await RunStateStore(agent=agent, session_id="ticket-7", url=sqlite_url).save(paused)

    # Later, with a fresh store (as another process would): approve and resume.
    store = RunStateStore(agent=agent, session_id="ticket-7", url=sqlite_url)
    state = await store.load()
    for item in state.get_interruptions():
        state.approve(item)
    ollama_server.reply("Deleted /tmp/x.")
    finished = await run_agent(agent, state, stream=stream)
    await store.save(finished)

    assert finished.final_output == "Deleted /tmp/x."
    assert deleted == ["/tmp/x"]
    info = await store.info()
    assert info is not None and info.status == "completed"
    assert ollama_server.requests[1].messages[-2:] == [
        {
            "role": "assistant",
            "tool_calls": [{"function": {"name": "delete_file", "arguments": {"path": "/tmp/x"}}}],
        },
        {"role": "tool", "content": "deleted /tmp/x", "tool_name": "delete_file"},
    ]


@STREAM
async def test_a_handoff_passes_the_conversation_to_another_agent(
    stream: bool, provider: OllamaModelProvider, ollama_server: FakeOllama
) -> None:
    billing = Agent(
        name="Billing", instructions="You handle invoices.", model=provider.get_model("qwen3")
    )
    triage = Agent(
        name="Triage",
        instructions="Route the customer.",
        model=provider.get_model("llama3"),
        handoffs=[billing],
    )
    ollama_server.reply(
        Reply(tool_calls=[tool_call("transfer_to_billing")]), "Your invoice is on its way."
    )

    result = await run_agent(triage, "Where is my invoice?", stream=stream)

    assert result.final_output == "Your invoice is on its way."
    assert result.last_agent is billing
    to_triage, to_billing = ollama_server.requests
    assert to_triage.model == "llama3" and to_triage.tool_names == ["transfer_to_billing"]
    assert to_billing.model == "qwen3"
    assert to_billing.messages[0] == {"role": "system", "content": "You handle invoices."}
    assert to_billing.messages[-1]["role"] == "tool"


class Forecast(BaseModel):
    city: str
    temperature_c: float


@STREAM
async def test_structured_output_sends_the_schema_and_parses_the_reply(
    stream: bool, provider: OllamaModelProvider, ollama_server: FakeOllama
) -> None:
    agent = Agent(name="Structured", model=provider.get_model("llama3"), output_type=Forecast)
    ollama_server.reply('{"city": "Lima", "temperature_c": 19.5}')

    result = await run_agent(agent, "Forecast for Lima", stream=stream)

    assert result.final_output == Forecast(city="Lima", temperature_c=19.5)
    assert ollama_server.requests[0].body["format"] == AgentOutputSchema(Forecast).json_schema()


@STREAM
async def test_an_image_goes_with_the_question(
    stream: bool, provider: OllamaModelProvider, ollama_server: FakeOllama
) -> None:
    png = b"\x89PNG\r\n\x1a\n fake pixels"
    encoded = base64.b64encode(png).decode()
    ollama_server.reply("A cat.")
    question = [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "What is in this picture?"},
                {"type": "input_image", "image_url": f"data:image/png;base64,{encoded}"},
            ],
        }
    ]

    result = await run_agent(
        Agent(name="Eyes", model=provider.get_model("llava")), question, stream=stream
    )

    assert result.final_output == "A cat."
    assert ollama_server.requests[0].messages == [
        {"role": "user", "content": "What is in this picture?", "images": [encoded]}
    ]


@STREAM
async def test_usage_tokens_add_up_over_the_run(
    stream: bool, provider: OllamaModelProvider, ollama_server: FakeOllama
) -> None:
    ollama_server.reply(
        Reply(
            tool_calls=[tool_call("get_weather", city="Oslo")], prompt_eval_count=30, eval_count=5
        ),
        Reply("Sunny.", prompt_eval_count=50, eval_count=3),
    )

    result = await run_agent(weather_agent(provider), "Oslo?", stream=stream)

    usage = result.context_wrapper.usage
    assert (usage.requests, usage.input_tokens, usage.output_tokens) == (2, 80, 8)
    assert usage.total_tokens == 88
    assert [response.usage.input_tokens for response in result.raw_responses] == [30, 50]


@STREAM
async def test_thinking_becomes_reasoning_and_goes_back_with_the_next_turn(
    stream: bool, provider: OllamaModelProvider, ollama_server: FakeOllama
) -> None:
    ollama_server.reply(
        Reply(
            thinking="They want the weather, so I call the tool.",
            tool_calls=[tool_call("get_weather", city="Oslo")],
        ),
        "Sunny.",
    )

    result = await run_agent(weather_agent(provider), "Oslo?", stream=stream)

    [reasoning] = [item for item in result.new_items if isinstance(item, ReasoningItem)]
    assert reasoning.raw_item.content is not None
    assert reasoning.raw_item.content[0].text == "They want the weather, so I call the tool."
    assert ollama_server.requests[1].messages[2]["thinking"] == (
        "They want the weather, so I call the tool."
    )


async def test_a_conversation_carries_its_history(
    provider: OllamaModelProvider, ollama_server: FakeOllama
) -> None:
    agent = Agent(name="Chat", model=provider.get_model("llama3"))
    ollama_server.reply("Nice to meet you, Ada.", "Your name is Ada.")

    first = await run_agent(agent, "I am Ada.")
    await run_agent(agent, [*first.to_input_list(), {"role": "user", "content": "My name?"}])

    assert ollama_server.requests[1].messages == [
        {"role": "user", "content": "I am Ada."},
        {"role": "assistant", "content": "Nice to meet you, Ada."},
        {"role": "user", "content": "My name?"},
    ]


class _Spans(TracingProcessor):
    def __init__(self) -> None:
        self.ended: list[Span[Any]] = []

    def on_trace_start(self, trace: Trace) -> None:
        return None

    def on_trace_end(self, trace: Trace) -> None:
        return None

    def on_span_start(self, span: Span[Any]) -> None:
        return None

    def on_span_end(self, span: Span[Any]) -> None:
        self.ended.append(span)

    def shutdown(self) -> None:
        return None

    def force_flush(self) -> None:
        return None


@STREAM
async def test_traced_runs_record_the_generation(
    stream: bool, provider: OllamaModelProvider, ollama_server: FakeOllama
) -> None:
    spans = _Spans()
    set_trace_processors([spans])
    encoded = base64.b64encode(b"pixels").decode()
    ollama_server.reply(Reply("A dot.", prompt_eval_count=7, eval_count=2))
    question = [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "What is this?"},
                {"type": "input_image", "image_url": f"data:image/png;base64,{encoded}"},
            ],
        }
    ]
    try:
        await run_agent(
            Agent(name="Traced", model=provider.get_model("llava")),
            question,
            stream=stream,
            run_config=RunConfig(tracing_disabled=False, trace_include_sensitive_data=True),
        )
    finally:
        set_trace_processors([default_processor()])

    [generation] = [s for s in spans.ended if isinstance(s.span_data, GenerationSpanData)]
    exported = json.loads(json.dumps(generation.export()))["span_data"]
    assert exported["model"] == "llava"
    assert exported["model_config"]["base_url"] == ollama_server.url
    assert exported["usage"]["input_tokens"] == 7 and exported["usage"]["output_tokens"] == 2
    assert exported["input"] == [
        {"role": "user", "content": "What is this?", "images": "<1 image(s)>"}
    ]


def test_an_event_loop_per_call_without_aclose_leaves_no_connection_open(
    ollama_server: FakeOllama,
) -> None:
    # asyncio.run() per request (a sync web handler, a Celery task), never calling
    # provider.aclose(): each loop's client must close as its loop shuts down.
    provider = OllamaModelProvider(base_url=ollama_server.url)
    agent = Agent(name="Desk", model=provider.get_model("llama3"))
    ollama_server.reply(*["Hi." for _ in range(30)])

    def open_sockets() -> int:
        return sum(
            os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
            for fd in os.listdir("/proc/self/fd")
            if os.path.exists(f"/proc/self/fd/{fd}")
        )

    before = open_sockets()
    for _ in range(30):
        assert asyncio.run(run_agent(agent, "Hello")).final_output == "Hi."
    gc.collect()

    assert open_sockets() - before <= 2  # at most one keep-alive connection, both ends
