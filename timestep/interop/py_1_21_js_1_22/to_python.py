"""A JS SDK RunState (@openai/agents, schema 1.22) as the Python SDK's (openai-agents, 1.21)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..fingerprints import python_invocation
from ..keys import LookupKey, lookup_key_for_call, py_lookup_key
from ..ledger import python_ledger
from .common import (
    TOOL_BEHAVIOR_TO_PY,
    agent,
    guardrail,
    refuse,
    refuse_program_caller,
    trace,
)
from .items_to_python import js_item_to_py, js_usage_to_py

__all__ = ["PYTHON_SCHEMA", "js_to_python"]

PYTHON_SCHEMA = "1.21"

# The JS SDK's marker for a number (or an escaped string) inside a canonical fingerprint.
_JSON_TOKEN = "\u0000openai-agents-json:"

_ACTION_GROUPS = {
    "computerActions": "a pending computer-use action",
    "shellActions": "a pending shell call",
    "applyPatchActions": "a pending apply_patch call",
    "mcpApprovalRequests": "a pending hosted MCP approval request",
    "functionToolsNotFound": "a call to a tool the agent does not have",
}


def js_to_python(state: Mapping[str, Any]) -> dict[str, Any]:
    """The Python SDK's serialized RunState for a JS SDK ``JSON.parse(state.toString())``."""
    _refuse_js_only(state)
    items = [
        _run_item(item, f"generatedItems[{index}]")
        for index, item in enumerate(state.get("generatedItems") or [])
    ]
    step = state.get("currentStep") or {}
    interruptions = [
        _run_item(item, f"currentStep.interruptions[{index}]")
        for index, item in enumerate((step.get("data") or {}).get("interruptions") or [])
    ]
    context = state.get("context") or {}
    payload = context.get("context")
    converted: dict[str, Any] = {
        "$schemaVersion": PYTHON_SCHEMA,
        "current_turn": state.get("currentTurn", 0),
        "current_agent": agent(state["currentAgent"], "currentAgent"),
        "original_input": _input(state.get("originalInput", ""), "originalInput"),
        "pending_input": _input(state.get("pendingInput") or [], "pendingInput"),
        "model_responses": [
            _model_response(response, f"modelResponses[{index}]")
            for index, response in enumerate(state.get("modelResponses") or [])
        ],
        "context": {
            "usage": js_usage_to_py(context.get("usage")),
            "approvals": _legacy_approvals(context),
            "tool_invocations": _tool_invocations(items, context),
            # An empty JS context is the JS default, i.e. no context at all.
            "context": dict(payload) if payload else None,
            "context_meta": {
                "original_type": "mapping" if payload else "none",
                "serialized_via": "mapping" if payload else "none",
                "requires_deserializer": False,
                "omitted": False,
            },
        },
        "tool_use_tracker": {
            name: list(tools) for name, tools in (state.get("toolUseTracker") or {}).items()
        },
        "max_turns": state.get("maxTurns"),
        "no_active_agent_run": True,
        "input_guardrail_results": [
            guardrail(result, f"inputGuardrailResults[{index}]")
            for index, result in enumerate(state.get("inputGuardrailResults") or [])
        ],
        "output_guardrail_results": [
            guardrail(result, f"outputGuardrailResults[{index}]")
            for index, result in enumerate(state.get("outputGuardrailResults") or [])
        ],
        "tool_input_guardrail_results": [
            _tool_guardrail(result, f"toolInputGuardrailResults[{index}]")
            for index, result in enumerate(state.get("toolInputGuardrailResults") or [])
        ],
        "tool_output_guardrail_results": [
            _tool_guardrail(result, f"toolOutputGuardrailResults[{index}]")
            for index, result in enumerate(state.get("toolOutputGuardrailResults") or [])
        ],
        "conversation_id": state.get("conversationId"),
        "previous_response_id": state.get("previousResponseId"),
        "auto_previous_response_id": False,
        "reasoning_item_id_policy": state.get("reasoningItemIdPolicy"),
        "nested_history_owned_session_item_refs": [],
        "generated_items": items,
        "current_step": None,
        "last_model_response": (
            _model_response(state["lastModelResponse"], "lastModelResponse")
            if state.get("lastModelResponse")
            else None
        ),
        "last_processed_response": None,
        "current_turn_persisted_item_count": state.get("currentTurnPersistedItemCount") or 0,
        "trace": trace(state.get("trace")),
    }
    approvals = _function_approvals(context)
    if approvals:
        converted["context"]["function_tool_approvals"] = approvals
    if context.get("toolInput") is not None:
        converted["context"]["tool_input"] = context["toolInput"]
    if step.get("type") == "next_step_interruption":
        converted["current_step"] = {
            "type": "next_step_interruption",
            "data": {
                "interruptions": interruptions,
                "response_accepted": False,
                "llm_end_hooks_started": True,
            },
        }
    elif step.get("type") == "next_step_run_again":
        converted["current_step"] = {"type": "next_step_run_again"}
    # Python clears the processed response once a run is final; it is in the items already.
    processed = (
        None if step.get("type") == "next_step_final_output" else state.get("lastProcessedResponse")
    )
    ownership = state.get("currentResponseGeneratedItemOwnership")
    if processed:
        converted["last_processed_response"] = _processed_response(
            processed, interruptions, ownership
        )
    if isinstance(ownership, Mapping):
        converted["current_response_generated_item_ownership"] = {
            "start": ownership["generatedItemStartIndex"],
            "end": ownership["generatedItemEndIndexExclusive"],
            "interruptions": list(ownership.get("interruptionGeneratedItemIndexes") or []),
        }
    return converted


