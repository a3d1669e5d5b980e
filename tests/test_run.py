"""run_agent: streamed and non-streamed runs behave alike; routing; interruption handling."""

from __future__ import annotations

from typing import Any

import pytest
from agents import Agent, RunConfig, RunResultStreaming
from agents.testing import ModelStep

from scenario import ask_to_delete, ops_agent, say
from timestep import (
    InterruptionException,
    RunStateStore,
    UnknownModelPrefixError,
    consume_result,
    default_model_provider,
    run_agent,
)
from timestep.testing import ScriptedModelProvider


@pytest.mark.parametrize("stream", [False, True], ids=["run", "streamed"])
async def test_streamed_and_plain_runs_pause_and_finish_alike(stream: bool) -> None:
    calls: list[str] = []
    agent = ops_agent(ask_to_delete(), say("Deleted."), calls=calls)

    paused = await run_agent(agent, "clean up /tmp/x", stream=stream)
    assert isinstance(paused, RunResultStreaming) is stream
    assert [i.tool_name for i in paused.interruptions] == ["delete_file"]
    assert paused.final_output is None and calls == []

    state = paused.to_state()
    state.approve(state.get_interruptions()[0])
    finished = await run_agent(agent, state, stream=stream)
    assert finished.final_output == "Deleted." and not finished.interruptions
    assert calls == ["/tmp/x"]


async def test_raise_on_interruption_carries_a_saveable_state(sqlite_url: str) -> None:
    agent = ops_agent(ask_to_delete(), say("ok"))
    with pytest.raises(InterruptionException) as raised:
        await run_agent(agent, "clean up", raise_on_interruption=True)
    assert "delete_file" in str(raised.value)
    stored = await RunStateStore(agent=agent, session_id="s", url=sqlite_url).save(
        raised.value.state
    )
    assert stored.status == "interrupted"


async def test_a_finished_run_does_not_raise_on_interruption() -> None:
    result = await run_agent(ops_agent(say("nothing to do")), "hi", raise_on_interruption=True)
    assert result.final_output == "nothing to do"


@pytest.mark.parametrize("stream", [False, True], ids=["run", "streamed"])
async def test_a_custom_result_processor_sees_the_result(stream: bool) -> None:
    seen: list[str] = []

    async def collect_events(result: Any) -> Any:
        if isinstance(result, RunResultStreaming):
            async for event in result.stream_events():
                seen.append(event.type)
        else:
            seen.append("plain")
        return result

    result = await run_agent(
        ops_agent(say("hi")), "hi", stream=stream, result_processor=collect_events
    )
    assert result.final_output == "hi"
    assert ("raw_response_event" in seen) if stream else (seen == ["plain"])


@pytest.mark.parametrize("stream", [False, True], ids=["run", "streamed"])
async def test_sdk_errors_surface_unchanged(
    stream: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    class Boom(RuntimeError):
        pass

    agent = ops_agent(ModelStep.raise_error(Boom("model down")))
    with pytest.raises(Boom, match="model down"):
        await run_agent(agent, "hi", stream=stream)
    assert capsys.readouterr().out == ""


async def test_string_models_route_through_plugin_providers(
    scripted_provider: ScriptedModelProvider,
) -> None:
    model = scripted_provider.script("ops", [say("routed"), say("routed again")])
    agent = Agent(name="Ops", model="scripted/ops")
    assert (await run_agent(agent, "hi")).final_output == "routed"
    assert (await run_agent(agent, "hi", stream=True)).final_output == "routed again"
    # One provider, built once and cached, served both runs through plugin routing.
    assert [call.streamed for call in model.calls] == [False, True]
    model.assert_complete()


async def test_the_default_provider_is_built_once() -> None:
    assert default_model_provider() is default_model_provider()


async def test_unknown_prefix_fails_before_any_request() -> None:
    with pytest.raises(UnknownModelPrefixError, match="nope"):
        await run_agent(Agent(name="X", model="nope/model"), "hi")


async def test_tracing_stays_off_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    configs: list[RunConfig] = []
    from agents import Runner

    real_run = Runner.run

    async def spy(*args: Any, **kwargs: Any) -> Any:
        configs.append(kwargs["run_config"])
        return await real_run(*args, **kwargs)

    monkeypatch.setattr(Runner, "run", spy)
    await run_agent(ops_agent(say("a")), "hi")
    monkeypatch.setenv("TIMESTEP_TRACING", "1")
    await run_agent(ops_agent(say("b")), "hi")
    assert [c.tracing_disabled for c in configs] == [True, False]


async def test_consume_result_returns_plain_results_as_they_are() -> None:
    result = await run_agent(ops_agent(say("x")), "hi")
    assert await consume_result(result) is result
