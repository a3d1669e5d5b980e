"""A Python SDK RunState (openai-agents, schema 1.21) as the JS SDK's (@openai/agents, 1.22)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from ...errors import IncompatibleStateError
from ..fingerprints import js_fingerprint, js_state_key
from ..keys import LookupKey, js_lookup_key, lookup_key_for_call
from ..ledger import js_ledger, js_tool_name
from .common import TOOL_BEHAVIOR_TO_JS, agent, guardrail, refuse, trace
from .items_to_js import py_item_to_js, py_usage_to_js

__all__ = ["JS_SCHEMA", "python_to_js"]

JS_SCHEMA = "1.22"

_ACTION_GROUPS = {
    "computer_actions": "a pending computer-use action",
    "custom_tool_actions": "a pending custom tool call",
    "local_shell_actions": "a pending local shell call",
    "shell_actions": "a pending shell call",
    "apply_patch_actions": "a pending apply_patch call",
    "mcp_approval_requests": "a pending hosted MCP approval request",
}


def python_to_js(state: Mapping[str, Any]) -> dict[str, Any]:
    """The JS SDK's serialized RunState for a Python SDK ``RunState.to_json()`` object."""
    _refuse_python_only(state)
    names = _call_names(state)
    rejected = _rejected_calls(state)
    items = [
        _run_item(item, f"generated_items[{index}]", names, rejected)
        for index, item in enumerate(state.get("generated_items") or [])
    ]
    step = state.get("current_step") or {}
    interrupted = step.get("type") == "next_step_interruption"
    final_output = _final_output(state, items)
    interruptions = [
        _run_item(item, f"current_step.interruptions[{index}]", names, rejected)
        for index, item in enumerate((step.get("data") or {}).get("interruptions") or [])
    ]
    tool_output_results = [
        _tool_guardrail(result, f"tool_output_guardrail_results[{index}]")
        for index, result in enumerate(state.get("tool_output_guardrail_results") or [])
    ]
    converted: dict[str, Any] = {
        "$schemaVersion": JS_SCHEMA,
        "currentTurn": state.get("current_turn", 0),
        "currentAgent": agent(state["current_agent"], "current_agent"),
        "originalInput": _input(state.get("original_input", ""), "original_input", names),
        "modelResponses": [
            _model_response(response, f"model_responses[{index}]", names)
            for index, response in enumerate(state.get("model_responses") or [])
        ],
        "context": _context(state, items, interruptions),
        "toolUseTracker": dict(state.get("tool_use_tracker") or {}),
        "maxTurns": state.get("max_turns"),
        # A paused or finished JS run is still inside its agent's run (no second agent_start).
        "noActiveAgentRun": not interrupted and final_output is None,
        "inputGuardrailResults": [
            guardrail(result, f"input_guardrail_results[{index}]")
            for index, result in enumerate(state.get("input_guardrail_results") or [])
        ],
        # Python runs the starting agent's input guardrails to completion within the first
        # turn, so any state past turn 0 has passed them.
        "initialInputGuardrailsCompleted": state.get("current_turn", 0) > 0,
        "outputGuardrailResults": [
            guardrail(result, f"output_guardrail_results[{index}]")
            for index, result in enumerate(state.get("output_guardrail_results") or [])
        ],
        "toolInputGuardrailResults": [
            _tool_guardrail(result, f"tool_input_guardrail_results[{index}]")
            for index, result in enumerate(state.get("tool_input_guardrail_results") or [])
        ],
        "toolOutputGuardrailResults": tool_output_results,
        "currentTurnInProgress": interrupted,
        "generatedItems": items,
        "pendingAgentToolRuns": {},
        "pendingAgentToolRunAliases": {},
        "currentTurnPersistedItemCount": state.get("current_turn_persisted_item_count") or 0,
        **js_ledger(items).to_json(),
        "trace": trace(state.get("trace")),
    }
    if state.get("pending_input"):
        converted["pendingInput"] = _input(state["pending_input"], "pending_input", names)
    if interrupted:
        converted["currentStep"] = {
            "type": "next_step_interruption",
            "data": {"interruptions": interruptions},
        }
    elif step.get("type") == "next_step_run_again":
        converted["currentStep"] = {"type": "next_step_run_again"}
    elif final_output is not None:
        converted["currentStep"] = {"type": "next_step_final_output", "output": final_output}
    if state.get("last_model_response"):
        converted["lastModelResponse"] = _model_response(
            state["last_model_response"], "last_model_response", names
        )
    processed = state.get("last_processed_response")
    if processed:
        converted["lastProcessedResponse"] = _processed_response(processed, names, rejected)
    ownership = state.get("current_response_generated_item_ownership")
    if isinstance(ownership, Mapping):
        start = (processed or {}).get("tool_output_guardrail_result_start")
        converted["currentResponseGeneratedItemOwnership"] = {
            "generatedItemStartIndex": ownership["start"],
            "generatedItemEndIndexExclusive": ownership["end"],
            "interruptionGeneratedItemIndexes": list(ownership.get("interruptions") or []),
            "toolOutputGuardrailResultStartIndex": (
                start if isinstance(start, int) else len(tool_output_results)
            ),
        }
    for py_name, js_name in (
        ("conversation_id", "conversationId"),
        ("previous_response_id", "previousResponseId"),
        ("reasoning_item_id_policy", "reasoningItemIdPolicy"),
    ):
        if state.get(py_name) is not None:
            converted[js_name] = state[py_name]
    return converted


