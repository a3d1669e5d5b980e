"""Function tool identities, the same in both SDKs: ``("bare", name)``,
``("namespaced", namespace, name)`` or ``("deferred_top_level", name)``, and their serialized
forms (Python ``{"kind": ..., "name": ...}``; JS a JSON array string, see ``fingerprints``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import IncompatibleStateError

__all__ = ["LookupKey", "js_lookup_key", "lookup_key_for_call", "py_lookup_key"]

LookupKey = tuple[str, ...]
"""A function tool's identity, e.g. ``("bare", "get_weather")``."""


def lookup_key_for_call(name: str, namespace: str | None = None) -> LookupKey:
    """The lookup key both SDKs derive from a call's ``name`` and ``namespace``."""
    if namespace and namespace == name:
        return ("deferred_top_level", name)
    if namespace:
        return ("namespaced", namespace, name)
    return ("bare", name)


def py_lookup_key(key: LookupKey) -> dict[str, str]:
    """A lookup key in the Python SDK's serialized form, e.g. ``{"kind": "bare", ...}``."""
    if key[0] == "namespaced":
        return {"kind": "namespaced", "namespace": key[1], "name": key[2]}
    return {"kind": key[0], "name": key[1]}


def js_lookup_key(data: Any, where: str) -> LookupKey:
    """Parse the Python SDK's serialized lookup key (``where`` names it in the error)."""
    if isinstance(data, Mapping) and isinstance(data.get("name"), str):
        if data.get("kind") == "namespaced" and isinstance(data.get("namespace"), str):
            return ("namespaced", data["namespace"], data["name"])
        if data.get("kind") in {"bare", "deferred_top_level"}:
            return (str(data["kind"]), data["name"])
    raise IncompatibleStateError(
        f"Cannot translate {where}: its tool lookup key {data!r} is not one Timestep knows. "
        "Resume this run in the SDK that saved it.",
        item=where,
    )