def _refuse_js_only(state: Mapping[str, Any]) -> None:
    context = state.get("context") or {}
    checks: list[tuple[str, bool, str]] = [
        ("sandbox", state.get("sandbox") is not None, "a sandbox session"),
        (
            "pendingSessionWrite",
            state.get("pendingSessionWrite") is not None,
            "a Session write still in flight",
        ),
        (
            "pendingSessionHistoryTransaction",
            state.get("pendingSessionHistoryTransaction") is not None,
            "a Session history transaction still in flight",
        ),
        (
            "pendingAgentToolRuns",
            bool(state.get("pendingAgentToolRuns")),
            "a nested agent-as-tool run paused inside this run",
        ),
        (
            "pendingLegacyCompactionSessionItems",
            bool(state.get("pendingLegacyCompactionSessionItems")),
            "Session compaction still in flight",
        ),
        (
            "currentTurnDeferredSessionItemIndexes",
            bool(state.get("currentTurnDeferredSessionItemIndexes")),
            "Session items held back by an output guardrail",
        ),
        (
            "context.approvals",
            bool(context.get("approvals")),
            "approval decisions for non-function tools",
        ),
        (
            "context.hostedMcpApprovals",
            bool(context.get("hostedMcpApprovals")),
            "hosted MCP approval decisions",
        ),
        (
            "ambiguousToolInvocationCallIds",
            bool(state.get("ambiguousToolInvocationCallIds")),
            "tool calls whose outcome the JS SDK itself could not attribute",
        ),
        (
            "currentStep",
            (state.get("currentStep") or {}).get("type") == "next_step_handoff",
            "a state saved between a handoff and the new agent's first turn",
        ),
    ]
    checks += [
        (
            f"context.approvalInvocations[{index}].approvals",
            bool(record.get("approvals")),
            "approval decisions for non-function tools",
        )
        for index, record in enumerate(context.get("approvalInvocations") or [])
    ]
    for where, present, what in checks:
        if present:
            raise refuse(where, what, "Python")
    processed = state.get("lastProcessedResponse") or {}
    for group, what in _ACTION_GROUPS.items():
        if processed.get(group):
            raise refuse(f"lastProcessedResponse.{group}", what, "Python")
    for index, entry in enumerate(processed.get("functions") or []):
        if entry.get("mcpToolBinding") is not None:
            raise refuse(
                f"lastProcessedResponse.functions[{index}]", "a pending MCP tool call", "Python"
            )


