"""The Agents SDKs' own historical RunState fixtures, translated both ways.

Both SDKs keep frozen states written by their older releases (tests/fixtures/sdk_python,
tests/fixtures/sdk_js; origin in tests/fixtures/README.md). Each test first re-saves them
through their own SDK, so the corpus is what the pinned SDK writes today, then translates every
state to the other SDK, which must load it, and back. A state Timestep cannot translate is
refused with the place named; the lists below are what docs/cross-language.md says is refused.
Decisions recorded in a state (approved and rejected calls) must decide the same calls the same
way after the trip: the same call runs, is refused with the same message, or waits again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, FunctionTool, Runner, RunState
from agents.testing import ScriptedModel, assistant_message, function_call

from js_steps import js_step, require_js_harness
from timestep import IncompatibleStateError
from timestep.interop import translate

FIXTURES = Path(__file__).parent / "fixtures"
PYTHON_CORPUS = {path.stem: path for path in sorted((FIXTURES / "sdk_python").glob("*.json"))}
JS_CORPUS = {path.stem: path for path in sorted((FIXTURES / "sdk_js").glob("*.json"))}

# What the JS SDK cannot hold, by fixture: the place the refusal names.
REFUSED_IN_JS = {
    "features__v1_5_tool_search_and_display_metadata": "generated_items[0].raw_item",
    "features__v1_9_custom_tool_call_and_tool_origin": "generated_items[0].raw_item",
    # A tool output whose call is not in the run's items.
    "features__v1_11_tool_output_custom_data": "generated_items[0].raw_item",
    "features__v1_13_nested_history_ownership": "nested_history_owned_session_item_refs",
    "features__v1_13_programmatic_tool_calling": "generated_items[0].raw_item",
    "features__v1_14_hosted_mcp_approval_scope": "context.hosted_mcp_approvals",
    # Decisions on calls not yet made: Python keeps only a digest of their arguments.
    "features__v1_15_canonical_invocation_identity": "context.approvals['lookup_account']",
    # An "always" decision recorded by tool name only.
    "features__v1_16_per_call_approval_override": "context.approvals['sensitive_tool']",
    "features__v1_17_docker_labels": "sandbox",
    "features__v1_7_duplicate_agent_identity_and_sandbox": "sandbox",
    "security__v1_13_legacy_mount_credentials": "sandbox",
}
REFUSED_IN_PYTHON = {"v1.2-nested-approval": "pendingAgentToolRuns"}

_AGENT_KEYS = {"agent", "current_agent", "currentAgent", "source_agent", "sourceAgent"}
_AGENT_KEYS |= {"target_agent", "targetAgent"}


@pytest.fixture(autouse=True)
def _js_harness() -> None:
    require_js_harness()


# -- the agent graph a state needs, from the names in it ---------------------------------------


def graph_of(state: Mapping[str, Any]) -> dict[str, Any]:
    """A minimal graph for ``state`` (either SDK's form): its agents, each with every function
    tool the state names (calls, decisions, tool-use records), and agent-as-tool runs."""
    agents: dict[str, int] = {}
    tools: set[str] = set()
    for node in _nodes(state):
        for key in _AGENT_KEYS & node.keys():
            reference = node[key]
            if isinstance(reference, Mapping) and isinstance(reference.get("name"), str):
                copies = re.fullmatch(r".*#(\d+)", str(reference.get("identity") or ""))
                count = int(copies.group(1)) if copies else 1
                agents[reference["name"]] = max(agents.get(reference["name"], 1), count)
        if node.get("type") == "function_call" and isinstance(node.get("name"), str):
            tools.add(node["name"])
    context = state.get("context") or {}
    tools |= set(context.get("approvals") or {}) | set(context.get("legacyFunctionApprovals") or {})
    tools |= {entry["tool_key"] for entry in context.get("function_tool_approvals") or []}
    for entry in context.get("functionApprovals") or []:
        tools |= {json.loads(key)[-1] for key in entry["approvals"]}
    for entry in context.get("approvalInvocations") or []:
        tools |= {json.loads(json.loads(f)["toolName"])[-1] for f in entry["invocations"].values()}
    for used in (state.get("tool_use_tracker") or state.get("toolUseTracker") or {}).values():
        tools |= set(used)
    start: str = (state.get("current_agent") or state["currentAgent"])["name"]
    agent_tools = {
        key.split(":")[0]: next(name for name in agents if name != start)
        for key in state.get("pendingAgentToolRuns") or {}
    }
    return {
        "start": start,
        "agents": {name: sorted(tools - set(agent_tools)) for name in agents},
        "copies": agents,
        "agentTools": agent_tools,
    }


def _nodes(value: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(value, Mapping):
        yield value
        for child in value.values():
            yield from _nodes(child)
    elif isinstance(value, list):
        for child in value:
            yield from _nodes(child)


def python_graph(graph: Mapping[str, Any], steps: list[Any], ran: list[str]) -> Agent[Any]:
    """The Python agents of ``graph``; the starting agent plays ``steps``."""

    def needs_approval(name: str) -> FunctionTool:
        async def invoke(_context: Any, _arguments: str) -> str:
            ran.append(name)
            return f"{name} ran"

        schema = {"type": "object", "properties": {}, "additionalProperties": True}
        return FunctionTool(
            name=name,
            description=name,
            params_json_schema=schema,
            on_invoke_tool=invoke,
            needs_approval=True,
            strict_json_schema=False,
        )

    agents: dict[str, Agent[Any]] = {}
    for name, tools in graph["agents"].items():
        model = ScriptedModel(steps if name == graph["start"] else [])
        agents[name] = Agent(name=name, model=model, tools=[needs_approval(t) for t in tools])
        # Same-name agents (identity NAME#2, ...) hang off the first as handoffs.
        agents[name].handoffs = [
            Agent(name=name, model=ScriptedModel([])) for _ in range(graph["copies"][name] - 1)
        ]
    for tool_name, owner in graph["agentTools"].items():
        nested = agents[owner].as_tool(tool_name=tool_name, tool_description=tool_name)
        agents[graph["start"]].tools.append(nested)
    return agents[graph["start"]]


# -- each SDK's own reading and writing ---------------------------------------------------------


async def python_resave(state: dict[str, Any]) -> dict[str, Any]:
    restored = await RunState.from_json(python_graph(graph_of(state), [], []), state)
    return restored.to_json()


def js_cases(phase: str, cases: list[dict[str, Any]], tmp_path: Path) -> list[dict[str, Any]]:
    """``node tests/js/fixtures.mjs PHASE`` over ``cases`` in one process."""
    sent, received = tmp_path / f"{phase}-in.json", tmp_path / f"{phase}-out.json"
    sent.write_text(json.dumps(cases))
    report = js_step("fixtures.mjs", phase, "--file", str(sent), "--out", str(received))
    assert report == {"cases": len(cases), "returncode": 0}
    results: list[dict[str, Any]] = json.loads(received.read_text())
    return results


def js_resave(states: list[dict[str, Any]], tmp_path: Path) -> list[dict[str, Any]]:
    cases = [{"graph": graph_of(state), "state": state} for state in states]
    results = js_cases("reserialize", cases, tmp_path)
    failed = {i: r for i, r in enumerate(results) if "error" in r}
    assert not failed, failed
    return [result["state"] for result in results]


async def python_probe(state: dict[str, Any], calls: list[dict[str, Any]]) -> dict[str, Any]:
    """Resume ``state`` in Python with a model that makes ``calls``: what ran, what was refused
    (call id -> output) and which calls wait for approval."""
    ran: list[str] = []
    steps: list[Any] = [
        [function_call(c["tool"], c.get("args", {}), call_id=c["id"]) for c in calls]
    ]
    steps = [*(steps if calls else []), [assistant_message("done")]]
    start = python_graph(graph_of(state), steps, ran)
    result = await Runner.run(start, await RunState.from_json(start, state))
    outputs = {
        item.raw_item.get("call_id"): item.output
        for item in result.new_items
        if item.type == "tool_call_output_item" and isinstance(item.raw_item, dict)
    }
    pending = [item.raw_item.call_id for item in result.interruptions]  # type: ignore[union-attr]
    return {"pending": pending, "ran": ran, "outputs": outputs}


def js_probe(state: dict[str, Any], calls: list[dict[str, Any]], tmp_path: Path) -> dict[str, Any]:
    [result] = js_cases(
        "probe", [{"graph": graph_of(state), "state": state, "calls": calls}], tmp_path
    )
    return result


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


# -- the corpora, both directions ---------------------------------------------------------------


async def test_every_python_fixture_loads_in_js_or_is_refused_by_name(tmp_path: Path) -> None:
    resaved = {name: await python_resave(_load(path)) for name, path in PYTHON_CORPUS.items()}
    assert {state["$schemaVersion"] for state in resaved.values()} == {"1.21"}

    translated: dict[str, dict[str, Any]] = {}
    refused: dict[str, str | None] = {}
    for name, state in resaved.items():
        try:
            translated[name] = translate(state, source="python", target="js")
        except IncompatibleStateError as error:
            refused[name] = error.item
    assert refused == REFUSED_IN_JS

    # The JS SDK loads every translation, and what it writes back reads in Python again.
    rewritten = js_resave(list(translated.values()), tmp_path)
    for name, js_state in zip(translated, rewritten, strict=True):
        back = translate(js_state, source="js", target="python")
        await RunState.from_json(python_graph(graph_of(back), [], []), back)
        assert back["current_agent"] == resaved[name]["current_agent"], name
        assert back["original_input"] == resaved[name]["original_input"], name


async def test_every_js_fixture_loads_in_python_or_is_refused_by_name(tmp_path: Path) -> None:
    resaved = dict(
        zip(JS_CORPUS, js_resave([_load(p) for p in JS_CORPUS.values()], tmp_path), strict=True)
    )
    assert {state["$schemaVersion"] for state in resaved.values()} == {"1.22"}

    translated: dict[str, dict[str, Any]] = {}
    refused: dict[str, str | None] = {}
    for name, state in resaved.items():
        try:
            translated[name] = translate(state, source="js", target="python")
        except IncompatibleStateError as error:
            refused[name] = error.item
    assert refused == REFUSED_IN_PYTHON

    for name, py_state in translated.items():
        restored = await RunState.from_json(python_graph(graph_of(py_state), [], []), py_state)
        assert restored.to_json()["current_agent"] == {
            "name": resaved[name]["currentAgent"]["name"]
        }
    # And back: the JS SDK loads the translation of what Python wrote, except decisions on
    # calls not yet made, which Python keeps as digests only.
    back, refused_back = [], {}
    for name, state in translated.items():
        try:
            back.append(translate(state, source="python", target="js"))
        except IncompatibleStateError as error:
            refused_back[name] = error.item
    assert refused_back == {
        "v1.18-per-call-approval-override": "context.function_tool_approvals[0]"
    }
    js_resave(back, tmp_path)


# -- decisions survive the trip -----------------------------------------------------------------


async def test_a_call_rejected_exactly_in_js_is_rejected_in_python(tmp_path: Path) -> None:
    """JS v1.18: "always approve sensitive_tool, except exception-call" (rejected exactly)."""
    [js_state] = js_resave([_load(JS_CORPUS["v1.18-per-call-approval-override"])], tmp_path)
    calls = [{"tool": "sensitive_tool", "id": "sticky-call"}]
    calls.append({"tool": "sensitive_tool", "id": "exception-call"})
    in_js = js_probe(js_state, calls, tmp_path)
    assert in_js == {
        "pending": [],
        "ran": ["sensitive_tool"],
        "outputs": {"sticky-call": "sensitive_tool ran", "exception-call": "Denied exactly."},
    }

    in_python = await python_probe(translate(js_state, source="js", target="python"), calls)

    assert in_python == in_js


async def test_a_decision_an_old_python_sdk_recorded_by_tool_name_crosses_to_js(
    tmp_path: Path,
) -> None:
    """Python v1.6 recorded a rejection keyed by tool name, bound to no call: the JS SDK
    rejects that call as recorded (Python 0.24 itself asks again, never running it)."""
    state = await python_resave(_load(PYTHON_CORPUS["features__v1_6_approval_rejection_message"]))
    calls = [{"tool": "sensitive_tool", "id": "approval-1"}]

    js_state = translate(state, source="python", target="js")

    assert js_state["context"]["legacyFunctionApprovals"] == {
        "sensitive_tool": {
            "approved": [],
            "rejected": ["approval-1"],
            "messages": {"approval-1": "Denied by release reviewer"},
        }
    }
    assert js_probe(js_state, calls, tmp_path) == {
        "pending": [],
        "ran": [],
        "outputs": {"approval-1": "Denied by release reviewer"},
    }
    assert await python_probe(state, calls) == {"pending": ["approval-1"], "ran": [], "outputs": {}}
    # Back in Python the decision is where the Python SDK keeps it.
    [rewritten] = js_resave([js_state], tmp_path)
    back = translate(rewritten, source="js", target="python")
    assert back["context"]["approvals"] == state["context"]["approvals"]


async def test_a_legacy_python_decision_on_a_call_in_the_run_is_bound_in_js(
    tmp_path: Path,
) -> None:
    """An old-style (by tool name) rejection of a pending call: JS rejects that call too."""
    state = await python_resave(_load(PYTHON_CORPUS["resume__v1_13_pending_tool_approval"]))
    [pending] = state["current_step"]["data"]["interruptions"]
    call_id = pending["raw_item"]["call_id"]
    state["context"]["approvals"] = {
        "historical_approval": {
            "approved": [],
            "rejected": [call_id],
            "rejection_messages": {call_id: "Not this account."},
        }
    }
    state = await python_resave(state)

    js_state = translate(state, source="python", target="js")

    [bound] = js_state["context"]["approvalInvocations"]
    assert list(bound["invocations"]) == [call_id]
    in_js = js_probe(js_state, [], tmp_path)
    assert in_js["pending"] == [] and in_js["ran"] == []
    assert in_js["outputs"] == {call_id: "Not this account."}


# -- edge cases ---------------------------------------------------------------------------------


async def test_an_old_python_approval_bound_to_no_call_is_refused_not_widened() -> None:
    """Python asks again for such a call; the JS SDK would run any call with that id."""
    state = await python_resave(_load(PYTHON_CORPUS["features__v1_6_approval_rejection_message"]))
    state["context"]["approvals"]["sensitive_tool"] = {"approved": ["approval-1"], "rejected": []}

    with pytest.raises(IncompatibleStateError, match="approval of tool call 'approval-1'") as info:
        translate(state, source="python", target="js")
    assert info.value.item == "context.approvals['sensitive_tool']"


async def test_a_js_decision_on_a_call_with_numbers_not_yet_made_is_refused(
    tmp_path: Path,
) -> None:
    """The JS fingerprint keeps 1.0 and 1 alike; Python's needs the spelling, so refuse."""
    [js_state] = js_resave([_load(JS_CORPUS["v1.18-per-call-approval-override"])], tmp_path)
    [record] = js_state["context"]["approvalInvocations"]
    record["invocations"]["exception-call"] = record["invocations"]["exception-call"].replace(
        '"value":{}', '"value":{"n":"\\u0000openai-agents-json:number:1e0"}'
    )

    with pytest.raises(IncompatibleStateError, match="arguments hold numbers") as info:
        translate(js_state, source="js", target="python")
    assert info.value.item == "context.approvalInvocations[0].invocations['exception-call']"
