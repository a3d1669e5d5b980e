"""Which server a model name goes to: the installed plugin, local vs Cloud, keys and hosts."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from importlib.metadata import entry_points

import ollama
import pytest
from agents import Agent

from fake_ollama import FakeOllama
from timestep import ConfigurationError, TimestepError, default_model_provider, run_agent
from timestep_ollama import (
    OllamaCloudKeyMissingError,
    OllamaModel,
    OllamaModelProvider,
    cloud_model_name,
)


@pytest.fixture
async def shared_provider() -> AsyncIterator[None]:
    """Closes what ``run_agent``'s process-wide provider opened during the test."""
    yield
    await default_model_provider().aclose()


async def test_an_installed_plugin_serves_ollama_model_names(
    ollama_server: FakeOllama, monkeypatch: pytest.MonkeyPatch, shared_provider: None
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.url)
    ollama_server.reply("Routed by the plugin.")

    result = await run_agent(Agent(name="Plain", model="ollama/llama3"), "hi")

    assert result.final_output == "Routed by the plugin."
    assert ollama_server.requests[0].model == "llama3"
    [entry_point] = [ep for ep in entry_points(group="timestep") if ep.name == "ollama"]
    assert entry_point.value == "timestep_ollama.plugin"
    assert entry_point.dist is not None and entry_point.dist.name == "timestep-ollama"


