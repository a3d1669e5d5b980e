"""Where run states live: the backend protocol and the lookup of a backend for a URL.

Example::

    backend = get_backend("sqlite:///./states.db")
    rows = await backend.list(status=StateStatus.INTERRUPTED)
"""

from __future__ import annotations

import asyncio
import weakref

from ..config import load_settings, normalize_db_url, redact_url, url_scheme
from ..errors import ConfigurationError
from ..hookspecs import BackendFactory
from .base import StateBackend, StateRecord, StateStatus, StoredState
from .file import JSONFileBackend
from .sql import SQLStateBackend

__all__ = [
    "JSONFileBackend",
    "SQLStateBackend",
    "StateBackend",
    "StateRecord",
    "StateStatus",
    "StoredState",
    "backend_factory",
    "close_backends",
    "get_backend",
]

# Pools are bound to the event loop that opened their connections, so the cache is per loop:
# in an ordinary program (one loop) that is exactly one backend and one pool per URL.
_backends: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, StateBackend]] = (
    weakref.WeakKeyDictionary()
)


def get_backend(url: str | None = None) -> StateBackend:
    """The shared backend for ``url`` (resolved through :mod:`timestep.config` when ``None``).

    The backend is chosen by URL scheme among those registered through the
    ``register_state_backends`` hook. Must be called inside a running event loop.
    """
    resolved = normalize_db_url(url) if url else load_settings().db_url
    per_loop = _backends.setdefault(asyncio.get_running_loop(), {})
    backend = per_loop.get(resolved)
    if backend is None:
        backend = backend_factory(resolved)(resolved)
        per_loop[resolved] = backend
    return backend


def backend_factory(url: str) -> BackendFactory:
    """The registered factory for ``url``'s scheme.

    Raises:
        ConfigurationError: no installed plugin handles the scheme; the message lists those
            that do.
    """
    from .. import plugins

    scheme = url_scheme(url)
    factories = plugins.state_backend_factories()
    registration = factories.get(scheme)
    if registration is None:
        known = ", ".join(f"{s}://" for s in sorted(factories))
        raise ConfigurationError(
            f"No storage backend handles {redact_url(url)!r} (scheme {scheme!r}). Known "
            f"schemes: {known}. Install the plugin that provides {scheme}:// or use a "
            "postgresql:// or sqlite:/// URL."
        )
    return registration.value


async def close_backends() -> None:
    """Close every backend opened in this event loop (call before the loop ends)."""
    per_loop = _backends.pop(asyncio.get_running_loop(), {})
    for backend in per_loop.values():
        await backend.close()
