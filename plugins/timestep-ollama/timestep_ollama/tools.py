"""Agent tools and handoffs as Ollama ``tools`` entries.

Ollama's tool format (``ollama.Tool``, which the Python client validates every tool against)
keeps only ``type``, ``description``, ``enum`` and ``items`` for each parameter. Anything else
in a JSON schema is silently dropped on the way out, so an ``Optional[int]`` argument
(``anyOf``) would arrive with no type at all and a nested model (``$ref``) as an empty object.
:func:`ollama_parameters` rewrites the SDK's schemas into that subset first, keeping as much
meaning as the format can hold.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from agents import FunctionTool, Handoff, Tool
from agents.exceptions import UserError
from agents.tool import ensure_function_tool_supports_responses_only_features

from .errors import OllamaUnsupportedError

__all__ = ["ollama_parameters", "ollama_tools"]

# A JSON schema may reference itself (a tree of nodes); past this depth a reference is left
# as a plain object instead of being expanded forever.
_MAX_REF_DEPTH = 8


def ollama_tools(
    tools: Sequence[Tool], handoffs: Sequence[Handoff[Any, Any]]
) -> list[dict[str, Any]]:
    """The ``tools`` list for an Ollama chat request: function tools, then handoffs."""
    converted: list[dict[str, Any]] = []
    for tool in tools:
        if not isinstance(tool, FunctionTool):
            raise OllamaUnsupportedError(
                f"Tool {getattr(tool, 'name', tool)!r} is a {type(tool).__name__}, a hosted "
                "tool that only OpenAI's Responses API runs. Ollama models can call function "
                "tools only: wrap the capability in a @function_tool, or give this agent an "
                "OpenAI model."
            )
        try:
            ensure_function_tool_supports_responses_only_features(tool, backend_name="Ollama")
        except UserError as error:
            raise OllamaUnsupportedError(str(error)) from error
        converted.append(_function(tool.name, tool.description, tool.params_json_schema))
    for handoff in handoffs:
        converted.append(
            _function(handoff.tool_name, handoff.tool_description, handoff.input_json_schema)
        )
    return converted


def ollama_parameters(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A tool's JSON schema reduced to what Ollama's tool format carries.

    References are expanded, ``anyOf`` / ``oneOf`` of simple types become a list of types
    (``["integer", "null"]``), ``const`` becomes a one-value ``enum``, and a nested object's
    fields are spelled out in its description, since a parameter cannot hold ``properties``.
    """
    defs = {**schema.get("definitions", {}), **schema.get("$defs", {})}
    root = _resolve(schema, defs, 0)
    properties = root.get("properties") or {}
    return {
        "type": "object",
        "properties": {name: _parameter(value, defs, 0) for name, value in properties.items()},
        "required": list(root.get("required", [])),
    }


def _function(name: str, description: str | None, schema: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description or "",
            "parameters": ollama_parameters(schema or {}),
        },
    }


def _parameter(schema: Mapping[str, Any], defs: Mapping[str, Any], depth: int) -> dict[str, Any]:
    schema = _resolve(schema, defs, depth)
    variants = schema.get("anyOf") or schema.get("oneOf")
    if variants:
        return _union(schema, [_resolve(v, defs, depth + 1) for v in variants], defs, depth)

    result: dict[str, Any] = {}
    types = _types(schema)
    if types:
        result["type"] = types[0] if len(types) == 1 else types
    notes = [schema["description"]] if schema.get("description") else []
    if "enum" in schema:
        result["enum"] = list(schema["enum"])
    elif "const" in schema:
        result["enum"] = [schema["const"]]
    if "items" in schema and isinstance(schema["items"], Mapping):
        # ``items`` is passed through untouched by the client, so it can keep a full schema.
        result["items"] = _inline(schema["items"], defs, depth + 1)
    if schema.get("properties"):
        fields = {
            key: _inline(value, defs, depth + 1) for key, value in schema["properties"].items()
        }
        notes.append(f"A JSON object with the fields {json.dumps(fields, sort_keys=True)}.")
    if notes:
        result["description"] = " ".join(notes)
    return result


def _union(
    schema: Mapping[str, Any],
    variants: list[Mapping[str, Any]],
    defs: Mapping[str, Any],
    depth: int,
) -> dict[str, Any]:
    types: list[str] = []
    for variant in variants:
        types.extend(t for t in _types(variant) if t not in types)
    real = [v for v in variants if _types(v) != ["null"]]
    if len(real) == 1:
        # The common case, ``X | None``: describe X and allow null.
        result = _parameter(real[0], defs, depth + 1)
    else:
        result = {}
        described = [_inline(v, defs, depth + 1) for v in real]
        result["description"] = f"One of {json.dumps(described, sort_keys=True)}."
    if types:
        result["type"] = types[0] if len(types) == 1 else types
    if schema.get("description"):
        result["description"] = " ".join(
            part for part in (schema["description"], result.get("description")) if part
        )
    return result


def _types(schema: Mapping[str, Any]) -> list[str]:
    declared = schema.get("type")
    if isinstance(declared, str):
        return [declared]
    if isinstance(declared, list):
        return [t for t in declared if isinstance(t, str)]
    if "properties" in schema:
        return ["object"]
    if "items" in schema:
        return ["array"]
    return []


def _resolve(schema: Mapping[str, Any], defs: Mapping[str, Any], depth: int) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if not isinstance(ref, str):
        all_of = schema.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], Mapping):
            # Pydantic wraps a described reference as allOf: [{$ref}] plus the description.
            merged = {**_resolve(all_of[0], defs, depth), **schema}
            merged.pop("allOf", None)
            return merged
        return schema
    if depth >= _MAX_REF_DEPTH:
        return {"type": "object"}
    target = defs.get(ref.rsplit("/", 1)[-1]) if ref.startswith("#/") else None
    if not isinstance(target, Mapping):
        return {"type": "object"}
    extra = {key: value for key, value in schema.items() if key != "$ref"}
    return {**_resolve(target, defs, depth + 1), **extra}


def _inline(schema: Any, defs: Mapping[str, Any], depth: int) -> Any:
    """``schema`` with every ``$ref`` expanded, for the places that keep a schema verbatim."""
    if isinstance(schema, Mapping):
        resolved = _resolve(schema, defs, depth)
        # Titles only repeat the field names (pydantic's "City" for city) and cost tokens.
        return {
            key: _inline(value, defs, depth + 1)
            for key, value in resolved.items()
            if key != "title" or not isinstance(value, str)
        }
    if isinstance(schema, list):
        return [_inline(value, defs, depth) for value in schema]
    return schema
