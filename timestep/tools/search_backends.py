"""Which web search backend ``web_search`` uses, chosen among those plugins registered.

Precedence, first match wins: an explicit ``backend=`` (a registered name or a backend object),
``TIMESTEP_SEARCH_BACKEND``, ``search_backend`` in the config file, then the only registered
backend when exactly one is installed. No backend at all is not an error: the tool tells the
model search is unavailable. A name nobody registered is one
(:class:`~timestep.errors.UnknownSearchBackendError`), and so are several installed backends
with none chosen.

Example::

    from timestep.tools import resolve_search_backend

    name, backend = resolve_search_backend("firecrawl")   # None when no backend is installed
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
from typing import TYPE_CHECKING, cast

from .. import plugins
from ..config import load_settings
from ..errors import ConfigurationError, PluginError, TimestepError, UnknownSearchBackendError
from .search import SearchBackend

if TYPE_CHECKING:
    from ..hookspecs import SearchBackendFactory

__all__ = [
    "NOT_CONFIGURED_MESSAGE",
    "is_search_backend",
    "resolve_search_backend",
    "search_backend_names",
    "warn_not_configured_once",
]

NOT_CONFIGURED_MESSAGE = (
    "web search is not configured: install timestep-firecrawl and set FIRECRAWL_API_KEY"
)
"""What the model is told when no search backend is installed."""

logger = logging.getLogger("timestep")

_lock = threading.Lock()
# Built backends by factory: a factory runs once per process, but a plugin registered anew
# (tests, notebooks) brings a new factory and so a new backend. The factory is kept in the value
# so its id cannot be reused while the entry exists.
_built: dict[int, tuple[object, SearchBackend]] = {}
_warned_not_configured = False


def search_backend_names() -> list[str]:
    """The registered web search backend names, sorted.

    Example::

        search_backend_names()   # ['firecrawl'] with timestep-firecrawl installed
    """
    return sorted(plugins.search_backend_factories())


def is_search_backend(candidate: object) -> bool:
    """Whether ``candidate`` has the ``async def search(...)`` a :class:`SearchBackend` needs.

    Example::

        >>> is_search_backend(object())
        False
    """
    return inspect.iscoroutinefunction(getattr(candidate, "search", None))


def resolve_search_backend(
    backend: str | SearchBackend | None = None,
) -> tuple[str, SearchBackend] | None:
    """The backend ``web_search`` should use and its name, or ``None`` when none is installed.

    Raises:
        UnknownSearchBackendError: the chosen name is not registered (the message lists the
            registered ones).
        ConfigurationError: several backends are installed and none is chosen, or ``backend``
            is an object without an async ``search`` method.
        PluginError: a plugin's factory failed or built something that is not a backend.

    Example::

        found = resolve_search_backend()
        if found is None:
            print("no web search backend installed")
    """
    if backend is not None and not isinstance(backend, str):
        if not is_search_backend(backend):
            raise ConfigurationError(
                f"backend={backend!r} is not a web search backend: it needs an "
                "`async def search(self, query, *, limit, allowed_domains)` method. Pass a "
                "registered backend name or such an object."
            )
        return type(backend).__name__, backend

    name, source = _chosen_name(backend)
    factories = plugins.search_backend_factories()
    if name is None:
        if not factories:
            return None
        if len(factories) > 1:
            raise ConfigurationError(
                f"Several web search backends are installed ({', '.join(sorted(factories))}) "
                "and none is chosen: pass web_search_tool(backend=NAME), or set "
                "TIMESTEP_SEARCH_BACKEND or search_backend in timestep.toml."
            )
        name = next(iter(factories))
    key = name.strip().lower()
    registration = factories.get(key)
    if registration is None:
        available = sorted(factories)
        raise UnknownSearchBackendError(
            f"No web search backend is registered as {name!r} (from {source}). Registered: "
            f"{', '.join(available) if available else 'none'}. Install the plugin that provides "
            "it (e.g. `pip install timestep-firecrawl`) or choose a registered name.",
            name=name,
            available=available,
        )
    return key, _build(key, registration)


def warn_not_configured_once() -> None:
    """Log the missing-backend warning the first time only; every call still tells the model."""
    global _warned_not_configured
    with _lock:
        if _warned_not_configured:
            return
        _warned_not_configured = True
    logger.warning(
        "web_search has no backend, so it tells the model search is unavailable. Install a "
        "search backend plugin (pip install timestep-firecrawl, then set FIRECRAWL_API_KEY)."
    )


def _chosen_name(explicit: str | None) -> tuple[str | None, str]:
    if explicit is not None:
        if not explicit.strip():
            raise ConfigurationError(
                "backend='' names no web search backend: pass a registered name or None."
            )
        return explicit, "backend="
    configured = load_settings().search_backend
    if configured is None:
        return None, ""
    # load_settings prefers the environment; say which place to fix.
    if os.environ.get("TIMESTEP_SEARCH_BACKEND", "").strip():
        return configured, "TIMESTEP_SEARCH_BACKEND"
    return configured, "search_backend in the config file"


def _build(key: str, registration: plugins.Registration[SearchBackendFactory]) -> SearchBackend:
    factory = registration.value
    with _lock:
        cached = _built.get(id(factory))
    if cached is not None and cached[0] is factory:
        return cached[1]
    try:
        backend: object = factory()
    except TimestepError:
        raise
    except Exception as error:
        raise PluginError(
            f"Plugin {registration.plugin!r} failed to build web search backend {key!r}: "
            f"{type(error).__name__}: {error}. Fix or uninstall that plugin.",
            plugin=registration.plugin,
        ) from error
    if not is_search_backend(backend):
        raise PluginError(
            f"Plugin {registration.plugin!r} registered web search backend {key!r}, but its "
            f"factory returned {backend!r}, which has no `async def search(self, query, *, "
            "limit, allowed_domains)` method.",
            plugin=registration.plugin,
        )
    with _lock:
        _built[id(factory)] = (factory, cast(SearchBackend, backend))
    return cast(SearchBackend, backend)


def _reset_for_tests() -> None:
    """Forget built backends and the one-time warning (tests that change plugins)."""
    global _warned_not_configured
    with _lock:
        _built.clear()
        _warned_not_configured = False
