"""The personal-assistant scenario of the cross-language tests, in Python.

An assistant with an input guardrail (``polite``) and an output guardrail (``no_secrets``) hands
off to a weather agent whose ``get_weather`` tool needs approval for Berkeley. The same graph is
built in JavaScript by ``tests/js/personal-assistant.mjs``; both take their model replies from
the same description, so a step scripted here behaves identically in either language::

    replies = {"Assistant": [[call("transfer_to_weather", {}, "call-handoff")]],
               "Weather": [[call("get_weather", {"city": "Berkeley"}, "call-berk")]]}
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agents import (
    Agent,
    GuardrailFunctionOutput,
    RunContextWrapper,
    RunState,
    function_tool,
    input_guardrail,
    output_guardrail,
)
from agents.testing import ScriptedModel, assistant_message, function_call

from timestep import run_agent

Reply = list[dict[str, Any]]
"""One model reply: ``call(...)`` and ``say(...)`` entries."""

QUESTION = "What's the weather in Berkeley?"
FIXTURES = Path(__file__).parent / "fixtures"


def call(name: str, args: Mapping[str, Any], call_id: str) -> dict[str, Any]:
    """A tool call (or handoff) in a scripted reply."""
    return {"call": name, "args": dict(args), "id": call_id}


def say(text: str) -> dict[str, Any]:
    """An assistant message in a scripted reply."""
    return {"say": text}


HANDOFF = [call("transfer_to_weather", {}, "call-handoff")]
ASK_BERKELEY = [call("get_weather", {"city": "Berkeley"}, "call-berk")]
SUNNY = [say("It is sunny in Berkeley.")]


def personal_assistant(
    replies: Mapping[str, Sequence[Reply]], ran: list[str]
) -> tuple[Agent[Any], ScriptedModel]:
    """The starting agent and the weather agent's model; ``ran`` records each get_weather."""

    async def berkeley_needs_approval(
        _context: RunContextWrapper[Any], params: dict[str, Any], _call_id: str
    ) -> bool:
        return bool(params.get("city") == "Berkeley")

    @function_tool(needs_approval=berkeley_needs_approval)
    def get_weather(city: str) -> str:
        """The weather for a city."""
        ran.append(city)
        return f"Sunny, 21C in {city}"

    @input_guardrail
    def polite(_context: RunContextWrapper[Any], _agent: Agent[Any], text: Any) -> Any:
        return GuardrailFunctionOutput(
            output_info={"checked": "input"}, tripwire_triggered="stupid" in str(text)
        )

    @output_guardrail
    def no_secrets(_context: RunContextWrapper[Any], _agent: Agent[Any], output: Any) -> Any:
        return GuardrailFunctionOutput(
            output_info={"checked": "output"}, tripwire_triggered="password" in str(output)
        )

    weather_model = ScriptedModel([_reply(r) for r in replies.get("Weather", [])])
    weather = Agent(
        name="Weather",
        instructions="Answer weather questions with get_weather.",
        model=weather_model,
        tools=[get_weather],
        output_guardrails=[no_secrets],
    )
    assistant = Agent(
        name="Assistant",
        instructions="Help the user; hand weather questions to the weather agent.",
        model=ScriptedModel([_reply(r) for r in replies.get("Assistant", [])]),
        handoffs=[weather],
        input_guardrails=[polite],
        output_guardrails=[no_secrets],
    )
    return assistant, weather_model


def tool_outputs_seen(model: ScriptedModel) -> list[Any]:
    """The get_weather results in the weather model's last input, as the model was sent them."""
    last = model.last_call
    sent = [
        i
        for i in (last.input if last and isinstance(last.input, list) else [])
        if isinstance(i, dict)
    ]
    calls = {item.get("call_id") for item in sent if item.get("name") == "get_weather"}
    return [
        item.get("output")
        for item in sent
        if item.get("type") == "function_call_output" and item.get("call_id") in calls
    ]


def js_fixture(name: str) -> dict[str, Any]:
    """A state the real JS SDK wrote for this scenario (tests/fixtures/NAME.json)."""
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return data


async def python_state(weather: list[Reply], decision: str | None = None) -> dict[str, Any]:
    """The Python SDK's own paused state of the scenario, with a decision recorded if given
    (``approve``, ``always`` (approve every call of the tool) or ``reject``)."""
    assistant, _ = personal_assistant({"Assistant": [HANDOFF], "Weather": weather}, [])
    state = (await run_agent(assistant, QUESTION)).to_state()
    for item in state.get_interruptions():
        if decision in ("approve", "always"):
            state.approve(item, always_approve=decision == "always")
        elif decision == "reject":
            state.reject(item, rejection_message="No.")
    return state.to_json()


async def resume(state_json: dict[str, Any], decision: str | None = "approve") -> dict[str, Any]:
    """Resume a Python-form state in Python: what ran, what the model saw, what came out.

    ``decision`` approves or rejects every pending call (``None``: they were decided before).
    """
    ran: list[str] = []
    assistant, weather_model = personal_assistant({"Weather": [SUNNY]}, ran)
    state = await RunState.from_json(assistant, state_json)
    for item in state.get_interruptions():
        if decision == "approve":
            state.approve(item)
        elif decision == "reject":
            state.reject(item, rejection_message="No.")
    result = await run_agent(assistant, state)
    return {
        "final_output": result.final_output,
        "ran": ran,
        "seen": tool_outputs_seen(weather_model),
        "input_list": semantic_items(result.to_input_list()),
    }


def semantic_items(items: Sequence[Any]) -> list[dict[str, Any]]:
    """Input items without what only one SDK writes: item ``status`` and the ``message`` tag."""
    kept = []
    for item in items:
        entry = {k: v for k, v in dict(item).items() if k != "status"}
        if entry.get("type") == "message":
            del entry["type"]
        kept.append(entry)
    return kept


def _reply(entries: Reply) -> list[Any]:
    return [
        assistant_message(entry["say"])
        if "say" in entry
        else function_call(entry["call"], entry["args"], call_id=entry["id"])
        for entry in entries
    ]
