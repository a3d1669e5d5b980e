"""Failures name the model, the server and the fix."""

from __future__ import annotations

import socket

import ollama
import pytest
from agents import Agent, ModelBehaviorError

from fake_ollama import FakeOllama, Reply
from timestep import TimestepError, run_agent
from timestep_ollama import (
    OllamaConnectionError,
    OllamaModel,
    OllamaModelProvider,
    OllamaResponseError,
    OllamaUnsupportedError,
)

STREAM = pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])


@STREAM
async def test_an_unknown_model_says_how_to_get_it(
    stream: bool, provider: OllamaModelProvider, ollama_server: FakeOllama
) -> None:
    ollama_server.reply(Reply(status=404, error='model "mistery" not found, try pulling it first'))
    agent = Agent(name="Lost", model=provider.get_model("mistery"))

    with pytest.raises(OllamaResponseError) as raised:
        await run_agent(agent, "hi", stream=stream)

    error = raised.value
    assert isinstance(error, TimestepError) and isinstance(error, ollama.ResponseError)
    assert error.status_code == 404
    assert (error.model, error.base_url) == ("mistery", ollama_server.url)
    assert "not found" in str(error) and "`ollama pull mistery`" in str(error)
    assert ollama_server.url in str(error)


async def test_a_rejected_cloud_key_points_at_the_key(
    cloud_server: FakeOllama,
) -> None:
    provider = OllamaModelProvider(api_key="sk-revoked", cloud_base_url=cloud_server.url)
    cloud_server.reply(Reply(status=401, error="unauthorized"))
    try:
        with pytest.raises(OllamaResponseError, match="OLLAMA_API_KEY") as raised:
            await run_agent(Agent(name="C", model=provider.get_model("gpt-oss:20b-cloud")), "hi")
    finally:
        await provider.aclose()
    assert raised.value.status_code == 401


async def test_a_failure_in_the_middle_of_a_stream_is_reported(
    provider: OllamaModelProvider, ollama_server: FakeOllama
) -> None:
    ollama_server.reply(Reply("Partial answ", stream_error="model runner has unexpectedly stopped"))

    with pytest.raises(OllamaResponseError) as raised:
        await run_agent(Agent(name="L", model=provider.get_model("llama3")), "hi", stream=True)

    assert str(raised.value) == (
        f"Ollama at {ollama_server.url} failed while generating with model 'llama3': "
        "model runner has unexpectedly stopped. See the server's log; retrying may help."
    )


@STREAM
async def test_no_server_is_a_connection_error_naming_the_address(stream: bool) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address = f"http://127.0.0.1:{probe.getsockname()[1]}"
    # The port is free again: nothing listens there.
    provider = OllamaModelProvider(base_url=address)
    try:
        with pytest.raises(OllamaConnectionError) as raised:
            await run_agent(
                Agent(name="L", model=provider.get_model("llama3")), "hi", stream=stream
            )
    finally:
        await provider.aclose()

    assert isinstance(raised.value, ConnectionError) and isinstance(raised.value, TimestepError)
    assert address in str(raised.value) and "ollama serve" in str(raised.value)
    assert raised.value.base_url == address


@STREAM
async def test_a_reply_cut_off_by_the_token_limit_before_any_output_is_an_error(
    stream: bool, provider: OllamaModelProvider, ollama_server: FakeOllama
) -> None:
    ollama_server.reply(Reply("", done_reason="length"))

    with pytest.raises(ModelBehaviorError, match="max_tokens"):
        await run_agent(Agent(name="L", model=provider.get_model("llama3")), "hi", stream=stream)


async def test_an_input_item_ollama_cannot_take_is_refused(
    provider: OllamaModelProvider, ollama_server: FakeOllama
) -> None:
    web_search = {"type": "web_search_call", "id": "ws_1", "status": "completed"}

    with pytest.raises(OllamaUnsupportedError, match="'web_search_call'"):
        await run_agent(
            Agent(name="L", model=provider.get_model("llama3")),
            [{"role": "user", "content": "hi"}, web_search],
        )
    assert ollama_server.requests == []


def test_a_model_needs_a_name() -> None:
    with pytest.raises(OllamaUnsupportedError, match="OllamaModel"):
        OllamaModel("")


async def test_a_model_built_directly_opens_and_closes_its_own_client(
    ollama_server: FakeOllama,
) -> None:
    model = OllamaModel("llama3", base_url=ollama_server.url, api_key="sk-direct")
    ollama_server.reply("direct")
    try:
        result = await run_agent(Agent(name="D", model=model), "hi")
    finally:
        await model.close()

    assert result.final_output == "direct"
    assert ollama_server.requests[0].headers["authorization"] == "Bearer sk-direct"
