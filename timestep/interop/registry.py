"""Which translations exist: one per supported pair of SDK schema versions.

A row is keyed by the SDK that wrote a state and its ``$schemaVersion``; it names the schema the
other SDK reads and the function that produces it. Adding support for a new SDK release means
adding a module for the new pair and a row here, never editing a released translator.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import UnsupportedSchemaError
from . import py_1_21_js_1_22

__all__ = [
    "JS_SDK",
    "PYTHON_SDK",
    "SUPPORTED_TRANSLATIONS",
    "Sdk",
    "Translation",
    "other_sdk",
    "translation_for",
]

Sdk = Literal["python", "js"]
PYTHON_SDK: Sdk = "python"
JS_SDK: Sdk = "js"

Translator = Callable[[Mapping[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Translation:
    """Translate a state of ``source_sdk`` at ``source_schema`` into ``target_sdk``'s form."""

    source_sdk: Sdk
    source_schema: str
    target_sdk: Sdk
    target_schema: str
    source_package: str
    target_package: str
    translate: Translator


_PYTHON_PACKAGE = "openai-agents 0.24.x"
_JS_PACKAGE = "@openai/agents 0.20.x"

SUPPORTED_TRANSLATIONS: tuple[Translation, ...] = (
    Translation(
        PYTHON_SDK,
        py_1_21_js_1_22.PYTHON_SCHEMA,
        JS_SDK,
        py_1_21_js_1_22.JS_SCHEMA,
        _PYTHON_PACKAGE,
        _JS_PACKAGE,
        py_1_21_js_1_22.python_to_js,
    ),
    Translation(
        JS_SDK,
        py_1_21_js_1_22.JS_SCHEMA,
        PYTHON_SDK,
        py_1_21_js_1_22.PYTHON_SCHEMA,
        _JS_PACKAGE,
        _PYTHON_PACKAGE,
        py_1_21_js_1_22.js_to_python,
    ),
)


def other_sdk(sdk: str) -> Sdk:
    """``"js"`` for ``"python"`` and the reverse."""
    if sdk == PYTHON_SDK:
        return JS_SDK
    if sdk == JS_SDK:
        return PYTHON_SDK
    raise UnsupportedSchemaError(
        f"Unknown Agents SDK {sdk!r}; Timestep translates between 'python' and 'js'."
    )


def translation_for(source_sdk: str, source_schema: object, target_sdk: str) -> Translation:
    """The translation of a ``source_sdk`` state at ``source_schema`` into ``target_sdk``.

    Raises:
        UnsupportedSchemaError: no translator handles that SDK and schema version; the
            message lists the supported ones.
    """
    other_sdk(source_sdk)
    other_sdk(target_sdk)
    for row in SUPPORTED_TRANSLATIONS:
        if (row.source_sdk, row.source_schema, row.target_sdk) == (
            source_sdk,
            source_schema,
            target_sdk,
        ):
            return row
    supported = "; ".join(
        f"{row.source_sdk} {row.source_schema} ({row.source_package}) -> "
        f"{row.target_sdk} {row.target_schema} ({row.target_package})"
        for row in SUPPORTED_TRANSLATIONS
    )
    raise UnsupportedSchemaError(
        f"Cannot translate a {source_sdk} RunState with $schemaVersion "
        # Bounded: a hostile state's "version" can be a huge or deeply nested value.
        f"{reprlib.repr(source_schema)} to "
        f"{target_sdk}: this timestep supports {supported}. Save the run with a supported "
        "SDK release (or upgrade timestep), or resume it in the SDK that saved it."
    )
