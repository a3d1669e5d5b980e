"""What a stored row needs from a serialized state of either SDK: its portable form and a summary.

``RunStateStore.save`` and ``timestep state import`` write a row from a state written by either
SDK; these helpers give them the translation for the other SDK and the row's metadata (current
agent, pending approvals, whether the run finished) read from either serialized shape.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import IncompatibleStateError, StateCorruptedError, UnsupportedSchemaError
from .registry import JS_SDK, PYTHON_SDK, Sdk, other_sdk, translation_for

__all__ = ["PortableForm", "StateSummary", "describe", "detect_sdk", "portable_form"]


@dataclass(frozen=True)
class PortableForm:
    """A state translated for the other SDK, or why it could not be."""

    sdk: Sdk
    """The SDK that reads ``state``."""
    state: str | None
    """The translated state as JSON text (``None`` when it cannot be translated)."""
    schema_version: str | None
    """The ``$schemaVersion`` of ``state``."""
    error: str | None
    """Why there is no ``state``: the translation error's message."""


@dataclass(frozen=True)
class StateSummary:
    """The row metadata of a serialized state, read from either SDK's shape."""

    sdk: Sdk
    schema_version: str
    current_agent: str | None
    starting_agent: str | None
    """The agent whose run this is (the first item's agent), as far as the state records it."""
    finished: bool
    interruptions: list[dict[str, Any]] = field(default_factory=list)


def portable_form(state: Mapping[str, Any], source: Sdk) -> PortableForm:
    """``state`` (written by ``source``) translated for the other SDK, never raising for a
    state that cannot be translated: the row then records why instead."""
    target = other_sdk(source)
    try:
        translated = translation_for(source, state.get("$schemaVersion"), target).translate(state)
    except (IncompatibleStateError, UnsupportedSchemaError) as error:
        return PortableForm(target, None, None, str(error))
    except (KeyError, TypeError, AttributeError) as error:
        return PortableForm(
            target,
            None,
            None,
            str(
                StateCorruptedError(
                    f"The {source} state has a field Timestep cannot read ({error!r}); it was "
                    "stored natively only."
                )
            ),
        )
    return PortableForm(
        target,
        json.dumps(translated, ensure_ascii=False, separators=(",", ":")),
        str(translated["$schemaVersion"]),
        None,
    )


def detect_sdk(state: Mapping[str, Any]) -> Sdk:
    """Which SDK wrote ``state``: Python's keys are snake_case, JS's camelCase.

    Raises:
        StateCorruptedError: ``state`` is neither SDK's RunState.
    """
    if "$schemaVersion" in state and "current_agent" in state:
        return PYTHON_SDK
    if "$schemaVersion" in state and "currentAgent" in state:
        return JS_SDK
    raise StateCorruptedError(
        "This is not a serialized RunState of either Agents SDK (it has no $schemaVersion and "
        "current agent). Export it with the SDK's to_string()/toString()."
    )


def describe(state: Mapping[str, Any], sdk: Sdk) -> StateSummary:
    """Row metadata for ``state`` as written by ``sdk``."""
    python = sdk == PYTHON_SDK
    items_key, raw_key = (
        ("generated_items", "raw_item") if python else ("generatedItems", "rawItem")
    )
    step = state.get("current_step" if python else "currentStep") or {}
    current = state.get("current_agent" if python else "currentAgent") or {}
    current_name = current.get("name") if isinstance(current, Mapping) else None
    items = state.get(items_key) or []
    first = items[0] if items and isinstance(items[0], Mapping) else {}
    starting = (
        first.get("agent") or first.get("source_agent" if python else "sourceAgent") or {}
    ).get("name") or current_name
    pending = []
    if step.get("type") == "next_step_interruption":
        for item in (step.get("data") or {}).get("interruptions") or []:
            raw = item.get(raw_key) or {}
            pending.append(
                {
                    "tool_name": item.get("tool_name" if python else "toolName") or raw.get("name"),
                    "call_id": raw.get("call_id" if python else "callId") or raw.get("id"),
                    "arguments": raw.get("arguments"),
                    "agent": (item.get("agent") or {}).get("name"),
                }
            )
    if python:
        last = items[-1] if items and isinstance(items[-1], Mapping) else {}
        finished = (
            not step
            and not state.get("last_processed_response")
            and last.get("type") == "message_output_item"
        )
    else:
        finished = step.get("type") == "next_step_final_output"
    return StateSummary(
        sdk=sdk,
        schema_version=str(state.get("$schemaVersion", "")),
        current_agent=current_name,
        starting_agent=starting,
        finished=finished,
        interruptions=pending,
    )
