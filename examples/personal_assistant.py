"""A personal assistant with guardrails, a handoff and an approval, paused, saved and resumed.

The assistant has an input guardrail (``polite``) and an output guardrail (``no_secrets``). It
hands weather questions off to a weather agent whose ``get_weather`` tool needs a human's
approval. The run pauses at that tool; its state is saved with ``RunStateStore``; a fresh store
(as a later process would build) loads it, approves the call and resumes the run to its answer.

Run it::

    python examples/personal_assistant.py                       # embedded SQLite
    python examples/personal_assistant.py --url postgresql://postgres@127.0.0.1:5432/postgres

Without ``OPENAI_API_KEY`` scripted models play the models' part, so it runs offline; with the
key set the same agents use a real OpenAI model.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import uuid
from typing import Any

from agents import (
    Agent,
    GuardrailFunctionOutput,
    InputGuardrailTripwireTriggered,
    Model,
    RunContextWrapper,
    function_tool,
    input_guardrail,
    output_guardrail,
)
from agents.testing import ScriptedModel, assistant_message, function_call

from timestep import RunStateStore, aclose, run_agent
from timestep.config import redact_url

REAL_MODEL = "gpt-4.1-mini"
QUESTION = "What's the weather in Berkeley?"


def model(*replies: list[Any]) -> str | Model:
    """A real model name when ``OPENAI_API_KEY`` is set, else a model replaying ``replies``."""
    if os.environ.get("OPENAI_API_KEY"):
        return REAL_MODEL
    return ScriptedModel(list(replies))


@function_tool(needs_approval=True)
def get_weather(city: str) -> str:
    """The weather for a city."""
    return f"Sunny, 21C in {city}"


# run_in_parallel=False: the guardrail decides before the model is called at all.
@input_guardrail(run_in_parallel=False)
def polite(_context: RunContextWrapper[Any], _agent: Agent[Any], text: Any) -> Any:
    """Refuse rude input."""
    return GuardrailFunctionOutput(
        output_info={"checked": "input"}, tripwire_triggered="stupid" in str(text).lower()
    )


@output_guardrail
def no_secrets(_context: RunContextWrapper[Any], _agent: Agent[Any], output: Any) -> Any:
    """Refuse answers that leak a password."""
    return GuardrailFunctionOutput(
        output_info={"checked": "output"}, tripwire_triggered="password" in str(output).lower()
    )


def build(assistant_model: str | Model, weather_model: str | Model) -> Agent[Any]:
    """The agent graph: Assistant hands weather questions to Weather."""
    weather = Agent(
        name="Weather",
        instructions="Answer weather questions; always call get_weather for the city.",
        handoff_description="Knows the weather.",
        model=weather_model,
        tools=[get_weather],
        output_guardrails=[no_secrets],
    )
    return Agent(
        name="Assistant",
        instructions="Help the user; hand weather questions to the Weather agent.",
        model=assistant_model,
        handoffs=[weather],
        input_guardrails=[polite],
        output_guardrails=[no_secrets],
    )


async def main(url: str | None) -> None:
    """Block a rude request, then pause, save, load, approve and resume a weather question."""
    if os.environ.get("OPENAI_API_KEY"):
        print(f"Using OpenAI model {REAL_MODEL}.")
    else:
        print("OPENAI_API_KEY is not set: scripted models play the models' part (offline).")
    session_id = f"assistant-{uuid.uuid4().hex[:8]}"

    # 1. The input guardrail stops a rude request before any model call.
    try:
        await run_agent(build(model(), model()), "You stupid bot, what's the weather?")
    except InputGuardrailTripwireTriggered as error:
        print(f"blocked by input guardrail: {error.guardrail_result.guardrail.get_name()}")

    # 2. A weather question: the handoff happens, then get_weather waits for approval.
    assistant = build(
        model([function_call("transfer_to_weather", {}, call_id="call-handoff")]),
        model([function_call("get_weather", {"city": "Berkeley"}, call_id="call-berkeley")]),
    )
    result = await run_agent(assistant, QUESTION)
    if not result.interruptions:
        raise SystemExit(
            f"The model answered without asking for the weather: {result.final_output}"
        )
    for item in result.interruptions:
        print(f"paused: {item.tool_name}({item.arguments}) needs approval")
    store = RunStateStore(agent=assistant, session_id=session_id, url=url)
    stored = await store.save(result)
    print(f"saved: session {session_id}, status {stored.status.value}, version {stored.version}")
    print(f"database: {redact_url(store.url)}")

    # 3. Later (any process): a fresh agent graph and store load the run, approve and resume.
    assistant = build(model(), model([assistant_message("It is sunny, 21C in Berkeley.")]))
    store = RunStateStore(agent=assistant, session_id=session_id, url=url)
    state = await store.load()
    for item in state.get_interruptions():
        print(f"approving: {item.tool_name}({item.arguments})")
        state.approve(item)
    result = await run_agent(assistant, state)
    stored = await store.save(result)
    guardrails = [r.guardrail.get_name() for r in result.output_guardrail_results]
    print(f"output guardrails passed: {', '.join(guardrails)}")
    print(f"answered by: {result.last_agent.name}")
    print(f"final output: {result.final_output}")
    print(f"saved: status {stored.status.value}, version {stored.version}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="database URL (default: TIMESTEP_DB_URL or embedded SQLite)")
    args = parser.parse_args()

    async def run() -> None:
        try:
            await main(args.url)
        finally:
            await aclose()

    asyncio.run(run())
