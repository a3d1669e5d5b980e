"""Users of brand-new conversations, each an OS process of its own (tests/test_sessions.py).

Every writer waits at a barrier, so all start together, then adds one message to each of the
sessions ``fresh-0`` ... ``fresh-{sessions-1}`` at once: many first writes race per session.
"""

from __future__ import annotations

import asyncio
from typing import Any

from timestep import TimestepSession
from timestep.storage import close_backends


def write(url: str, start: Any, writer: str, sessions: int) -> None:
    """The body of one writer process (``start`` is a ``multiprocessing.Barrier``)."""
    asyncio.run(_write(url, start, writer, sessions))


async def _write(url: str, start: Any, writer: str, sessions: int) -> None:
    try:
        await asyncio.to_thread(start.wait, 60)
        await asyncio.gather(
            *(
                TimestepSession(f"fresh-{s}", url=url).add_items(
                    [{"role": "user", "content": f"{writer}:{s}"}]
                )
                for s in range(sessions)
            )
        )
    finally:
        await close_backends()
