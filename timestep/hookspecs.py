"""The hooks a Timestep plugin can implement.

A plugin is any module or object with functions marked ``@timestep.hookimpl``; installed packages
expose theirs through the ``timestep`` entry-point group::

    # pyproject.toml of a plugin package
    [project.entry-points.timestep]
    my_plugin = "my_plugin"

    # my_plugin.py
    import timestep

    @timestep.hookimpl
    def register_model_providers(register):
        register("mine", MyProvider)        # Agent(model="mine/some-model")

Each hook receives a ``register`` callable and calls it once per thing it contributes, so a
plugin never has to build or return a collection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import pluggy

if TYPE_CHECKING:
    from agents import InputGuardrail, ModelProvider, OutputGuardrail, Tool

    from .storage.base import StateBackend
    from .tools.search import SearchBackend

__all__ = [
    "BackendFactory",
    "ProviderFactory",
    "SearchBackendFactory",
    "hookimpl",
    "hookspec",
    "register_guardrails",
    "register_model_providers",
    "register_search_backends",
    "register_state_backends",
    "register_tools",
]

hookspec = pluggy.HookspecMarker("timestep")
hookimpl = pluggy.HookimplMarker("timestep")

ProviderFactory: TypeAlias = "Callable[[], ModelProvider]"
"""Builds a model provider. Called lazily, once, the first time its prefix is used."""

BackendFactory: TypeAlias = "Callable[[str], StateBackend]"
"""Builds a state backend for a database URL of the scheme it was registered under."""

SearchBackendFactory: TypeAlias = "Callable[[], SearchBackend]"
"""Builds a web search backend. Called lazily, once, the first time ``web_search`` uses it."""


@hookspec
def register_model_providers(register: Callable[[str, ProviderFactory], None]) -> None:
    """Register model providers by prefix: ``register("ollama", OllamaModelProvider)``.

    ``Agent(model="ollama/llama3")`` is then served by that provider, which receives the rest of
    the name (``"llama3"``).
    """


@hookspec
def register_state_backends(register: Callable[[str, BackendFactory], None]) -> None:
    """Register storage backends by URL scheme: ``register("redis", RedisBackend)``.

    The factory receives the full database URL and returns a
    :class:`timestep.storage.StateBackend`.
    """


@hookspec
def register_guardrails(
    register: Callable[[InputGuardrail[Any] | OutputGuardrail[Any]], None],
) -> None:
    """Register input and output guardrails by name so stored agents can find them again."""


@hookspec
def register_search_backends(register: Callable[[str, SearchBackendFactory], None]) -> None:
    """Register web search backends by name: ``register("firecrawl", FirecrawlSearchBackend)``.

    The factory takes no arguments and returns a :class:`timestep.tools.SearchBackend`; the
    ``web_search`` tool picks one by ``backend=``, ``TIMESTEP_SEARCH_BACKEND``, ``search_backend``
    in the config file, or, when exactly one is installed, that one.
    """


@hookspec
def register_tools(register: Callable[[Tool], None]) -> None:
    """Register tools by their name so stored agent definitions can find them again."""