async def test_model_names_keep_their_slashes(
    ollama_server: FakeOllama, monkeypatch: pytest.MonkeyPatch, shared_provider: None
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", ollama_server.url)
    ollama_server.reply("From Hugging Face.")

    agent = Agent(name="Hub", model="ollama/hf.co/org/model:Q4")
    result = await run_agent(agent, "hi", stream=True)

    assert result.final_output == "From Hugging Face."
    assert ollama_server.requests[0].model == "hf.co/org/model:Q4"


async def test_cloud_models_go_to_ollama_cloud_by_their_plain_name_with_the_key(
    ollama_server: FakeOllama, cloud_server: FakeOllama
) -> None:
    provider = OllamaModelProvider(
        api_key="sk-test", base_url=ollama_server.url, cloud_base_url=cloud_server.url
    )
    ollama_server.reply("local answer")
    cloud_server.reply("cloud answer", "cloud answer again")
    try:
        local = await run_agent(Agent(name="L", model=provider.get_model("llama3")), "hi")
        cloud = await run_agent(
            Agent(name="C", model=provider.get_model("gpt-oss:120b-cloud")), "hi"
        )
        tagged = await run_agent(
            Agent(name="T", model=provider.get_model("glm-4.6:cloud")), "hi", stream=True
        )
    finally:
        await provider.aclose()

    assert (local.final_output, cloud.final_output) == ("local answer", "cloud answer")
    assert tagged.final_output == "cloud answer again"
    assert [r.model for r in cloud_server.requests] == ["gpt-oss:120b", "glm-4.6"]
    assert {r.headers["authorization"] for r in cloud_server.requests} == {"Bearer sk-test"}
    [to_local] = ollama_server.requests
    assert to_local.model == "llama3" and "authorization" not in to_local.headers


async def test_cloud_settings_come_from_the_environment(
    cloud_server: FakeOllama, monkeypatch: pytest.MonkeyPatch, shared_provider: None
) -> None:
    monkeypatch.setenv("OLLAMA_API_KEY", "sk-from-env")
    monkeypatch.setenv("OLLAMA_CLOUD_HOST", cloud_server.url)
    cloud_server.reply("from the cloud")

    result = await run_agent(Agent(name="C", model="ollama/qwen3-coder:480b-cloud"), "hi")

    assert result.final_output == "from the cloud"
    [sent] = cloud_server.requests
    assert sent.model == "qwen3-coder:480b"
    assert sent.headers["authorization"] == "Bearer sk-from-env"


async def test_the_cloud_key_never_reaches_the_local_server(
    ollama_server: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The ollama library would add OLLAMA_API_KEY to every request it sends.
    monkeypatch.setenv("OLLAMA_API_KEY", "sk-secret")
    provider = OllamaModelProvider(base_url=ollama_server.url)
    ollama_server.reply("hi", "hi again")
    try:
        await run_agent(Agent(name="L", model=provider.get_model("llama3")), "hi")
        await run_agent(Agent(name="L", model=provider.get_model("llama3")), "hi", stream=True)
    finally:
        await provider.aclose()

    assert all("authorization" not in r.headers for r in ollama_server.requests)


async def test_pointing_the_local_server_at_ollama_cloud_sends_the_key_there(
    cloud_server: FakeOllama, monkeypatch: pytest.MonkeyPatch, shared_provider: None
) -> None:
    # The ollama library's own way to reach Cloud: OLLAMA_HOST=https://ollama.com plus a key.
    monkeypatch.setenv("OLLAMA_HOST", cloud_server.url)
    monkeypatch.setenv("OLLAMA_CLOUD_HOST", cloud_server.url)
    monkeypatch.setenv("OLLAMA_API_KEY", "sk-direct")
    cloud_server.reply("plain name, cloud host")

    await run_agent(Agent(name="C", model="ollama/gpt-oss:120b"), "hi")

    [sent] = cloud_server.requests
    assert sent.model == "gpt-oss:120b"
    assert sent.headers["authorization"] == "Bearer sk-direct"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
async def test_a_cloud_model_without_a_key_fails_before_any_request(
    stream: bool, cloud_server: FakeOllama, monkeypatch: pytest.MonkeyPatch, shared_provider: None
) -> None:
    monkeypatch.setenv("OLLAMA_CLOUD_HOST", cloud_server.url)
    agent = Agent(name="C", model="ollama/gpt-oss:120b-cloud")

    with pytest.raises(OllamaCloudKeyMissingError) as raised:
        await run_agent(agent, "hi", stream=stream)

    assert isinstance(raised.value, ConfigurationError)
    assert isinstance(raised.value, TimestepError)
    assert "gpt-oss:120b-cloud" in str(raised.value)
    assert "OLLAMA_API_KEY" in str(raised.value)
    assert raised.value.model == "gpt-oss:120b-cloud"
    assert cloud_server.requests == []


@pytest.mark.parametrize(
    ("name", "sent_to_cloud_as"),
    [
        ("gpt-oss:120b-cloud", "gpt-oss:120b"),
        ("deepseek-v3.1:671b-cloud", "deepseek-v3.1:671b"),
        ("glm-4.6:cloud", "glm-4.6"),
        ("someone/their-model:cloud", "someone/their-model"),
        ("minimax-cloud", "minimax"),
        ("llama3", None),
        ("llama3:8b", None),
        ("hf.co/org/model:Q4", None),
        ("cloudy:7b", None),
    ],
)
def test_which_names_are_cloud_models(name: str, sent_to_cloud_as: str | None) -> None:
    assert cloud_model_name(name) == sent_to_cloud_as


def test_hosts_default_to_the_local_server_and_ollama_com(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OLLAMA_HOST", "OLLAMA_CLOUD_HOST"):
        monkeypatch.delenv(name)
    provider = OllamaModelProvider(api_key="sk-test")

    local = provider.get_model("llama3")
    cloud = provider.get_model("gpt-oss:20b-cloud")

    assert isinstance(local, OllamaModel) and isinstance(cloud, OllamaModel)
    assert (local.model, local.base_url) == ("llama3", "http://localhost:11434")
    assert (cloud.model, cloud.base_url) == ("gpt-oss:20b", "https://ollama.com")


def test_hosts_follow_the_environment_when_a_model_is_looked_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    provider = OllamaModelProvider(api_key="sk-test")
    monkeypatch.setenv("OLLAMA_HOST", "http://gpu-box.internal:11434")
    monkeypatch.setenv("OLLAMA_CLOUD_HOST", "https://cloud.example")

    local = provider.get_model("llama3")
    cloud = provider.get_model("gpt-oss:20b-cloud")

    assert isinstance(local, OllamaModel) and isinstance(cloud, OllamaModel)
    assert local.base_url == "http://gpu-box.internal:11434"
    assert cloud.base_url == "https://cloud.example"


async def test_a_given_client_serves_the_local_models_and_stays_open(
    ollama_server: FakeOllama,
) -> None:
    client = ollama.AsyncClient(host=ollama_server.url, headers={"X-Team": "agents"})
    provider = OllamaModelProvider(ollama_client=client)
    ollama_server.reply("via your client", "still open")
    try:
        await run_agent(Agent(name="L", model=provider.get_model("llama3")), "hi")
        await provider.aclose()
        after = await client.chat(model="llama3", messages=[{"role": "user", "content": "hi"}])
    finally:
        await client.close()  # type: ignore[no-untyped-call]

    assert after.message.content == "still open"
    assert ollama_server.requests[0].headers["x-team"] == "agents"


async def test_a_provider_still_works_after_aclose(
    provider: OllamaModelProvider, ollama_server: FakeOllama
) -> None:
    ollama_server.reply("one", "two")
    agent = Agent(name="L", model=provider.get_model("llama3"))

    await run_agent(agent, "hi")
    await provider.aclose()
    again = await run_agent(agent, "hi")

    assert again.final_output == "two"


def test_conflicting_provider_arguments_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="both base_url and ollama_client"):
        OllamaModelProvider(base_url="http://127.0.0.1:1", ollama_client=ollama.AsyncClient())
    with pytest.raises(ConfigurationError, match=r"needs an ollama\.AsyncClient"):
        OllamaModelProvider(ollama_client="http://127.0.0.1:1")  # type: ignore[arg-type]


def test_a_model_needs_a_name() -> None:
    with pytest.raises(ConfigurationError, match=re.escape("ollama/llama3.2")):
        OllamaModelProvider().get_model("")
