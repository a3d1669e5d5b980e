"""Cross-language resume: translate saved RunStates between the Python and JS Agents SDKs.

A run paused in Python can be approved and resumed by ``@openai/agents`` in TypeScript and the
reverse. ``RunStateStore`` does this for you (each row keeps the writer's native state and the
portable form for the other language); use these functions directly for files or your own
storage::

    from timestep.interop import translate

    js_state = translate(state.to_json(), source="python", target="js")
    # TypeScript: await RunState.fromString(agent, JSON.stringify(js_state))

Unsupported SDK versions raise :class:`~timestep.UnsupportedSchemaError`; anything one SDK
cannot express (a hosted tool the other lacks, a sandbox session, ...) raises
:class:`~timestep.IncompatibleStateError` naming the item. Nothing is dropped silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import (
    IncompatibleStateError,
    StateCorruptedError,
    TimestepError,
    UnsupportedSchemaError,
)
from .portable import (
    MALFORMED,
    PortableForm,
    StateSummary,
    describe,
    detect_sdk,
    malformed_detail,
    portable_form,
)
from .registry import (
    JS_SDK,
    PYTHON_SDK,
    SUPPORTED_TRANSLATIONS,
    Sdk,
    Translation,
    other_sdk,
    translation_for,
)

__all__ = [
    "JS_SDK",
    "PYTHON_SDK",
    "SUPPORTED_TRANSLATIONS",
    "PortableForm",
    "Sdk",
    "StateSummary",
    "Translation",
    "describe",
    "detect_sdk",
    "other_sdk",
    "portable_form",
    "translate",
    "translate_run",
    "translation_for",
]


def translate(state: Mapping[str, Any], *, source: str, target: str) -> dict[str, Any]:
    """``state`` (an SDK's serialized RunState object) in the ``target`` SDK's form.

    ``source`` and ``target`` are ``"python"`` or ``"js"``; the same SDK on both sides returns
    a copy of ``state`` unchanged.

    Raises:
        UnsupportedSchemaError: no translator handles ``state``'s ``$schemaVersion``.
        IncompatibleStateError: ``state`` holds something the target SDK cannot express.
        StateCorruptedError: ``state`` is not a run state of the ``source`` SDK.
    """
    if not isinstance(state, Mapping):
        raise StateCorruptedError(
            f"A RunState to translate must be a JSON object, not {type(state).__name__}."
        )
    if source == target:
        other_sdk(source)
        return dict(state)
    row = translation_for(source, state.get("$schemaVersion"), target)
    try:
        return row.translate(state)
    except TimestepError:
        raise
    except MALFORMED as error:
        raise StateCorruptedError(
            f"The {source} RunState (schema {row.source_schema}) is missing or has a malformed "
            f"field ({malformed_detail(error)}); it is not a state that SDK wrote. "
            "Translate the SDK's own to_json()/toString() output."
        ) from None


def translate_run(
    state: Mapping[str, Any], *, source: str, target: str, context: str, session_id: str
) -> dict[str, Any]:
    """:func:`translate` for a stored run: each error's message starts with ``context`` (which
    run it is) and the error carries the run's ``session_id``."""
    try:
        return translate(state, source=source, target=target)
    except IncompatibleStateError as error:
        raise IncompatibleStateError(
            context + str(error), item=error.item, session_id=session_id
        ) from None
    except (UnsupportedSchemaError, StateCorruptedError) as error:
        raise type(error)(context + str(error), session_id=session_id) from None
