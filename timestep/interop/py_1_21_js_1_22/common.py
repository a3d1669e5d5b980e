"""What both directions of the 1.21 <-> 1.22 translation share: the refusal error, agent
references, guardrail results, traces, and helpers for the fields of raw items."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ...errors import IncompatibleStateError

__all__ = [
    "TOOL_BEHAVIOR_TO_JS",
    "TOOL_BEHAVIOR_TO_PY",
    "UNSUPPORTED_ITEMS",
    "agent",
    "extra_fields",
    "guardrail",
    "merge_provider_data",
    "merged_numbers",
    "numeric_records",
    "refuse",
    "refuse_program_caller",
    "trace",
    "type_of",
]

TOOL_BEHAVIOR_TO_JS = {
    "allow": "allow",
    "reject_content": "rejectContent",
    "raise_exception": "throwException",
}
"""Tool guardrail behaviours: Python ``type`` -> JS ``type``."""
TOOL_BEHAVIOR_TO_PY = {js: py for py, js in TOOL_BEHAVIOR_TO_JS.items()}
"""Tool guardrail behaviours: JS ``type`` -> Python ``type``."""

UNSUPPORTED_ITEMS = {
    "computer_call": "a computer-use tool call",
    "computer_call_output": "a computer-use tool output",
    "computer_call_result": "a computer-use tool output",
    "shell_call": "a shell tool call",
    "shell_call_output": "a shell tool output",
    "local_shell_call": "a local shell tool call",
    "local_shell_call_output": "a local shell tool output",
    "apply_patch_call": "an apply_patch tool call",
    "apply_patch_call_output": "an apply_patch tool output",
    "custom_tool_call": "a custom (freeform) tool call",
    "custom_tool_call_output": "a custom (freeform) tool output",
    "hosted_tool_call": "a hosted tool call",
    "web_search_call": "a hosted web search call",
    "file_search_call": "a hosted file search call",
    "code_interpreter_call": "a hosted code interpreter call",
    "image_generation_call": "a hosted image generation call",
    "mcp_call": "a hosted MCP call",
    "mcp_list_tools": "a hosted MCP tool listing",
    "mcp_approval_request": "a hosted MCP approval request",
    "mcp_approval_response": "a hosted MCP approval response",
    "tool_search_call": "a tool search call",
    "tool_search_output": "a tool search output",
    "compaction": "a compaction item",
    "program": "a programmatic tool calling program",
    "program_output": "a programmatic tool calling output",
    "item_reference": "an item reference",
}
"""Raw item types one SDK holds that Timestep does not translate, as errors name them."""


def refuse(where: str, what: str, target: str, fix: str = "") -> IncompatibleStateError:
    """The error for something at ``where`` that the ``target`` SDK cannot hold."""
    return IncompatibleStateError(
        f"Cannot translate {where}: {what} has no counterpart in the {target} Agents SDK, and "
        f"Timestep never drops part of a run. {fix or 'Resume this run in the SDK that saved it.'}",
        item=where,
    )


def agent(reference: Any, where: str) -> dict[str, str]:
    """An agent reference by name; the SDKs number same-name agents differently, so refuse."""
    if isinstance(reference, Mapping) and isinstance(reference.get("name"), str):
        identity = reference.get("identity")
        if identity is not None and identity != reference["name"]:
            raise refuse(
                where,
                f"an agent identified as {identity!r} (several agents share the name "
                f"{reference['name']!r})",
                "other",
                "Give every agent in the graph a unique name.",
            )
        return {"name": reference["name"]}
    raise IncompatibleStateError(
        f"Cannot translate {where}: {reference!r} is not an agent reference. The state is "
        "damaged; resume it in the SDK that saved it.",
        item=where,
    )


def guardrail(result: Mapping[str, Any], where: str) -> dict[str, Any]:
    """An input or output guardrail result; both SDKs write the same (camelCase) shape."""
    output = result.get("output") or {}
    converted: dict[str, Any] = {
        "guardrail": {"type": result["guardrail"]["type"], "name": result["guardrail"]["name"]},
        "output": {
            "tripwireTriggered": bool(output.get("tripwireTriggered")),
            "outputInfo": output.get("outputInfo"),
        },
    }
    if result["guardrail"]["type"] == "output":
        converted["agentOutput"] = result.get("agentOutput")
        converted["agent"] = agent(result["agent"], where)
    return converted


def trace(data: Any) -> dict[str, Any] | None:
    """The trace ids a run continues under (both SDKs use the same snake_case record)."""
    if not isinstance(data, Mapping) or not data.get("id"):
        return None
    return {
        "object": "trace",
        "id": data["id"],
        "workflow_name": data.get("workflow_name") or "Agent workflow",
        "group_id": data.get("group_id"),
        "metadata": dict(data.get("metadata") or {}),
    }


def type_of(value: Any) -> Any:
    """An item's ``type``, or the Python type name of something that is not an item."""
    return value.get("type") if isinstance(value, Mapping) else type(value).__name__


def extra_fields(raw: Mapping[str, Any], known: set[str]) -> dict[str, Any]:
    """The fields of ``raw`` outside ``known`` (for the JS item's ``providerData``)."""
    return {k: v for k, v in raw.items() if k not in known and v is not None}


def merge_provider_data(target: dict[str, Any], raw: Mapping[str, Any], reserved: set[str]) -> None:
    """Put a JS item's ``providerData`` fields back onto the Python item."""
    provider = raw.get("providerData")
    if isinstance(provider, Mapping):
        for key, value in provider.items():
            if key not in reserved and key not in target:
                target[key] = value


def refuse_program_caller(caller: Any, where: str, target: str) -> None:
    """Refuse a call made by a program (programmatic tool calling), which neither maps."""
    if isinstance(caller, Mapping) and caller.get("type") not in (None, "direct"):
        raise refuse(where, "a tool call made by a program (programmatic tool calling)", target)


def numeric_records(details: Any) -> list[dict[str, int | float]]:
    """Token-detail records (one or a list) with only their numeric fields."""
    records = details if isinstance(details, list) else [details] if details else []
    return [_numbers(record) for record in records if isinstance(record, Mapping)]


def merged_numbers(details: Any) -> dict[str, int | float]:
    """One record summing every numeric field of ``details`` (a record or a list of them)."""
    records: Sequence[Any] = details if isinstance(details, list) else [details] if details else []
    merged: dict[str, int | float] = {}
    for record in records:
        if isinstance(record, Mapping):
            for key, value in _numbers(record).items():
                merged[key] = merged.get(key, 0) + value
    return merged


def _numbers(record: Mapping[str, Any]) -> dict[str, int | float]:
    return {
        str(k): v
        for k, v in record.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