def _final_output(state: Mapping[str, Any], items: Sequence[Mapping[str, Any]]) -> str | None:
    """The final output of a finished Python run (which keeps no step once it is done).

    A Python state has no current step both before its first turn and after its last; a run
    that finished ends with the current agent's message, which JS records as the final output.
    """
    if state.get("current_step") or state.get("last_processed_response") or not items:
        return None
    last = items[-1]
    if last["type"] != "message_output_item" or last["agent"] != agent(
        state["current_agent"], "current_agent"
    ):
        return None
    return "".join(
        part.get("text", "")
        for part in last["rawItem"].get("content") or []
        if part.get("type") == "output_text"
    )


def _refuse_python_only(state: Mapping[str, Any]) -> None:
    context = state.get("context") or {}
    checks: list[tuple[str, bool, str]] = [
        ("sandbox", state.get("sandbox") is not None, "a sandbox session"),
        (
            "pending_session_write",
            state.get("pending_session_write") is not None,
            "a Session write still in flight",
        ),
        (
            "nested_history_owned_session_item_refs",
            bool(state.get("nested_history_owned_session_item_refs")),
            "nested agent-tool history owned by a Session",
        ),
        (
            "auto_previous_response_id",
            bool(state.get("auto_previous_response_id")),
            "automatic previous_response_id chaining",
        ),
        (
            "terminal_unrecoverable",
            bool(state.get("terminal_unrecoverable")),
            "a finished turn not yet persisted to its Session",
        ),
        (
            "context.hosted_mcp_approvals",
            bool(context.get("hosted_mcp_approvals")),
            "hosted MCP approval decisions",
        ),
    ]
    for where, present, what in checks:
        if present:
            raise refuse(where, what, "JS")
    processed = state.get("last_processed_response") or {}
    for group, what in _ACTION_GROUPS.items():
        if processed.get(group):
            raise refuse(f"last_processed_response.{group}", what, "JS")
    for index, entry in enumerate(processed.get("functions") or []):
        if entry.get("agent_run_state") is not None:
            raise refuse(
                f"last_processed_response.functions[{index}]",
                "a nested agent-as-tool run paused inside this run",
                "JS",
            )
    if processed.get("mcp_tool_bindings"):
        raise refuse("last_processed_response.mcp_tool_bindings", "a pending MCP tool call", "JS")
    if processed.get("handoffs"):
        raise refuse(
            "last_processed_response.handoffs",
            "a handoff requested in the same turn as a pending approval (the Python state "
            "does not record its target agent)",
            "JS",
        )


def _call_names(state: Mapping[str, Any]) -> dict[str, str]:
    names: dict[str, str] = {}
    for raw in _raw_items(state):
        if raw.get("type") == "function_call" and isinstance(raw.get("call_id"), str):
            names.setdefault(raw["call_id"], raw.get("name", ""))
    return names


