"""Named tools, guardrails, output types and MCP servers, so stored agents can be rebuilt.

A stored agent refers to its functions by name. When it is loaded, each name is looked up here:
first among what this process added with :meth:`Registry.add`, then among what installed
plugins registered through the ``register_tools`` / ``register_guardrails`` hooks.

Example::

    from timestep import registry

    registry.add(get_weather)            # a FunctionTool
    registry.add(no_profanity)           # an InputGuardrail or OutputGuardrail
    registry.add(WeatherReport)          # an output type (a class)
    registry.add(github_mcp)             # an MCP server
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, TypeVar, get_args, get_origin

from agents import InputGuardrail, OutputGuardrail
from agents.mcp import MCPServer
from agents.tool import Tool

from . import plugins
from .errors import (
    UnknownGuardrailError,
    UnknownMCPServerError,
    UnknownOutputTypeError,
    UnknownToolError,
    UnregisteredNameError,
)

__all__ = ["Entry", "Registry", "registry"]

T = TypeVar("T")

_KINDS: dict[str, type[UnregisteredNameError]] = {
    "tool": UnknownToolError,
    "guardrail": UnknownGuardrailError,
    "output_type": UnknownOutputTypeError,
    "mcp_server": UnknownMCPServerError,
}


# `Tool` is a Union with a subscripted generic in it, which isinstance() rejects.
_TOOL_TYPES = tuple(get_origin(t) or t for t in get_args(Tool))

_HOOKS = {"tool": "register_tools", "guardrail": "register_guardrails"}


@dataclass(frozen=True)
class Entry:
    """One registered thing and where it came from (``registry.add`` or a plugin's name)."""

    value: Any
    source: str


class Registry:
    """Names -> tools, guardrails, output types and MCP servers for stored agents."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._added: dict[str, dict[str, Entry]] = {kind: {} for kind in _KINDS}

    def add(self, value: Any, *, name: str | None = None) -> str:
        """Register ``value`` under ``name`` (default: its own name) and return the name.

        Accepts a tool, an input or output guardrail, an MCP server, or a class used as an
        agent's ``output_type``. Adding a different object under a taken name replaces it.
        """
        kind = _kind_of(value)
        key = name or _name_of(kind, value)
        with self._lock:
            self._added[kind][key] = Entry(value, "registry.add")
        return key

    def remove(self, value_or_name: Any) -> None:
        """Forget something added with :meth:`add` (by object or by name)."""
        with self._lock:
            for entries in self._added.values():
                for key, entry in list(entries.items()):
                    if value_or_name in (key, entry.value) and value_or_name is not None:
                        del entries[key]

    def find(self, kind: str, name: str) -> Entry | None:
        """The entry registered under ``name`` for ``kind``, or ``None``."""
        with self._lock:
            entry = self._added[kind].get(name)
        if entry is not None:
            return entry
        from_plugins = _plugin_entries(kind)
        registration = from_plugins.get(name)
        return (
            None
            if registration is None
            else Entry(registration.value, f"plugin {registration.plugin!r}")
        )

    def resolve(self, kind: str, name: str, *, agent: str, hint: str | None = None) -> Any:
        """The object registered as ``name``, or an error naming what would register it.

        ``hint`` says where the saving process found it (recorded when the agent was saved).
        """
        entry = self.find(kind, name)
        if entry is not None:
            return entry.value
        error = _KINDS[kind]
        where = f" It was saved from {hint}." if hint else ""
        hook = _HOOKS.get(kind)
        plugin = f", or install the plugin that provides it (hook {hook})" if hook else ""
        raise error(
            f"Stored agent {agent!r} uses {error.kind} {name!r}, which is not registered in "
            f"this process.{where} Register it with timestep.registry.add(...) before "
            f"loading{plugin}.",
            name=name,
            agent=agent,
        )

    def describe(self, kind: str, value: Any) -> tuple[str, str]:
        """``(name, source)`` of ``value``, adding it to this registry when nobody has.

        The source is kept with a stored agent so a process that lacks the name can be told
        where it came from.
        """
        key = _name_of(kind, value)
        entry = self.find(kind, key)
        if entry is None:
            self.add(value, name=key)
            return key, _origin(value)
        return key, entry.source


registry = Registry()
"""The process-wide registry stored agents are resolved against."""


def _kind_of(value: Any) -> str:
    if isinstance(value, InputGuardrail | OutputGuardrail):
        return "guardrail"
    if isinstance(value, MCPServer):
        return "mcp_server"
    if isinstance(value, type):
        return "output_type"
    if isinstance(value, _TOOL_TYPES):
        return "tool"
    raise TypeError(
        f"Cannot register {value!r}: registry.add takes a tool, a guardrail, an MCP server or "
        "an output type class."
    )


def _name_of(kind: str, value: Any) -> str:
    if kind == "guardrail":
        return str(value.get_name())
    if kind == "output_type":
        return str(value.__name__)
    return str(value.name)


def _plugin_entries(kind: str) -> dict[str, plugins.Registration[Any]]:
    if kind == "tool":
        return plugins.registered_tools()
    if kind == "guardrail":
        return plugins.registered_guardrails()
    return {}


def _origin(value: Any) -> str:
    """Where an object was defined, as a hint for the process that loads it."""
    target = getattr(value, "guardrail_function", None) or value
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", None)
    if module and qualname and not isinstance(value, _TOOL_TYPES):
        return f"{module}.{qualname}"
    return "registry.add in the saving process"
