"""What cannot cross between the SDKs fails loudly, naming the item; nothing is dropped.

(The store's side of the same rule, keeping such a run natively with the reason, is in
tests/test_interop_store.py.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from interop_assistant import (
    ASK_BERKELEY,
    js_fixture,
    python_state,
)
from timestep import (
    StateCorruptedError,
    UnsupportedSchemaError,
)
from timestep.errors import IncompatibleStateError
from timestep.interop import translate

Edit = Callable[[dict[str, Any]], None]

WEB_SEARCH = {"id": "ws_1", "type": "web_search_call", "status": "completed"}
COMPUTER = {"id": "cu_1", "type": "computer_call", "call_id": "cu", "action": {"type": "click"}}


def _insert(key: str, index: int, item: dict[str, Any]) -> Edit:
    return lambda state: state[key].insert(index, item)


PYTHON_CASES: dict[str, tuple[Edit, str, str]] = {
    # name: (edit of a paused Python state, item named, words in the message)
    "hosted web search": (
        _insert(
            "generated_items",
            2,
            {"type": "tool_call_item", "raw_item": WEB_SEARCH, "agent": {"name": "Weather"}},
        ),
        "generated_items[2].raw_item",
        "a hosted web search call",
    ),
    "computer call in a model response": (
        lambda s: s["model_responses"][1]["output"].insert(0, COMPUTER),
        "model_responses[1].output[0]",
        "a computer-use tool call",
    ),
    "MCP tool": (
        lambda s: s["generated_items"][2].update(
            tool_origin={"type": "mcp", "mcp_server_name": "files"}
        ),
        "generated_items[2]",
        "a call to a mcp tool (files)",
    ),
    "programmatic caller": (
        lambda s: s["generated_items"][2]["raw_item"].update(
            caller={"type": "program", "caller_id": "p1"}
        ),
        "generated_items[2].raw_item",
        "made by a program",
    ),
    "sandbox": (lambda s: s.update(sandbox={"backend": "docker"}), "sandbox", "sandbox"),
    "session write in flight": (
        lambda s: s.update(pending_session_write={"session_id": "x"}),
        "pending_session_write",
        "Session write",
    ),
    "pending computer action": (
        lambda s: s["last_processed_response"].update(computer_actions=[{"tool_call": {}}]),
        "last_processed_response.computer_actions",
        "computer-use action",
    ),
    "same-name agents": (
        lambda s: s.update(current_agent={"name": "Weather", "identity": "Weather#2"}),
        "current_agent",
        "several agents share the name 'Weather'",
    ),
    "orphan tool output": (
        _insert(
            "generated_items",
            2,
            {
                "type": "tool_call_output_item",
                "raw_item": {"type": "function_call_output", "call_id": "gone", "output": "x"},
                "agent": {"name": "Weather"},
                "output": "x",
            },
        ),
        "generated_items[2].raw_item",
        "call 'gone' has no matching tool call",
    ),
}


@pytest.mark.parametrize("case", list(PYTHON_CASES))
async def test_what_js_cannot_hold_is_refused_by_name(case: str) -> None:
    edit, item, words = PYTHON_CASES[case]
    state = await python_state([ASK_BERKELEY])
    edit(state)
    with pytest.raises(IncompatibleStateError) as raised:
        translate(state, source="python", target="js")
    assert raised.value.item == item
    assert item in str(raised.value) and words in str(raised.value)
    assert (
        "never drops" in str(raised.value)
        or "damaged" in str(raised.value)
        or ("incomplete" in str(raised.value))
    )


JS_CASES: dict[str, tuple[Edit, str, str]] = {
    "hosted tool": (
        _insert(
            "generatedItems",
            2,
            {
                "type": "tool_call_item",
                "rawItem": {"type": "hosted_tool_call", "name": "web_search_call", "id": "ws"},
                "agent": {"name": "Weather"},
            },
        ),
        "generatedItems[2].rawItem",
        "a hosted tool call",
    ),
    "saved mid-handoff": (
        lambda s: s.update(currentStep={"type": "next_step_handoff", "newAgent": {"name": "W"}}),
        "currentStep",
        "between a handoff and the new agent's first turn",
    ),
    "nested agent-tool run": (
        lambda s: s.update(pendingAgentToolRuns={"call-x": "{}"}),
        "pendingAgentToolRuns",
        "nested agent-as-tool run",
    ),
    "hosted MCP approvals": (
        lambda s: s["context"].update(hostedMcpApprovals={"srv": {"approved": True}}),
        "context.hostedMcpApprovals",
        "hosted MCP approval",
    ),
    "pending MCP call": (
        lambda s: s["lastProcessedResponse"]["functions"][0].update(mcpToolBinding="unknown"),
        "lastProcessedResponse.functions[0]",
        "pending MCP tool call",
    ),
    "audio input": (
        lambda s: s.update(
            originalInput=[{"type": "message", "role": "user", "content": [{"type": "audio"}]}]
        ),
        "originalInput[0]",
        "user content of type 'audio'",
    ),
}


@pytest.mark.parametrize("case", list(JS_CASES))
def test_what_python_cannot_hold_is_refused_by_name(case: str) -> None:
    edit, item, words = JS_CASES[case]
    state = js_fixture("js_paused_after_oakland")
    edit(state)
    with pytest.raises(IncompatibleStateError) as raised:
        translate(state, source="js", target="python")
    assert raised.value.item == item
    assert item in str(raised.value) and words in str(raised.value)


@pytest.mark.parametrize(
    ("source", "schema"), [("python", "1.20"), ("python", "1.22"), ("js", "1.21"), ("js", "1.23")]
)
async def test_an_unsupported_schema_version_names_the_supported_ones(
    source: str, schema: str
) -> None:
    state = (
        await python_state([ASK_BERKELEY])
        if source == "python"
        else js_fixture("js_paused_after_oakland")
    )
    state["$schemaVersion"] = schema
    target = "js" if source == "python" else "python"
    with pytest.raises(UnsupportedSchemaError) as raised:
        translate(state, source=source, target=target)
    message = str(raised.value)
    assert f"{source} RunState with $schemaVersion '{schema}'" in message
    assert "python 1.21 (openai-agents 0.24.x) -> js 1.22 (@openai/agents 0.20.x)" in message


def test_an_unknown_sdk_or_a_non_state_is_refused() -> None:
    with pytest.raises(UnsupportedSchemaError, match="'ruby'"):
        translate({"$schemaVersion": "1.0"}, source="ruby", target="js")
    with pytest.raises(StateCorruptedError, match="JSON object"):
        translate([], source="python", target="js")  # type: ignore[arg-type]
    with pytest.raises(StateCorruptedError, match="missing or has a malformed field"):
        translate({"$schemaVersion": "1.21"}, source="python", target="js")
