"""One run, two providers: OpenAI and Ollama agents hand off to each other by model prefix.

The OpenAI side is a fake OpenAI server on loopback reached through the real ``openai`` client
(``MultiModelProvider(openai_base_url=...)``), over the Responses API (the SDK's default) and
over Chat Completions (``openai_use_responses=False``); the Ollama side is the fake Ollama
server reached through the installed plugin and the real ``ollama`` client.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import pytest
from agents import Agent, RunConfig
from agents.models.fake_id import FAKE_RESPONSES_ID

from fake_ollama import FakeOllama
from fake_ollama import Reply as OllamaReply
from fake_ollama import tool_call as ollama_call
from fake_openai import CHAT_COMPLETIONS_PATH, RESPONSES_PATH, FakeOpenAI
from fake_openai import Reply as OpenAIReply
from fake_openai import function_call as openai_call
from timestep import MultiModelProvider, run_agent

STREAM = pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
API = pytest.mark.parametrize("api", ["responses", "chat_completions"])
PATHS = {"responses": RESPONSES_PATH, "chat_completions": CHAT_COMPLETIONS_PATH}


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAI]:
    """A fake OpenAI server."""
    server = FakeOpenAI()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["responses"])
def api(request: pytest.FixtureRequest) -> str:
    """Which OpenAI API the run uses; tests marked with ``API`` try both."""
    return str(request.param)


@pytest.fixture
async def run_config(
    api: str,
    openai_server: FakeOpenAI,
    ollama_server: FakeOllama,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[RunConfig]:
    """Routes plain and ``openai/`` names to the fake OpenAI, ``ollama/`` to the fake Ollama."""
    # The plugin's provider reads OLLAMA_HOST when the model is looked up, as in production.
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.url)
    provider = MultiModelProvider(
        openai_api_key="test-key",
        openai_base_url=openai_server.base_url,
        openai_use_responses=api == "responses",
    )
    # No trace export: it would try to reach api.openai.com.
    yield RunConfig(model_provider=provider, tracing_disabled=True)
    await provider.aclose()


@API
@STREAM
async def test_an_openai_agent_hands_off_to_an_ollama_agent(
    stream: bool,
    api: str,
    run_config: RunConfig,
    openai_server: FakeOpenAI,
    ollama_server: FakeOllama,
) -> None:
    billing = Agent(name="Billing", instructions="You handle invoices.", model="ollama/llama3")
    triage = Agent(
        name="Triage", instructions="Route the customer.", model="gpt-4.1", handoffs=[billing]
    )
    openai_server.reply(OpenAIReply(tool_calls=[openai_call("transfer_to_billing")]))
    ollama_server.reply("Your invoice is on its way.")

    result = await run_agent(triage, "Where is my invoice?", stream=stream, run_config=run_config)

    assert result.final_output == "Your invoice is on its way."
    assert result.last_agent is billing
    [to_openai] = openai_server.requests
    assert to_openai.path == PATHS[api]
    assert to_openai.headers["authorization"] == "Bearer test-key"
    assert to_openai.model == "gpt-4.1"
    assert to_openai.stream is stream
    assert to_openai.tool_names == ["transfer_to_billing"]
    [to_ollama] = ollama_server.requests
    assert to_ollama.model == "llama3"
    assert to_ollama.body["stream"] is stream
    assert "authorization" not in to_ollama.headers  # the OpenAI key stays with OpenAI
    # Billing sees the whole conversation so far, the OpenAI agent's handoff included.
    assert to_ollama.messages == [
        {"role": "system", "content": "You handle invoices."},
        {"role": "user", "content": "Where is my invoice?"},
        {
            "role": "assistant",
            "tool_calls": [{"function": {"name": "transfer_to_billing", "arguments": {}}}],
        },
        {
            "role": "tool",
            "content": json.dumps({"assistant": "Billing"}),
            "tool_name": "transfer_to_billing",
        },
    ]


@STREAM
async def test_an_ollama_agent_hands_off_to_an_openai_agent(
    stream: bool, run_config: RunConfig, openai_server: FakeOpenAI, ollama_server: FakeOllama
) -> None:
    expert = Agent(name="Expert", instructions="Answer in depth.", model="openai/gpt-4.1")
    local = Agent(
        name="Local",
        instructions="Escalate hard questions.",
        model="ollama/llama3",
        handoffs=[expert],
    )
    ollama_server.reply(OllamaReply(tool_calls=[ollama_call("transfer_to_expert")]))
    openai_server.reply("Entropy always increases, on average.")

    result = await run_agent(
        local, "Why does time have a direction?", stream=stream, run_config=run_config
    )

    assert result.final_output == "Entropy always increases, on average."
    assert result.last_agent is expert
    [to_ollama] = ollama_server.requests
    assert to_ollama.model == "llama3" and to_ollama.tool_names == ["transfer_to_expert"]
    [to_openai] = openai_server.requests
    assert to_openai.path == RESPONSES_PATH
    assert to_openai.headers["authorization"] == "Bearer test-key"
    assert to_openai.model == "gpt-4.1"  # the openai/ prefix is routing, not part of the name
    assert to_openai.body["instructions"] == "Answer in depth."
    user, call, output = to_openai.body["input"]
    assert user == {"role": "user", "content": "Why does time have a direction?"}
    assert call["type"] == "function_call" and call["name"] == "transfer_to_expert"
    assert output["type"] == "function_call_output" and output["call_id"] == call["call_id"]
    # Ollama's items carry the SDK's placeholder id, which OpenAI would refuse as an item id.
    assert FAKE_RESPONSES_ID not in json.dumps(to_openai.body)