def _input(value: Any, where: str) -> Any:
    if isinstance(value, str):
        return value
    return [js_item_to_py(item, f"{where}[{index}]") for index, item in enumerate(value)]


def _model_response(response: Mapping[str, Any], where: str) -> dict[str, Any]:
    return {
        "usage": js_usage_to_py(response.get("usage")),
        "output": [
            js_item_to_py(item, f"{where}.output[{index}]")
            for index, item in enumerate(response.get("output") or [])
        ],
        "response_id": response.get("responseId"),
        "request_id": response.get("requestId"),
    }


def _run_item(item: Mapping[str, Any], where: str) -> dict[str, Any]:
    kind = item.get("type")
    raw = item.get("rawItem") or {}
    py_raw = js_item_to_py(raw, f"{where}.rawItem")
    if kind in {"message_output_item", "reasoning_item", "handoff_call_item"}:
        return {"type": kind, "raw_item": py_raw, "agent": agent(item["agent"], where)}
    if kind == "tool_call_item" and raw.get("type") == "function_call":
        call = {
            "type": kind,
            "raw_item": py_raw,
            "agent": agent(item["agent"], where),
            "tool_name": raw["name"],
            "tool_origin": {"type": "function"},
        }
        if raw.get("namespace"):
            call["tool_namespace"] = raw["namespace"]
        return call
    if kind == "tool_call_output_item" and raw.get("type") == "function_call_result":
        output: dict[str, Any] = {
            "type": kind,
            "raw_item": py_raw,
            "agent": agent(item["agent"], where),
            "output": item.get("output"),
            "tool_origin": {"type": "function"},
        }
        if item.get("customData"):
            output["custom_data"] = item["customData"]
        return output
    if kind == "handoff_output_item":
        source = agent(item["sourceAgent"], where)
        return {
            "type": kind,
            "raw_item": py_raw,
            "agent": source,
            "source_agent": source,
            "target_agent": agent(item["targetAgent"], where),
        }
    if kind == "tool_approval_item" and raw.get("type") == "function_call":
        key = _state_key_to_lookup(item.get("functionToolStateKey"), raw, where)
        approval: dict[str, Any] = {
            "type": kind,
            "raw_item": py_raw,
            "agent": agent(item["agent"], where),
            "tool_name": item.get("toolName") or raw["name"],
            "tool_lookup_key": py_lookup_key(key),
            "tool_origin": {"type": "function"},
        }
        if raw.get("namespace"):
            approval["tool_namespace"] = raw["namespace"]
        return approval
    if kind == "input_item":
        return {
            "type": kind,
            "raw_item": py_raw,
            "agent": agent(item["agent"], where),
            "input_id": item["inputId"],
        }
    raise refuse(where, f"a run item of type {kind!r}", "Python")


def _state_key_to_lookup(state_key: Any, raw: Mapping[str, Any], where: str) -> LookupKey:
    """A JS ``functionToolStateKey`` (a JSON array string) as a lookup key."""
    if not isinstance(state_key, str):
        return lookup_key_for_call(raw["name"], raw.get("namespace"))
    try:
        parts = json.loads(state_key)
    except ValueError:
        parts = None
    if (
        isinstance(parts, list)
        and all(isinstance(part, str) and part for part in parts)
        and (
            (parts[:1] in (["bare"], ["deferred_top_level"]) and len(parts) == 2)
            or (parts[:1] == ["namespaced"] and len(parts) == 3)
        )
    ):
        return tuple(parts)
    raise refuse(where, f"a tool identity {state_key!r} Timestep does not know", "Python")


