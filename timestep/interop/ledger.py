"""The tool-call ledgers each SDK keeps beside a run's items, rebuilt from translated items.

Neither SDK trusts item history alone to decide whether a tool call may run: the JS SDK keeps
per-agent records of completed invocations (with evidence pointing at the call and its output),
the Python SDK a per-call ledger of what executed and completed. A translated state must carry
the target's ledger, or the target refuses it (JS) or will not run an approved call (Python).
Both ledgers are derived here from the translated ``generated_items``, so a tool that already
ran before the pause is recorded as completed and is never run again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .fingerprints import handoff_tool_name, js_fingerprint, js_state_key, python_invocation
from .keys import LookupKey, js_lookup_key, lookup_key_for_call

__all__ = ["JsLedger", "js_ledger", "js_tool_name", "python_ledger"]


@dataclass
class JsLedger:
    """The JS SDK's ``completedToolInvocations``, their evidence and ambiguous call ids."""

    completed: dict[str, dict[str, str]] = field(default_factory=dict)
    evidence: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    ambiguous: dict[str, set[str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, list[dict[str, Any]]]:
        """The three top-level JS RunState fields."""
        return {
            "completedToolInvocations": [
                {"agentIdentity": agent, "invocations": calls}
                for agent, calls in self.completed.items()
            ],
            "completedToolInvocationEvidence": [
                {"agentIdentity": agent, "invocations": calls}
                for agent, calls in self.evidence.items()
            ],
            "ambiguousToolInvocationCallIds": [
                {"agentIdentity": agent, "callIds": sorted(calls)}
                for agent, calls in self.ambiguous.items()
                if calls
            ],
        }


def js_tool_name(item: Mapping[str, Any]) -> str:
    """The name the JS ledger files a translated call item under."""
    raw = item["rawItem"]
    if item["type"] == "handoff_call_item":
        return handoff_tool_name(raw["name"])
    key = item.get("functionToolStateKey")
    if isinstance(key, str):
        return key
    return js_state_key(lookup_key_for_call(raw["name"], raw.get("namespace")))


def js_ledger(items: Sequence[Mapping[str, Any]]) -> JsLedger:
    """Derive the JS ledger from JS-shaped ``generatedItems`` (function tools and handoffs).

    A call is completed when a later output of the same agent answers its call id; the
    evidence points at both items by index, as the JS SDK validates it.
    """
    ledger = JsLedger()
    pending: dict[tuple[str, str], tuple[int, str]] = {}
    for index, item in enumerate(items):
        kind = item["type"]
        if kind in {"tool_call_item", "handoff_call_item", "tool_approval_item"}:
            raw = item["rawItem"]
            if raw.get("type") != "function_call":
                continue
            agent = item["agent"]["name"]
            fingerprint = js_fingerprint(js_tool_name(item), raw)
            previous = pending.get((agent, raw["callId"]))
            if previous is not None and previous[1] != fingerprint:
                ledger.ambiguous.setdefault(agent, set()).add(raw["callId"])
                del pending[(agent, raw["callId"])]
            elif previous is None and raw["callId"] not in ledger.ambiguous.get(agent, set()):
                pending[(agent, raw["callId"])] = (index, fingerprint)
        elif kind in {"tool_call_output_item", "handoff_output_item"}:
            raw = item["rawItem"]
            if raw.get("type") != "function_call_result":
                continue
            agent = item["sourceAgent" if kind == "handoff_output_item" else "agent"]["name"]
            call = pending.pop((agent, raw["callId"]), None)
            if call is None:
                ledger.ambiguous.setdefault(agent, set()).add(raw["callId"])
                continue
            call_index, fingerprint = call
            ledger.completed.setdefault(agent, {})[raw["callId"]] = fingerprint
            ledger.evidence.setdefault(agent, {})[raw["callId"]] = {
                "fingerprint": fingerprint,
                "items": [{"generatedItemIndex": call_index}, {"generatedItemIndex": index}],
            }
    return ledger


def python_ledger(items: Sequence[Mapping[str, Any]], where: str) -> dict[str, dict[str, Any]]:
    """Derive the Python SDK's ``tool_invocations`` from Python-shaped ``generated_items``.

    Every function call and handoff gets a record; those answered by an output are executed and
    completed (the Python SDK records a rejected call the same way, its output being the
    rejection message), the rest (pending approvals) neither.
    """
    answered = {
        item["raw_item"]["call_id"]
        for item in items
        if item["type"] in {"tool_call_output_item", "handoff_output_item"}
        and item["raw_item"].get("type") == "function_call_output"
    }
    keys: dict[str, LookupKey] = {}
    for index, item in enumerate(items):
        if item["type"] == "tool_approval_item" and item.get("tool_lookup_key") is not None:
            call_id = item["raw_item"].get("call_id")
            keys[call_id] = js_lookup_key(item["tool_lookup_key"], f"{where}[{index}]")
    ledger: dict[str, dict[str, Any]] = {}
    for item in items:
        if item["type"] not in {"tool_call_item", "handoff_call_item", "tool_approval_item"}:
            continue
        raw = item["raw_item"]
        if raw.get("type") != "function_call" or raw["call_id"] in ledger:
            continue
        call_id = raw["call_id"]
        key = keys.get(call_id) or lookup_key_for_call(raw["name"], raw.get("namespace"))
        scope, fingerprint = python_invocation(
            raw, key, handoff=item["type"] == "handoff_call_item"
        )
        done = call_id in answered
        ledger[call_id] = {
            "type": "function_call",
            "approval_scope": scope,
            "fingerprint": fingerprint,
            "executed": done,
            "completed": done,
        }
    return ledger
