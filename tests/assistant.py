"""A personal assistant built from stored parts: tools, guardrails and a handoff cycle.

Imported by tests to register its parts; run as a script it plays the "other process" that
loads the stored agent and runs it::

    python tests/assistant.py URL
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any

from agents import (
    Agent,
    GuardrailFunctionOutput,
    ModelSettings,
    RunContextWrapper,
    function_tool,
    input_guardrail,
    output_guardrail,
)
from pydantic import BaseModel

from timestep import hookimpl, load_agent, plugins, registry, run_agent
from timestep.storage import close_backends
from timestep.testing import ScriptedModelProvider, assistant_message, function_call

calls: list[str] = []


@function_tool
def get_weather(city: str) -> str:
    """The weather in ``city``."""
    calls.append(city)
    return f"Sunny in {city}"


@input_guardrail
async def no_secrets(
    ctx: RunContextWrapper[Any], agent: Agent[Any], text: Any
) -> GuardrailFunctionOutput:
    return GuardrailFunctionOutput(output_info=None, tripwire_triggered="password" in str(text))


@output_guardrail
async def polite(
    ctx: RunContextWrapper[Any], agent: Agent[Any], output: Any
) -> GuardrailFunctionOutput:
    return GuardrailFunctionOutput(output_info=None, tripwire_triggered="stupid" in str(output))


class WeatherReport(BaseModel):
    city: str
    summary: str


def build() -> Agent[Any]:
    """The graph: Assistant <-> Weather (a cycle), as a user would write it."""
    weather = Agent(
        name="Weather",
        instructions="Report the weather.",
        handoff_description="Knows the weather.",
        model="scripted/weather",
        model_settings=ModelSettings(temperature=0.2, max_tokens=200),
        tools=[get_weather],
        output_guardrails=[polite],
    )
    assistant = Agent(
        name="Assistant",
        instructions="Help the user; hand weather questions to Weather.",
        model="scripted/assistant",
        input_guardrails=[no_secrets],
        handoffs=[weather],
    )
    weather.handoffs = [assistant]
    return assistant


def register_parts() -> None:
    for part in (get_weather, no_secrets, polite, WeatherReport):
        registry.add(part)


def weather_scripts(provider: ScriptedModelProvider) -> None:
    provider.script("assistant", [[function_call("transfer_to_weather", {}, call_id="h1")]])
    provider.script(
        "weather",
        [
            [function_call("get_weather", {"city": "Berkeley"}, call_id="w1")],
            [assistant_message("It is sunny in Berkeley.")],
        ],
    )


class _Scripted:
    def __init__(self, provider: ScriptedModelProvider) -> None:
        self.provider = provider

    @hookimpl
    def register_model_providers(self, register: Callable[[str, Any], None]) -> None:
        register("scripted", lambda: self.provider)


async def main(url: str) -> None:
    register_parts()
    provider = ScriptedModelProvider()
    weather_scripts(provider)
    plugins.register(_Scripted(provider), name="scripted")
    try:
        agent = await load_agent("Assistant", url=url)
        result = await run_agent(agent, "What's the weather in Berkeley?")
        print(
            json.dumps(
                {
                    "final_output": result.final_output,
                    "last_agent": result.last_agent.name,
                    "tool_calls": calls,
                    "guardrails": [g.guardrail.get_name() for g in result.input_guardrail_results]
                    + [g.guardrail.get_name() for g in result.output_guardrail_results],
                }
            )
        )
    finally:
        await close_backends()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