def _processed_response(
    processed: Mapping[str, Any], interruptions: Sequence[Mapping[str, Any]], ownership: Any
) -> dict[str, Any]:
    functions = []
    for index, entry in enumerate(processed.get("functions") or []):
        where = f"lastProcessedResponse.functions[{index}]"
        call = js_item_to_py(entry["toolCall"], f"{where}.toolCall")
        tool = entry.get("tool") or {}
        py_tool: dict[str, Any] = {
            "name": tool.get("name") or call["name"],
            "lookupKey": py_lookup_key(lookup_key_for_call(call["name"], call.get("namespace"))),
        }
        if tool.get("description") is not None:
            py_tool["description"] = tool["description"]
        if tool.get("parameters") is not None:
            py_tool["paramsJsonSchema"] = tool["parameters"]
        functions.append({"tool_call": call, "tool": py_tool})
    handoffs = [
        {
            "tool_call": js_item_to_py(
                entry["toolCall"], f"lastProcessedResponse.handoffs[{index}].toolCall"
            ),
            "handoff": {"tool_name": (entry.get("handoff") or {}).get("toolName")},
        }
        for index, entry in enumerate(processed.get("handoffs") or [])
    ]
    converted: dict[str, Any] = {
        "new_items": [
            _run_item(item, f"lastProcessedResponse.newItems[{index}]")
            for index, item in enumerate(processed.get("newItems") or [])
        ],
        "tools_used": list(processed.get("toolsUsed") or []),
        "functions": functions,
        "computer_actions": [],
        "custom_tool_actions": [],
        "local_shell_actions": [],
        "shell_actions": [],
        "apply_patch_actions": [],
        "handoffs": handoffs,
        "mcp_approval_requests": [],
        # Python keeps the pending approvals with the response that raised them.
        "interruptions": list(interruptions),
        "mcp_tool_bindings": {},
    }
    if isinstance(ownership, Mapping) and isinstance(
        ownership.get("toolOutputGuardrailResultStartIndex"), int
    ):
        converted["tool_output_guardrail_result_start"] = ownership[
            "toolOutputGuardrailResultStartIndex"
        ]
    return converted


def _function_approvals(context: Mapping[str, Any]) -> list[dict[str, Any]]:
    approvals: list[dict[str, Any]] = []
    for index, entry in enumerate(context.get("functionApprovals") or []):
        where = f"context.functionApprovals[{index}]"
        owner = agent({"name": entry["agentIdentity"]}, where)
        for state_key, record in (entry.get("approvals") or {}).items():
            key = _state_key_to_lookup(state_key, {}, where)
            decision: dict[str, Any] = {
                "approved": record.get("approved", []),
                "rejected": record.get("rejected", []),
            }
            if record.get("messages"):
                decision["rejection_messages"] = dict(record["messages"])
            if record.get("stickyRejectMessage") is not None:
                decision["sticky_rejection_message"] = record["stickyRejectMessage"]
            if decision["approved"] is True or decision["rejected"] is True:
                # Python scopes an "always" decision to the tool it was made for.
                decision["sticky_scope"] = python_invocation({"type": "function_call"}, key)[0]
            approvals.append({"agent": owner, "tool_key": _approval_key(key), "decision": decision})
    return approvals


def _legacy_approvals(context: Mapping[str, Any]) -> dict[str, Any]:
    """JS decisions recorded by tool name only (older JS SDKs) as Python's, also by name."""
    approvals: dict[str, Any] = {}
    for name, record in (context.get("legacyFunctionApprovals") or {}).items():
        where = f"context.legacyFunctionApprovals[{name!r}]"
        if record.get("approved") is True or record.get("rejected") is True:
            raise refuse(
                where,
                "an 'always' decision an older JS SDK recorded by tool name only (the JS SDK "
                "applies it to every agent's tool of that name, the Python SDK to none)",
                "Python",
            )
        decision: dict[str, Any] = {
            "approved": list(record.get("approved") or []),
            "rejected": list(record.get("rejected") or []),
        }
        if record.get("messages"):
            decision["rejection_messages"] = dict(record["messages"])
        approvals[name] = decision
    return approvals


