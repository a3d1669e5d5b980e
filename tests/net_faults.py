"""A TCP proxy in front of PostgreSQL that cuts a connection at a chosen moment.

A restart only loses a statement's reply by luck of timing; the proxy does it on purpose::

    proxy = await CuttingProxy.open("127.0.0.1", 5432)
    url = f"postgresql://postgres@127.0.0.1:{proxy.port}/db"
    proxy.cut_next(after_reply=True)   # the next request runs; its reply never arrives
    ...
    proxy.close()

``after_reply=False`` drops the next request instead: the server never sees it. Either way the
client's connection is closed, as when a network path or a pooler dies. ``stall_next()`` drops
the next request and keeps the connection open, silent: a network path that died without a
word, which only a statement timeout notices.
"""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["CuttingProxy"]


class CuttingProxy:
    """Forwards every connection to ``host:port``; :meth:`cut_next` arms one cut."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.target = port
        self.port = 0
        self.cuts = 0  # cuts made so far
        self._armed: bool | None = None  # None: pass through; else after_reply of the next cut
        self._stall = False
        self._server: asyncio.Server | None = None
        self._pumps: set[asyncio.Task[None]] = set()

    @classmethod
    async def open(cls, host: str, port: int) -> CuttingProxy:
        proxy = cls(host, port)
        proxy._server = await asyncio.start_server(proxy._serve, "127.0.0.1", 0)
        proxy.port = proxy._server.sockets[0].getsockname()[1]
        return proxy

    def cut_next(self, *, after_reply: bool) -> None:
        """Cut the connection that sends the next request, before or after the server ran it."""
        self._armed = after_reply

    def stall_next(self) -> None:
        """Swallow the next request and leave its connection open and silent."""
        self._stall = True

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for pump in list(self._pumps):
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)

    async def _serve(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        server_in, server_out = await asyncio.open_connection(self.host, self.target)
        cut = asyncio.Event()
        swallow = asyncio.Event()  # set: the server's next reply is dropped, then the cut

        async def requests() -> None:
            while data := await client_in.read(65536):
                if self._stall:
                    self._stall = False
                    self.cuts += 1
                    # Nothing more passes either way, until the client gives up and hangs up.
                    while await client_in.read(65536):
                        pass
                    return
                if self._armed is not None:
                    after_reply, self._armed = self._armed, None
                    self.cuts += 1
                    if not after_reply:
                        cut.set()
                        return
                    swallow.set()
                server_out.write(data)
                await server_out.drain()

        async def replies() -> None:
            while data := await server_in.read(65536):
                if swallow.is_set():
                    cut.set()  # the server answered, so it ran the request (autocommit)
                    return
                client_out.write(data)
                await client_out.drain()

        pumps = [asyncio.create_task(requests()), asyncio.create_task(replies())]
        self._pumps.update(pumps)
        ended = asyncio.create_task(cut.wait())
        await asyncio.wait([*pumps, ended], return_when=asyncio.FIRST_COMPLETED)
        for task in [*pumps, ended]:
            task.cancel()
        for writer in (client_out, server_out):
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        self._pumps.difference_update(pumps)
