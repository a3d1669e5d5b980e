"""Cleanup that runs when an event loop shuts down, for resources cached per loop.

Connections belong to the event loop that opened them, so pools and HTTP clients are cached
per loop. A program that runs a loop per call (``asyncio.run`` in a sync web handler, a
Celery task) and never calls ``timestep.aclose()`` must not leave each loop's connections
open for the life of the process. An event loop has no "closing" callback, but
``shutdown_asyncgens()`` (which ``asyncio.run``, ``asyncio.Runner`` and asgiref's
``async_to_sync`` call before closing the loop, while it still runs) finalises every async
generator started on it and not yet finished; an async generator whose ``finally`` awaits the
cleanup is therefore a shutdown hook.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable

__all__ = ["at_loop_shutdown"]

_log = logging.getLogger(__name__)


def at_loop_shutdown(cleanup: Callable[[], Awaitable[None]]) -> AsyncGenerator[None] | None:
    """Await ``cleanup()`` on the running loop when it shuts down; return the hook.

    ``await hook.aclose()`` runs the cleanup early (make it safe to run twice). ``None`` when
    the loop is already shutting down: a hook started then would never run. Errors of the
    cleanup are logged, not raised: shutting down goes on. Keep a reference to the hook; the
    loop holds it only weakly.
    """
    loop = asyncio.get_running_loop()
    if getattr(loop, "_asyncgens_shutdown_called", False):
        return None

    async def hook() -> AsyncGenerator[None]:
        try:
            yield
        finally:
            try:
                await cleanup()
            except Exception:
                _log.warning("Cleaning up as the event loop ended failed", exc_info=True)

    started = hook()
    # The first step runs to the `yield` without suspending, so it completes synchronously;
    # starting it registers the generator with the running loop for shutdown_asyncgens().
    with contextlib.suppress(StopIteration):
        started.asend(None).send(None)
    return started
