"""Translating saved RunStates between the Python and JS SDKs, without Node.

States come from the real Python SDK (the personal-assistant scenario run in-process) and from
the real JS SDK (tests/fixtures/js_*.json, written by tests/js/step.mjs and kept fresh by
tests/test_cross_language.py). End-to-end resumes in Node are in tests/test_cross_language.py.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from agents import RunState

from interop_assistant import (
    ASK_BERKELEY,
    call,
    js_fixture,
    personal_assistant,
    python_state,
    resume,
)
from timestep.interop import translate
from timestep.interop.fingerprints import js_fingerprint

OAKLAND_THEN_BERKELEY = [
    call("get_weather", {"city": "Oakland"}, "call-oak"),
    call("get_weather", {"city": "Berkeley"}, "call-berk"),
]


async def test_a_paused_python_run_becomes_the_state_the_js_sdk_writes() -> None:
    native_js = js_fixture("js_paused_after_oakland")

    js = translate(await python_state([OAKLAND_THEN_BERKELEY]), source="python", target="js")

    assert js["$schemaVersion"] == "1.22"
    assert (js["currentAgent"], js["currentTurn"], js["maxTurns"]) == ({"name": "Weather"}, 2, 10)
    # The ledger that stops Oakland from running again matches the JS SDK's, call for call.
    for field in ("completedToolInvocations", "completedToolInvocationEvidence"):
        assert js[field] == native_js[field], field
    assert js["ambiguousToolInvocationCallIds"] == []
    assert [i["type"] for i in js["generatedItems"]] == [
        i["type"] for i in native_js["generatedItems"]
    ]
    assert js["currentStep"]["data"]["interruptions"][0]["functionToolStateKey"] == (
        '["bare","get_weather"]'
    )
    oakland = js["generatedItems"][4]
    assert oakland["rawItem"] == {
        "type": "function_call_result",
        "name": "get_weather",
        "callId": "call-oak",
        "status": "completed",
        "output": {"type": "text", "text": "Sunny, 21C in Oakland"},
    }
    assert oakland["executionStatus"] == "executed"
    assert (
        js["currentResponseGeneratedItemOwnership"]
        == (native_js["currentResponseGeneratedItemOwnership"])
    )
    assert js["inputGuardrailResults"] == native_js["inputGuardrailResults"]
    assert js["initialInputGuardrailsCompleted"] is True
    assert (js["noActiveAgentRun"], js["currentTurnInProgress"]) == (False, True)
    assert js["context"]["usage"]["requests"] == 2


async def test_a_paused_js_run_becomes_the_state_the_python_sdk_writes() -> None:
    native_python = await python_state([OAKLAND_THEN_BERKELEY])

    python = translate(js_fixture("js_paused_after_oakland"), source="js", target="python")

    assert python["$schemaVersion"] == "1.21"
    # Python's ledger (SHA-256 scopes and fingerprints) is recomputed exactly.
    assert python["context"]["tool_invocations"] == native_python["context"]["tool_invocations"]
    assert (
        python["current_response_generated_item_ownership"]
        == (native_python["current_response_generated_item_ownership"])
    )
    assert [i["type"] for i in python["generated_items"]] == [
        i["type"] for i in native_python["generated_items"]
    ]
    pending = python["current_step"]["data"]["interruptions"][0]
    assert pending["tool_lookup_key"] == {"kind": "bare", "name": "get_weather"}
    assert python["context"]["usage"]["requests"] == 2
    assert python["context"]["context"] is None  # the JS default context is empty

    resumed = await resume(python)
    assert resumed["ran"] == ["Berkeley"]  # Oakland already ran in Node
    assert resumed["seen"] == ["Sunny, 21C in Oakland", "Sunny, 21C in Berkeley"]


async def test_a_finished_js_run_reads_as_python_history() -> None:
    python = translate(js_fixture("js_finished_after_reject"), source="js", target="python")

    assistant, _ = personal_assistant({}, [])
    state = await RunState.from_json(assistant, python)
    assert state.get_interruptions() == []
    assert python["current_step"] is None and python["last_processed_response"] is None
    outputs = [i["raw_item"]["output"] for i in python["generated_items"] if "output" in i]
    assert outputs[-2:] == ["Sunny, 21C in Oakland", "Not allowed by the operator."]
    assert python["output_guardrail_results"][0]["agent"] == {"name": "Weather"}
    assert python["context"]["function_tool_approvals"] == [
        {
            "agent": {"name": "Weather"},
            "tool_key": "get_weather",
            "decision": {
                "approved": [],
                "rejected": ["call-berk"],
                "rejection_messages": {"call-berk": "Not allowed by the operator."},
            },
        }
    ]


@pytest.mark.parametrize("decision", ["approve", "reject"])
async def test_a_decision_recorded_before_saving_crosses_over(decision: str) -> None:
    js = translate(await python_state([ASK_BERKELEY], decision), source="python", target="js")

    record = js["context"]["functionApprovals"][0]
    assert record["agentIdentity"] == "Weather"
    decided = record["approvals"]['["bare","get_weather"]']
    assert decided[f"{decision}d" if decision == "approve" else "rejected"] == ["call-berk"]
    if decision == "reject":
        assert decided["messages"] == {"call-berk": "No."}
    call_item = js["currentStep"]["data"]["interruptions"][0]
    assert js["context"]["approvalInvocations"] == [
        {
            "agentIdentity": "Weather",
            "invocations": {
                "call-berk": js_fingerprint('["bare","get_weather"]', call_item["rawItem"])
            },
            "approvals": {},
        }
    ]
    back = translate(js, source="js", target="python")
    resumed = await resume(back, decision=None)
    assert resumed["ran"] == (["Berkeley"] if decision == "approve" else [])
    assert resumed["seen"] == (["Sunny, 21C in Berkeley"] if decision == "approve" else ["No."])


# ---------------------------------------------------------------------------------------------
# Properties over a family of runs

CITIES = ["Oakland", "Paris", "São Paulo", "東京", 'Quote "City"']


def _scenarios() -> list[tuple[str, list[Any], str | None, str]]:
    """(name, weather reply, decision recorded before saving, decision on resume)."""
    found = []
    for ran_first in range(3):
        for recorded in (None, "approve", "always", "reject"):
            for on_resume in ("approve", "reject"):
                if recorded is not None and on_resume != recorded.replace("always", "approve"):
                    continue
                reply = [
                    call("get_weather", {"city": CITIES[(ran_first + i) % 5]}, f"c{i}-ü")
                    for i in range(ran_first)
                ] + [call("get_weather", {"city": "Berkeley"}, "call-berk")]
                name = f"{ran_first} ran first, recorded {recorded}, resume {on_resume}"
                found.append((name, [reply], recorded, on_resume))
    return found


@pytest.mark.parametrize(
    ("weather", "recorded", "on_resume"),
    [s[1:] for s in _scenarios()],
    ids=[s[0] for s in _scenarios()],
)
async def test_python_to_js_to_python_resumes_like_the_original(
    weather: list[Any], recorded: str | None, on_resume: str
) -> None:
    original = await python_state(weather, recorded)
    js = translate(original, source="python", target="js")
    back = translate(js, source="js", target="python")

    decision = None if recorded else on_resume
    assert await resume(back, decision) == await resume(original, decision)
    # A second round trip changes nothing: translation reaches a fixed point at once.
    assert translate(back, source="python", target="js") == js


async def test_js_to_python_to_js_is_a_fixed_point() -> None:
    for name in ("js_paused_after_oakland", "js_finished_after_reject"):
        python = translate(js_fixture(name), source="js", target="python")
        js = translate(python, source="python", target="js")
        assert translate(js, source="js", target="python") == python, name


async def test_a_python_state_translates_without_changing_its_input() -> None:
    original = await python_state([OAKLAND_THEN_BERKELEY])
    kept = copy.deepcopy(original)
    translate(original, source="python", target="js")
    assert original == kept