def _raw_items(state: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for source in (state.get("original_input"), state.get("pending_input")):
        if isinstance(source, list):
            yield from (item for item in source if isinstance(item, Mapping))
    for response in state.get("model_responses") or []:
        yield from response.get("output") or []
    for item in state.get("generated_items") or []:
        yield item.get("raw_item") or {}
    for item in (state.get("last_processed_response") or {}).get("new_items") or []:
        yield item.get("raw_item") or {}


def _rejected_calls(state: Mapping[str, Any]) -> set[str]:
    rejected: set[str] = set()
    for entry in (state.get("context") or {}).get("function_tool_approvals") or []:
        decision = entry.get("decision") or {}
        if isinstance(decision.get("rejected"), list):
            rejected.update(decision["rejected"])
    return rejected


def _input(value: Any, where: str, names: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return value
    return [py_item_to_js(item, f"{where}[{index}]", names) for index, item in enumerate(value)]


def _model_response(
    response: Mapping[str, Any], where: str, names: Mapping[str, str]
) -> dict[str, Any]:
    converted: dict[str, Any] = {
        "usage": py_usage_to_js(response.get("usage")),
        "output": [
            py_item_to_js(item, f"{where}.output[{index}]", names)
            for index, item in enumerate(response.get("output") or [])
        ],
    }
    if response.get("response_id") is not None:
        converted["responseId"] = response["response_id"]
    if response.get("request_id") is not None:
        converted["requestId"] = response["request_id"]
    return converted


def _run_item(
    item: Mapping[str, Any], where: str, names: Mapping[str, str], rejected: set[str]
) -> dict[str, Any]:
    kind = item.get("type")
    raw = item.get("raw_item") or {}
    _refuse_foreign_origin(item, where)
    js_raw = py_item_to_js(raw, f"{where}.raw_item", names)
    if kind in {"message_output_item", "reasoning_item", "handoff_call_item"} or (
        kind == "tool_call_item" and raw.get("type") == "function_call"
    ):
        return {"type": kind, "rawItem": js_raw, "agent": agent(item["agent"], where)}
    if kind == "tool_call_output_item" and raw.get("type") == "function_call_output":
        converted: dict[str, Any] = {
            "type": kind,
            "rawItem": js_raw,
            "agent": agent(item["agent"], where),
            "output": item.get("output"),
        }
        # JS marks outputs its tools produced; a rejection message was never executed.
        if raw.get("call_id") not in rejected:
            converted["executionStatus"] = "executed"
        if item.get("custom_data"):
            converted["customData"] = item["custom_data"]
        return converted
    if kind == "handoff_output_item":
        return {
            "type": kind,
            "rawItem": js_raw,
            "sourceAgent": agent(item.get("source_agent") or item["agent"], where),
            "targetAgent": agent(item["target_agent"], where),
        }
    if kind == "tool_approval_item" and raw.get("type") == "function_call":
        key = (
            js_lookup_key(item["tool_lookup_key"], where)
            if item.get("tool_lookup_key") is not None
            else lookup_key_for_call(raw["name"], raw.get("namespace"))
        )
        return {
            "type": kind,
            "rawItem": js_raw,
            "agent": agent(item["agent"], where),
            "toolName": item.get("tool_name") or raw["name"],
            "functionToolStateKey": js_state_key(key),
        }
    if kind == "input_item":
        return {
            "type": kind,
            "rawItem": js_raw,
            "agent": agent(item["agent"], where),
            "inputId": item["input_id"],
        }
    raise refuse(where, f"a run item of type {kind!r}", "JS")


def _refuse_foreign_origin(item: Mapping[str, Any], where: str) -> None:
    origin = item.get("tool_origin")
    if isinstance(origin, Mapping) and origin.get("type") not in (None, "function"):
        server = f" ({origin['mcp_server_name']})" if origin.get("mcp_server_name") else ""
        raise refuse(
            where,
            f"a call to a {origin['type']} tool{server}",
            "JS",
            "Only plain function tools translate; resume this run in the SDK that saved it.",
        )


def _processed_response(
    processed: Mapping[str, Any], names: Mapping[str, str], rejected: set[str]
) -> dict[str, Any]:
    functions = []
    for index, entry in enumerate(processed.get("functions") or []):
        where = f"last_processed_response.functions[{index}]"
        tool = entry.get("tool") or {}
        js_tool: dict[str, Any] = {"type": "function", "name": tool.get("name")}
        if tool.get("description") is not None:
            js_tool["description"] = tool["description"]
        if tool.get("paramsJsonSchema") is not None:
            js_tool["parameters"] = tool["paramsJsonSchema"]
        functions.append(
            {
                "toolCall": py_item_to_js(entry["tool_call"], f"{where}.tool_call", names),
                "tool": js_tool,
                # A plain function tool, not one served by an MCP server.
                "mcpToolBinding": None,
            }
        )
    return {
        "newItems": [
            _run_item(item, f"last_processed_response.new_items[{index}]", names, rejected)
            for index, item in enumerate(processed.get("new_items") or [])
        ],
        "toolsUsed": list(processed.get("tools_used") or []),
        "handoffs": [],
        "functions": functions,
        "functionToolsNotFound": [],
        "computerActions": [],
        "shellActions": [],
        "applyPatchActions": [],
        "mcpApprovalRequests": [],
    }


def _context(
    state: Mapping[str, Any], items: Sequence[Mapping[str, Any]], pending: Sequence[Any]
) -> dict[str, Any]:
    context = state.get("context") or {}
    payload = context.get("context")
    if payload is not None and not isinstance(payload, Mapping):
        raise refuse("context.context", "a run context that is not a JSON object", "JS")
    calls = _calls_by_id([*items, *pending])
    function_approvals: list[dict[str, Any]] = []
    invocations: dict[str, dict[str, str]] = {}
    for index, entry in enumerate(context.get("function_tool_approvals") or []):
        where = f"context.function_tool_approvals[{index}]"
        owner = agent(entry["agent"], where)["name"]
        decision = entry.get("decision") or {}
        key = js_state_key(_lookup_key_from_approval_key(entry["tool_key"]))
        record: dict[str, Any] = {
            "approved": decision.get("approved", []),
            "rejected": decision.get("rejected", []),
        }
        if decision.get("rejection_messages"):
            record["messages"] = dict(decision["rejection_messages"])
        if decision.get("sticky_rejection_message") is not None:
            record["stickyRejectMessage"] = decision["sticky_rejection_message"]
        _merge_approval(function_approvals, owner, key, record)
        # The JS SDK binds every per-call decision to the fingerprint of its call.
        for call_id in _per_call_ids(decision):
            call = calls.get((owner, call_id))
            if call is None:
                raise IncompatibleStateError(
                    f"Cannot translate {where}: it decides tool call {call_id!r}, which is not "
                    "in the run's items, and the JS SDK binds every decision to its call. "
                    "Resume this run in the SDK that saved it.",
                    item=where,
                )
            invocations.setdefault(owner, {})[call_id] = js_fingerprint(
                js_tool_name(call), call["rawItem"]
            )
    legacy = _legacy_approvals(context, calls, invocations)
    converted: dict[str, Any] = {
        "usage": py_usage_to_js(context.get("usage")),
        "approvals": {},
        "approvalInvocations": [
            {"agentIdentity": owner, "invocations": bound, "approvals": {}}
            for owner, bound in invocations.items()
        ],
        "context": dict(payload or {}),
    }
    if function_approvals:
        converted["functionApprovals"] = function_approvals
    if legacy:
        converted["legacyFunctionApprovals"] = legacy
    if context.get("tool_input") is not None:
        converted["toolInput"] = context["tool_input"]
    return converted


def _legacy_approvals(
    context: Mapping[str, Any],
    calls: Mapping[tuple[str, str], Mapping[str, Any]],
    invocations: dict[str, dict[str, str]],
) -> dict[str, Any]:
    """Decisions an older Python SDK recorded by tool name only, as the JS SDK's legacy ones.

    A decision on a call in the run is bound to that call, as JS requires. A rejection of a
    call the Python SDK bound to no invocation crosses as it is: the JS SDK applies it when the
    call comes (Python 0.24 asks again), the cautious reading of what was decided; an approval
    of such a call is refused. One on a call Python bound by digest only cannot be bound in JS,
    which needs the call's arguments.
    """
    owners = {call_id: (owner, call) for (owner, call_id), call in calls.items()}
    bound = context.get("tool_invocations") or {}
    legacy: dict[str, Any] = {}
    for name, decision in (context.get("approvals") or {}).items():
        where = f"context.approvals[{name!r}]"
        if decision.get("approved") is True or decision.get("rejected") is True:
            raise refuse(
                where,
                "an 'always' decision an older Python SDK recorded by tool name only (the "
                "Python SDK no longer applies it to function tools, the JS SDK would apply it "
                "to every agent's tool of that name)",
                "JS",
            )
        for call_id in _per_call_ids(decision):
            if call_id in owners:
                owner, call = owners[call_id]
                invocations.setdefault(owner, {})[call_id] = js_fingerprint(
                    js_tool_name(call), call["rawItem"]
                )
            elif call_id not in bound and call_id in (decision.get("approved") or []):
                raise refuse(
                    where,
                    f"an approval of tool call {call_id!r} bound to no call (the Python SDK asks "
                    "again when that call comes, the JS SDK would run any call with that id)",
                    "JS",
                )
            elif call_id in bound:
                raise refuse(
                    where,
                    f"a decision on tool call {call_id!r}, which is not in the run's items (the "
                    "Python state keeps only a digest of its arguments, and the JS SDK binds a "
                    "decision to the arguments themselves)",
                    "JS",
                )
        record: dict[str, Any] = {
            "approved": list(decision.get("approved") or []),
            "rejected": list(decision.get("rejected") or []),
        }
        if decision.get("rejection_messages"):
            record["messages"] = dict(decision["rejection_messages"])
        legacy[name] = record
    return legacy


def _calls_by_id(
    items: Iterable[Mapping[str, Any]],
) -> dict[tuple[str, str], Mapping[str, Any]]:
    calls: dict[tuple[str, str], Mapping[str, Any]] = {}
    for item in items:
        raw = item.get("rawItem") or {}
        if item.get("type") not in {"tool_call_item", "tool_approval_item"} or not raw.get(
            "callId"
        ):
            continue
        key = (item["agent"]["name"], raw["callId"])
        # The approval item carries the resolved tool key; prefer it over the bare call.
        if item["type"] == "tool_approval_item" or key not in calls:
            calls[key] = item
    return calls


def _merge_approval(
    approvals: list[dict[str, Any]], owner: str, key: str, record: dict[str, Any]
) -> None:
    for entry in approvals:
        if entry["agentIdentity"] == owner:
            entry["approvals"][key] = record
            return
    approvals.append({"agentIdentity": owner, "approvals": {key: record}})


def _per_call_ids(decision: Mapping[str, Any]) -> list[str]:
    return [
        call_id
        for field in ("approved", "rejected")
        if isinstance(decision.get(field), list)
        for call_id in decision[field]
    ]


def _lookup_key_from_approval_key(tool_key: str) -> LookupKey:
    """The Python approval key of a function tool (``name``, ``ns.name``) as a lookup key."""
    if tool_key.startswith("deferred_top_level:"):
        return ("deferred_top_level", tool_key.removeprefix("deferred_top_level:"))
    namespace, dot, name = tool_key.rpartition(".")
    return ("namespaced", namespace, name) if dot and namespace and name else ("bare", tool_key)


def _tool_guardrail(result: Mapping[str, Any], where: str) -> dict[str, Any]:
    output = result.get("output") or {}
    behavior = dict(output.get("behavior") or {"type": "allow"})
    kind = TOOL_BEHAVIOR_TO_JS.get(behavior.get("type", ""))
    if kind is None:
        raise refuse(where, f"a tool guardrail behavior {behavior.get('type')!r}", "JS")
    behavior["type"] = kind
    converted_output: dict[str, Any] = {"behavior": behavior}
    if output.get("outputInfo") is not None:
        converted_output["outputInfo"] = output["outputInfo"]
    return {"guardrail": dict(result["guardrail"]), "output": converted_output}