def _tool_invocations(items: Sequence[Mapping[str, Any]], context: Mapping[str, Any]) -> Any:
    """Python's ledger of the calls in ``items`` and of every call a decision is bound to.

    A decision can be made before its call is in the items (``state.approve`` on a call the
    model makes on resume); the JS SDK binds it to the call's fingerprint, and without the
    same binding in its ledger the Python SDK would not apply it.
    """
    ledger = python_ledger(items, "generatedItems")
    for index, record in enumerate(context.get("approvalInvocations") or []):
        for call_id, fingerprint in (record.get("invocations") or {}).items():
            if call_id not in ledger:
                where = f"context.approvalInvocations[{index}].invocations[{call_id!r}]"
                ledger[call_id] = _decided_invocation(fingerprint, where)
    return ledger


def _decided_invocation(fingerprint: Any, where: str) -> dict[str, Any]:
    """Python's ledger record of the call a JS fingerprint describes (a direct function call)."""
    try:
        call = json.loads(fingerprint) if isinstance(fingerprint, str) else None
    except ValueError:
        call = None
    if (
        not isinstance(call, Mapping)
        or call.get("type") != "function_call"
        or not isinstance(call.get("payload"), Mapping)
        or not isinstance(call.get("toolName"), str)
    ):
        raise refuse(
            where, f"a decision bound to a call Timestep cannot read ({fingerprint!r})", "Python"
        )
    refuse_program_caller(call.get("caller"), where, "Python")
    if call["toolName"].startswith("handoff:"):
        raise refuse(where, "a decision on a handoff", "Python")
    key = _state_key_to_lookup(call["toolName"], {}, where)
    payload = call["payload"]
    if payload.get("format") == "raw" and isinstance(payload.get("value"), str):
        arguments = payload["value"]
    elif payload.get("format") == "json" and not _has_token(payload.get("value")):
        arguments = payload.get("value")
    else:
        raise refuse(
            where,
            "a decision on a call (not yet in the run's items) whose arguments hold numbers: "
            "the JS SDK keeps only their canonical value, and the Python SDK's fingerprint "
            "needs their spelling",
            "Python",
        )
    scope, python_fingerprint = python_invocation(
        {"type": "function_call", "arguments": arguments}, key
    )
    return {
        "type": "function_call",
        "approval_scope": scope,
        "fingerprint": python_fingerprint,
        "executed": False,
        "completed": False,
    }


def _has_token(value: Any) -> bool:
    if isinstance(value, str):
        return value.startswith(_JSON_TOKEN)
    if isinstance(value, Mapping):
        return any(_has_token(k) or _has_token(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_token(item) for item in value)
    return False


def _approval_key(key: LookupKey) -> str:
    """Python's approval key of a function tool: ``name``, ``namespace.name``, ..."""
    if key[0] == "namespaced":
        return f"{key[1]}.{key[2]}"
    if key[0] == "deferred_top_level":
        return f"deferred_top_level:{key[1]}"
    return key[1]


def _tool_guardrail(result: Mapping[str, Any], where: str) -> dict[str, Any]:
    output = result.get("output") or {}
    behavior = dict(output.get("behavior") or {"type": "allow"})
    kind = TOOL_BEHAVIOR_TO_PY.get(behavior.get("type", ""))
    if kind is None:
        raise refuse(where, f"a tool guardrail behavior {behavior.get('type')!r}", "Python")
    behavior["type"] = kind
    return {
        "guardrail": dict(result["guardrail"]),
        "output": {"outputInfo": output.get("outputInfo"), "behavior": behavior},
    }
