"""What reaches Ollama for model settings, tool choices and tool schemas, and what is refused."""

from __future__ import annotations

from typing import Any

import pytest
from agents import Agent, ModelSettings, WebSearchTool, function_tool
from openai.types.shared import Reasoning
from pydantic import BaseModel

from fake_ollama import FakeOllama, Reply, tool_call
from timestep import TimestepError, run_agent
from timestep_ollama import OllamaModelProvider, OllamaUnsupportedError


@function_tool
def get_weather(city: str) -> str:
    """Today's weather in a city."""
    return f"Sunny in {city}"


@function_tool
def get_time(city: str) -> str:
    """The local time in a city."""
    return f"Noon in {city}"


def agent_with(provider: OllamaModelProvider, **settings: Any) -> Agent[Any]:
    return Agent(
        name="Tuned",
        model=provider.get_model("llama3"),
        tools=[get_weather, get_time],
        model_settings=ModelSettings(**settings),
    )


async def test_model_settings_become_ollama_options(
    provider: OllamaModelProvider, ollama_server: FakeOllama
) -> None:
    ollama_server.reply("ok")
    agent = agent_with(
        provider,
        temperature=0.2,
        top_p=0.9,
        max_tokens=128,
        frequency_penalty=0.5,
        presence_penalty=0.25,
        reasoning=Reasoning(effort="high"),
        extra_args={"seed": 7, "stop": ["END"], "num_ctx": 8192, "keep_alive": "5m"},
    )

    await run_agent(agent, "hi")

    [sent] = ollama_server.requests
    assert sent.options == {
        "temperature": 0.2,
        "top_p": 0.9,
        "num_predict": 128,
        "frequency_penalty": 0.5,
        "presence_penalty": 0.25,
        "seed": 7,
        "stop": ["END"],
        "num_ctx": 8192,
    }
    assert sent.body["think"] == "high"
    assert sent.body["keep_alive"] == "5m"


@pytest.mark.parametrize(
    ("effort", "think"), [("none", False), ("minimal", "low"), ("medium", "medium")]
)
async def test_reasoning_effort_becomes_think(
    effort: Any, think: bool | str, provider: OllamaModelProvider, ollama_server: FakeOllama
) -> None:
    ollama_server.reply("ok")

    await run_agent(agent_with(provider, reasoning=Reasoning(effort=effort)), "hi")

    assert ollama_server.requests[0].body["think"] == think


async def test_extra_args_can_pass_options_and_think_directly(
    provider: OllamaModelProvider, ollama_server: FakeOllama
) -> None:
    ollama_server.reply("ok")

    await run_agent(
        agent_with(provider, extra_args={"options": {"top_k": 20}, "think": False}), "hi"
    )

    assert ollama_server.requests[0].options == {"top_k": 20}
    assert ollama_server.requests[0].body["think"] is False


async def test_tool_choice_none_sends_no_tools(
    provider: OllamaModelProvider, ollama_server: FakeOllama
) -> None:
    ollama_server.reply("no tools needed")

    await run_agent(agent_with(provider, tool_choice="none"), "hi")

    assert ollama_server.requests[0].tools == []


async def test_tool_choice_naming_a_tool_offers_only_that_tool(
    provider: OllamaModelProvider, ollama_server: FakeOllama
) -> None:
    ollama_server.reply(Reply(tool_calls=[tool_call("get_time", city="Oslo")]), "Noon.")

    result = await run_agent(agent_with(provider, tool_choice="get_time"), "Time in Oslo?")

    assert result.final_output == "Noon."
    assert ollama_server.requests[0].tool_names == ["get_time"]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
async def test_tool_choice_required_is_refused_before_any_request(
    stream: bool, provider: OllamaModelProvider, ollama_server: FakeOllama
) -> None:
    with pytest.raises(OllamaUnsupportedError, match="no way to force a tool call") as raised:
        await run_agent(agent_with(provider, tool_choice="required"), "hi", stream=stream)

    assert isinstance(raised.value, TimestepError)
    assert ollama_server.requests == []


async def test_tool_choice_naming_an_unknown_tool_lists_the_real_ones(
    provider: OllamaModelProvider, ollama_server: FakeOllama
) -> None:
    with pytest.raises(OllamaUnsupportedError, match="its tools: get_time, get_weather"):
        await run_agent(agent_with(provider, tool_choice="get_news"), "hi")
    assert ollama_server.requests == []


