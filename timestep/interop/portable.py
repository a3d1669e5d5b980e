"""What a stored row needs from a serialized state of either SDK: its portable form and a summary.

``RunStateStore.save`` and ``timestep state import`` write a row from a state written by either
SDK; these helpers give them the translation for the other SDK and the row's metadata (current
agent, pending approvals, whether the run finished) read from either serialized shape.
"""

from __future__ import annotations

import json
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import IncompatibleStateError, StateCorruptedError, UnsupportedSchemaError
from .fingerprints import escape_lone_surrogates
from .registry import JS_SDK, PYTHON_SDK, Sdk, other_sdk, translation_for

__all__ = [
    "MALFORMED",
    "PortableForm",
    "StateSummary",
    "describe",
    "detect_sdk",
    "malformed_detail",
    "portable_form",
]

MALFORMED: tuple[type[Exception], ...] = (
    KeyError,
    TypeError,
    AttributeError,
    ValueError,
    IndexError,
    RecursionError,
)
"""What a translator raises on input that is not its source SDK's shape: a missing key, a value
of the wrong type or length, nesting too deep to walk, text that is not valid Unicode."""


def malformed_detail(error: BaseException) -> str:
    """A short, bounded description of a :data:`MALFORMED` error for a message."""
    if isinstance(error, RecursionError):
        return "it is nested too deeply to read"
    if isinstance(error, UnicodeError):
        return "it holds text that is not valid Unicode, such as a lone surrogate"
    detail = f"{type(error).__name__}: {error}"
    # A hostile key or value can be megabytes long; the message only needs to point at it.
    return detail if len(detail) <= 200 else detail[:200] + "..."


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
        # Lone surrogates (legal in a JS string) as \uXXXX escapes, as JSON.stringify writes
        # them: raw, they cannot be encoded for the database and the whole save would fail.
        text = escape_lone_surrogates(
            json.dumps(translated, ensure_ascii=False, separators=(",", ":"))
        )
    except (IncompatibleStateError, UnsupportedSchemaError) as error:
        return PortableForm(target, None, None, str(error))
    except MALFORMED as error:
        return PortableForm(
            target,
            None,
            None,
            str(
                StateCorruptedError(
                    f"The {source} state has a field Timestep cannot read "
                    f"({malformed_detail(error)}); it was stored natively only."
                )
            ),
        )
    return PortableForm(
        target,
        text,
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
    """Row metadata for ``state`` as written by ``sdk``.

    A field of the wrong type (a file edited by hand, or not a state at all) reads as absent:
    the summary is only metadata, and whether the state itself is usable is decided on load.
    """
    python = sdk == PYTHON_SDK
    items_key, raw_key = (
        ("generated_items", "raw_item") if python else ("generatedItems", "rawItem")
    )
    step = _mapping(state.get("current_step" if python else "currentStep"))
    current_name = _name(state.get("current_agent" if python else "currentAgent"))
    items = _list(state.get(items_key))
    first = _mapping(items[0] if items else None)
    starting = (
        _name(first.get("agent") or first.get("source_agent" if python else "sourceAgent"))
        or current_name
    )
    pending = []
    if step.get("type") == "next_step_interruption":
        for entry in _list(_mapping(step.get("data")).get("interruptions")):
            item = _mapping(entry)
            raw = _mapping(item.get(raw_key))
            pending.append(
                {
                    "tool_name": item.get("tool_name" if python else "toolName") or raw.get("name"),
                    "call_id": raw.get("call_id" if python else "callId") or raw.get("id"),
                    "arguments": raw.get("arguments"),
                    "agent": _name(item.get("agent")),
                }
            )
    if python:
        last = _mapping(items[-1] if items else None)
        finished = (
            not step
            and not state.get("last_processed_response")
            and last.get("type") == "message_output_item"
        )
    else:
        finished = step.get("type") == "next_step_final_output"
    return StateSummary(
        sdk=sdk,
        schema_version=_text(state.get("$schemaVersion", "")),
        current_agent=current_name,
        starting_agent=starting,
        finished=finished,
        interruptions=pending,
    )


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: object) -> str:
    """``value`` as row text; anything but a string is shown bounded (it may be deeply nested)."""
    return value if isinstance(value, str) else reprlib.repr(value)


def _name(reference: object) -> str | None:
    """An agent reference's name; ``None`` unless it is a non-empty string."""
    name = _mapping(reference).get("name")
    return name if isinstance(name, str) and name else None
