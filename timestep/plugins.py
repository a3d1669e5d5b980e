"""The plugin manager: built-in plugins first, then installed ``timestep`` entry points.

Built-in features are registered through the very same hooks as third-party packages, so a
plugin can do anything the core does. ``TIMESTEP_LOAD_PLUGINS`` (comma-separated entry-point
names, empty for none) limits which installed plugins load; built-ins always load.

Example::

    from timestep import plugins

    plugins.model_provider_factories()   # {'openai': Registration(...), 'ollama': ...}
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import pluggy

from . import hookspecs
from .errors import PluginError

if TYPE_CHECKING:
    from agents import Tool

    from .hookspecs import BackendFactory, ProviderFactory, SearchBackendFactory

__all__ = [
    "BUILTIN_PLUGINS",
    "ENTRY_POINT_GROUP",
    "Registration",
    "get_plugin_manager",
    "model_provider_factories",
    "register",
    "registered_guardrails",
    "registered_tools",
    "search_backend_factories",
    "state_backend_factories",
    "unregister",
]

ENTRY_POINT_GROUP = "timestep"

BUILTIN_PLUGINS: tuple[str, ...] = ("timestep.storage.sql",)

T = TypeVar("T")


@dataclass(frozen=True)
class Registration(Generic[T]):
    """One thing a plugin registered, and which plugin it came from."""

    value: T
    plugin: str


_lock = threading.Lock()
_manager: pluggy.PluginManager | None = None


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, loading built-ins and entry points on first use."""
    global _manager
    with _lock:
        if _manager is None:
            manager = pluggy.PluginManager("timestep")
            manager.add_hookspecs(hookspecs)
            for module_name in BUILTIN_PLUGINS:
                manager.register(importlib.import_module(module_name), name=module_name)
            _load_entry_points(manager)
            _manager = manager
        return _manager


def register(plugin: object, name: str | None = None) -> str:
    """Register a plugin object at run time (tests, notebooks). Returns its name."""
    manager = get_plugin_manager()
    registered = manager.register(plugin, name=name)
    if registered is None:
        raise PluginError(f"Plugin {name or plugin!r} is already registered.", plugin=str(name))
    return registered


def unregister(name: str) -> None:
    """Remove a plugin registered with :func:`register` (or any plugin, by name)."""
    get_plugin_manager().unregister(name=name)


def model_provider_factories() -> dict[str, Registration[ProviderFactory]]:
    """Model provider factories by prefix, from every loaded plugin."""
    return _collect("register_model_providers", "model provider prefix")


def state_backend_factories() -> dict[str, Registration[BackendFactory]]:
    """State backend factories by URL scheme, from every loaded plugin."""
    return _collect("register_state_backends", "state backend scheme")


def search_backend_factories() -> dict[str, Registration[SearchBackendFactory]]:
    """Web search backend factories by name, from every loaded plugin."""
    return _collect("register_search_backends", "search backend name")


def registered_tools() -> dict[str, Registration[Tool]]:
    """Tools by name, from every loaded plugin."""
    return _collect_named("register_tools", "tool name", lambda tool: tool.name)


def registered_guardrails() -> dict[str, Registration[Any]]:
    """Input and output guardrails by name, from every loaded plugin."""
    return _collect_named("register_guardrails", "guardrail name", lambda g: g.get_name())


def _collect_named(
    hook_name: str, what: str, name_of: Callable[[Any], str]
) -> dict[str, Registration[Any]]:
    found: dict[str, Registration[Any]] = {}
    for impl in _impls(hook_name):

        def add(value: Any, _plugin: str = impl.plugin_name) -> None:
            _add_unique(found, name_of(value), value, _plugin, what)

        impl.function(register=add)
    return found


def _collect(hook_name: str, what: str) -> dict[str, Registration[Any]]:
    found: dict[str, Registration[Any]] = {}
    for impl in _impls(hook_name):

        def add(key: str, factory: Callable[..., Any], _plugin: str = impl.plugin_name) -> None:
            if not isinstance(key, str) or not key or "/" in key:
                raise PluginError(
                    f"Plugin {_plugin!r} registered an invalid {what} {key!r}: use a non-empty "
                    "name without '/'.",
                    plugin=_plugin,
                )
            if not callable(factory):
                raise PluginError(
                    f"Plugin {_plugin!r} registered {what} {key!r} with {factory!r}, "
                    "which is not callable: register a class or factory function.",
                    plugin=_plugin,
                )
            _add_unique(found, key.lower(), factory, _plugin, what)

        impl.function(register=add)
    return found


def _impls(hook_name: str) -> list[Any]:
    # Walk implementations one by one, in registration order, so each registration knows
    # which plugin made it.
    caller = getattr(get_plugin_manager().hook, hook_name)
    return list(caller.get_hookimpls())


def _add_unique(
    found: dict[str, Registration[Any]], key: str, value: Any, plugin: str, what: str
) -> None:
    previous = found.get(key)
    if previous is not None and previous.plugin != plugin:
        raise PluginError(
            f"Plugins {previous.plugin!r} and {plugin!r} both register {what} {key!r}. "
            "Uninstall one, or leave one out with TIMESTEP_LOAD_PLUGINS.",
            plugin=plugin,
        )
    found[key] = Registration(value, plugin)


def _load_entry_points(manager: pluggy.PluginManager) -> None:
    allowed = _allowed_plugins()
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        if allowed is not None and entry_point.name not in allowed:
            continue
        distribution = entry_point.dist.name if entry_point.dist else "unknown distribution"
        try:
            plugin = entry_point.load()
        except Exception as error:
            raise PluginError(
                f"Plugin {entry_point.name!r} (from {distribution}, {entry_point.value}) failed "
                f"to import: {type(error).__name__}: {error}. Fix or uninstall that package, or "
                "leave it out with TIMESTEP_LOAD_PLUGINS.",
                plugin=entry_point.name,
            ) from error
        if manager.is_registered(plugin):
            continue
        try:
            manager.register(plugin, name=entry_point.name)
        except (ValueError, pluggy.PluginValidationError) as error:
            raise PluginError(
                f"Plugin {entry_point.name!r} (from {distribution}) is not a valid timestep "
                f"plugin: {error}. Check its @timestep.hookimpl functions against "
                "timestep.hookspecs.",
                plugin=entry_point.name,
            ) from error


def _allowed_plugins() -> set[str] | None:
    value = os.environ.get("TIMESTEP_LOAD_PLUGINS")
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def _reset_for_tests() -> None:
    """Forget the loaded plugins so the next call reloads them (environment changes in tests)."""
    global _manager
    with _lock:
        _manager = None
