"""Where run states live: the backend protocol and the lookup of a backend for a URL.

Example::

    backend = get_backend("sqlite:///./states.db")
    rows = await backend.list(status=StateStatus.INTERRUPTED)
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncGenerator

from .._loops import at_loop_shutdown
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

_log = logging.getLogger(__name__)


class _LoopBackends:
    """The backends opened on one event loop, and the hook that closes them when it ends."""

    def __init__(self) -> None:
        self.backends: dict[str, StateBackend] = {}
        self.hook: AsyncGenerator[None] | None = None


# Pools are bound to the event loop that opened their connections, so the cache is per loop:
# in an ordinary program (one loop) that is exactly one backend and one pool per URL.
_backends: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopBackends] = (
    weakref.WeakKeyDictionary()
)


def get_backend(url: str | None = None) -> StateBackend:
    """The shared backend for ``url`` (resolved through :mod:`timestep.config` when ``None``).

    The backend is chosen by URL scheme among those registered through the
    ``register_state_backends`` hook. Must be called inside a running event loop.

    Backends, and their pools, are shared per event loop. They are closed when the loop shuts
    down (``asyncio.run``, ``asyncio.Runner`` and anything else that calls
    ``loop.shutdown_asyncgens()``), so a program that runs a loop per request and never
    calls :func:`timestep.aclose` holds no more connections than one loop uses.
    """
    resolved = normalize_db_url(url) if url else load_settings().db_url
    loop = asyncio.get_running_loop()
    per_loop = _backends.get(loop)
    if per_loop is None:
        _release_closed_loops()
        per_loop = _backends[loop] = _LoopBackends()
        per_loop.hook = _close_at_shutdown(loop, per_loop)
    backend = per_loop.backends.get(resolved)
    if backend is None:
        backend = backend_factory(resolved)(resolved)
        per_loop.backends[resolved] = backend
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
    per_loop = _backends.pop(asyncio.get_running_loop(), None)
    if per_loop is None:
        return
    backends = list(per_loop.backends.values())
    per_loop.backends.clear()
    hook, per_loop.hook = per_loop.hook, None
    if hook is not None:
        await hook.aclose()
    for backend in backends:
        await backend.close()


def _release_closed_loops() -> None:
    """Release the backends of loops that were closed without ``shutdown_asyncgens()`` (a
    hand-run ``loop.close()``) and without :func:`close_backends`."""
    for loop, per_loop in list(_backends.items()):
        if not loop.is_closed():
            continue
        del _backends[loop]
        per_loop.hook = None
        for backend in per_loop.backends.values():
            abandon = getattr(backend, "_abandon", None)
            if abandon is not None:
                abandon()
        per_loop.backends.clear()


def _close_at_shutdown(
    loop: asyncio.AbstractEventLoop, per_loop: _LoopBackends
) -> AsyncGenerator[None] | None:
    """Have ``loop`` close ``per_loop``'s backends when it shuts down (see
    :mod:`timestep._loops`); without this a loop that ends without :func:`close_backends`
    would leave its connections open for the life of the process."""
    # Weakly: the cache's value must not keep its own key alive.
    loop_ref = weakref.ref(loop)

    async def close() -> None:
        ended = loop_ref()
        if ended is not None and _backends.get(ended) is per_loop:
            del _backends[ended]
        backends = list(per_loop.backends.values())
        per_loop.backends.clear()
        # One failing backend must not keep the others open.
        results = await asyncio.gather(*(b.close() for b in backends), return_exceptions=True)
        for backend, result in zip(backends, results, strict=True):
            if isinstance(result, BaseException):
                _log.warning("Closing %r as its event loop ended failed: %r", backend, result)

    return at_loop_shutdown(close)
