"""Stored agents: saved in one process, loaded in another with tools, guardrails and handoffs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, ModelSettings, handoff
from agents.testing import ScriptedModel

import assistant
from subprocesses import run_python
from timestep import (
    AgentDefinitionError,
    UnknownAgentError,
    UnknownGuardrailError,
    UnknownOutputTypeError,
    UnknownToolError,
    delete_agent,
    list_agents,
    load_agent,
    registry,
    run_agent,
    save_agent,
)
from timestep.testing import ScriptedModelProvider

ASSISTANT = str(Path(assistant.__file__))


@pytest.fixture(autouse=True)
def _clean_registry() -> None:
    for part in (assistant.get_weather, assistant.no_secrets, assistant.polite):
        registry.remove(part)
    registry.remove(assistant.WeatherReport)


async def test_saved_here_loaded_and_run_in_another_process(
    db_url: str, timestep_home: Path
) -> None:
    await save_agent(assistant.build(), url=db_url)

    done = run_python(ASSISTANT, db_url, home=timestep_home)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {
        "final_output": "It is sunny in Berkeley.",
        "last_agent": "Weather",
        "tool_calls": ["Berkeley"],
        "guardrails": ["no_secrets", "polite"],
    }


async def test_everything_round_trips(
    sqlite_url: str, scripted_provider: ScriptedModelProvider
) -> None:
    original = assistant.build()
    original.handoffs[0].output_type = assistant.WeatherReport  # type: ignore[union-attr]
    await save_agent(original, url=sqlite_url)

    loaded = await load_agent("Assistant", url=sqlite_url)
    weather = loaded.handoffs[0]
    assert isinstance(weather, Agent)
    assert weather.handoffs == [loaded]  # the cycle came back
    assert loaded.instructions == original.instructions and loaded.model == "scripted/assistant"
    assert loaded.input_guardrails == [assistant.no_secrets]
    assert weather.tools == [assistant.get_weather]
    assert weather.output_guardrails == [assistant.polite]
    assert weather.output_type is assistant.WeatherReport
    assert weather.model_settings == ModelSettings(temperature=0.2, max_tokens=200)
    assert weather.handoff_description == "Knows the weather."


async def test_the_loaded_agent_runs_with_its_guardrails(
    sqlite_url: str, scripted_provider: ScriptedModelProvider
) -> None:
    from agents import InputGuardrailTripwireTriggered

    await save_agent(assistant.build(), url=sqlite_url)
    loaded = await load_agent("Assistant", url=sqlite_url)
    scripted_provider.script("assistant", [[]])
    with pytest.raises(InputGuardrailTripwireTriggered):
        await run_agent(loaded, "my password is hunter2")


async def test_saving_again_versions_only_real_changes(sqlite_url: str) -> None:
    agent = Agent(name="Solo", instructions="v1", model="gpt-4.1")
    first = await save_agent(agent, url=sqlite_url)
    same = await save_agent(agent, url=sqlite_url)
    agent.instructions = "v2"
    second = await save_agent(agent, url=sqlite_url)
    assert (first.version, same.version, second.version) == (1, 1, 2)
    assert first.id == second.id

    assert (await load_agent("Solo", url=sqlite_url)).instructions == "v2"
    assert (await load_agent("Solo", url=sqlite_url, version=1)).instructions == "v1"
    assert (await load_agent(first.id, url=sqlite_url)).name == "Solo"
    assert [(a.name, a.version) for a in await list_agents(url=sqlite_url)] == [("Solo", 2)]
    assert await delete_agent("Solo", url=sqlite_url) is True
    assert await list_agents(url=sqlite_url) == []


async def test_named_handoffs_keep_their_overrides(sqlite_url: str) -> None:
    target = Agent(name="Billing", model="gpt-4.1")
    agent = Agent(
        name="Front",
        model="gpt-4.1",
        handoffs=[handoff(target, tool_name_override="to_billing", tool_description_override="$")],
    )
    await save_agent(agent, url=sqlite_url)
    loaded = await load_agent("Front", url=sqlite_url)
    (restored,) = loaded.handoffs
    assert not isinstance(restored, Agent)
    assert (restored.tool_name, restored.tool_description, restored.agent_name) == (
        "to_billing",
        "$",
        "Billing",
    )


async def test_unregistered_names_say_what_would_register_them(sqlite_url: str) -> None:
    await save_agent(assistant.build(), url=sqlite_url)
    registry.remove(assistant.get_weather)
    with pytest.raises(UnknownToolError) as raised:
        await load_agent("Assistant", url=sqlite_url)
    assert raised.value.name == "get_weather" and raised.value.agent == "Weather"
    assert "registry.add" in str(raised.value) and "register_tools" in str(raised.value)

    registry.add(assistant.get_weather)
    registry.remove(assistant.no_secrets)
    with pytest.raises(UnknownGuardrailError, match="no_secrets"):
        await load_agent("Assistant", url=sqlite_url)


async def test_output_type_names_the_class_that_defined_it(sqlite_url: str) -> None:
    agent = Agent(name="Typed", model="gpt-4.1", output_type=assistant.WeatherReport)
    await save_agent(agent, url=sqlite_url)
    registry.remove(assistant.WeatherReport)
    with pytest.raises(UnknownOutputTypeError, match=r"assistant\.WeatherReport"):
        await load_agent("Typed", url=sqlite_url)


def _not_storable(*args: object) -> Any:
    return None


def _same(data: Any) -> Any:
    return data


@pytest.mark.parametrize(
    ("field", "agent"),
    [
        ("instructions", Agent(name="A", instructions=lambda ctx, agent: "dynamic")),
        ("model", Agent(name="A", model=ScriptedModel())),
        ("tool_use_behavior", Agent(name="A", tool_use_behavior=lambda ctx, results: None)),  # type: ignore[arg-type,return-value]
        (
            "input_type",
            Agent(name="A", handoffs=[handoff(Agent(name="B"), input_filter=lambda data: data)]),
        ),
    ],
)
async def test_unstorable_definitions_are_refused_by_field(
    sqlite_url: str, field: str, agent: Agent[None]
) -> None:
    with pytest.raises(AgentDefinitionError, match=field):
        await save_agent(agent, url=sqlite_url)
    assert await list_agents(url=sqlite_url) == []


async def test_two_agents_with_one_name_are_refused(sqlite_url: str) -> None:
    agent = Agent(name="Same", handoffs=[Agent(name="Same")])
    with pytest.raises(AgentDefinitionError, match="unique name"):
        await save_agent(agent, url=sqlite_url)


async def test_unknown_and_damaged_agents(sqlite_url: str) -> None:
    with pytest.raises(UnknownAgentError, match="save_agent"):
        await load_agent("Nobody", url=sqlite_url)
    await save_agent(Agent(name="Solo", model="gpt-4.1"), url=sqlite_url)
    with pytest.raises(UnknownAgentError, match="no version 7"):
        await load_agent("Solo", url=sqlite_url, version=7)

    from timestep.storage import get_backend
    from timestep.storage.schema import agents

    async with get_backend(sqlite_url).transaction() as conn:  # type: ignore[attr-defined]
        await conn.execute(agents.update().values(definition='{"format": "timestep.agent/1"}'))
    with pytest.raises(AgentDefinitionError, match="damaged"):
        await load_agent("Solo", url=sqlite_url)
    async with get_backend(sqlite_url).transaction() as conn:  # type: ignore[attr-defined]
        await conn.execute(agents.update().values(definition="not json"))
    with pytest.raises(AgentDefinitionError, match="save_agent"):
        await load_agent("Solo", url=sqlite_url)


async def test_mcp_servers_are_stored_by_name(sqlite_url: str) -> None:
    from agents.mcp import MCPServerStdio

    from timestep import UnknownMCPServerError

    files = MCPServerStdio(name="files", params={"command": "true"})
    agent = Agent(name="Clerk", model="gpt-4.1", mcp_servers=[files], mcp_config={})
    await save_agent(agent, url=sqlite_url)
    assert (await load_agent("Clerk", url=sqlite_url)).mcp_servers == [files]

    registry.remove(files)
    with pytest.raises(UnknownMCPServerError, match="'files'"):
        await load_agent("Clerk", url=sqlite_url)


async def test_plugin_tools_need_no_registration_and_are_named_when_missing(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from timestep import plugins
    from timestep_example import shout

    await save_agent(Agent(name="Loud", model="gpt-4.1", tools=[shout]), url=sqlite_url)
    assert (await load_agent("Loud", url=sqlite_url)).tools == [shout]

    monkeypatch.setenv("TIMESTEP_LOAD_PLUGINS", "")
    plugins._reset_for_tests()
    with pytest.raises(UnknownToolError, match="saved from plugin 'example'"):
        await load_agent("Loud", url=sqlite_url)