async def test_an_unknown_extra_args_key_is_refused_with_the_valid_ones(
    provider: OllamaModelProvider, ollama_server: FakeOllama
) -> None:
    with pytest.raises(OllamaUnsupportedError, match=r"'num_gpus'.*num_gpu") as raised:
        await run_agent(agent_with(provider, extra_args={"num_gpus": 2}), "hi")

    assert "extra_args" in str(raised.value)
    assert ollama_server.requests == []


async def test_hosted_tools_are_refused(
    provider: OllamaModelProvider, ollama_server: FakeOllama
) -> None:
    agent = Agent(name="Searcher", model=provider.get_model("llama3"), tools=[WebSearchTool()])

    with pytest.raises(OllamaUnsupportedError, match=r"WebSearchTool.*@function_tool"):
        await run_agent(agent, "news?")
    assert ollama_server.requests == []


class Place(BaseModel):
    city: str
    country: str


async def test_tool_schemas_keep_optional_and_nested_arguments(
    provider: OllamaModelProvider, ollama_server: FakeOllama
) -> None:
    @function_tool
    def forecast(place: Place, days: int | None = None, unit: str = "celsius") -> str:
        """Forecast for a place.

        Args:
            place: Where.
            days: How many days ahead.
            unit: celsius or fahrenheit.
        """
        return f"Sunny in {place.city} for {days} days"

    ollama_server.reply(
        Reply(tool_calls=[tool_call("forecast", place={"city": "Oslo", "country": "NO"})]),
        "Sunny.",
    )
    agent = Agent(name="Forecaster", model=provider.get_model("llama3"), tools=[forecast])

    result = await run_agent(agent, "Oslo?")

    assert result.final_output == "Sunny."
    parameters = ollama_server.requests[0].tools[0]["function"]["parameters"]
    properties = parameters["properties"]
    assert properties["days"] == {
        "type": ["integer", "null"],
        "description": "How many days ahead.",
    }
    assert properties["unit"]["type"] == "string"
    assert properties["place"]["type"] == "object"
    assert properties["place"]["description"].startswith("Where. A JSON object with the fields")
    assert properties["place"]["description"].endswith(
        'fields {"city": {"type": "string"}, "country": {"type": "string"}}.'
    )
    assert parameters["required"] == ["place", "days", "unit"]


async def test_images_must_be_inline(
    provider: OllamaModelProvider, ollama_server: FakeOllama
) -> None:
    agent = Agent(name="Eyes", model=provider.get_model("llava"))
    question = [
        {
            "role": "user",
            "content": [{"type": "input_image", "image_url": "https://example.com/cat.png"}],
        }
    ]

    with pytest.raises(OllamaUnsupportedError, match=r"remote URL.*data: URL"):
        await run_agent(agent, question)
    assert ollama_server.requests == []


async def test_server_side_conversation_state_is_refused(
    provider: OllamaModelProvider, ollama_server: FakeOllama
) -> None:
    agent = Agent(name="Chat", model=provider.get_model("llama3"))

    with pytest.raises(OllamaUnsupportedError, match="previous_response_id"):
        await run_agent(agent, "hi", previous_response_id="resp_123")
    assert ollama_server.requests == []


async def test_raw_usage_keeps_ollamas_own_counters(
    provider: OllamaModelProvider, ollama_server: FakeOllama
) -> None:
    ollama_server.reply(Reply("ok", prompt_eval_count=11, eval_count=4), Reply("ok"))
    agent = agent_with(provider, preserve_raw_usage=True)

    plain = await run_agent(agent, "hi")
    streamed = await run_agent(agent, "hi", stream=True)

    for result in (plain, streamed):
        raw = result.raw_responses[0].raw_usage
        assert raw is not None and raw["total_duration"] == 5_000_000
    assert plain.raw_responses[0].raw_usage == {
        "prompt_eval_count": 11,
        "eval_count": 4,
        "total_duration": 5_000_000,
        "load_duration": 1_000_000,
        "prompt_eval_duration": 2_000_000,
        "eval_duration": 2_000_000,
    }
