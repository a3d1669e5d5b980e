"""The part every fake server here shares: a loopback HTTP server in a thread that answers
each request with the next queued reply and records what it received."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, TypeVar

ReplyT = TypeVar("ReplyT")
ReceivedT = TypeVar("ReceivedT")


class ScriptedServer(Generic[ReplyT, ReceivedT]):
    """Queue replies with :meth:`reply`; read what arrived in :attr:`requests`.

    Subclasses name their reply type (a plain string becomes ``reply_type(text)``) and build
    their request handler from the server instance.
    """

    reply_type: Callable[[str], ReplyT]

    def __init__(self, handler_for: Callable[[Any], type[BaseHTTPRequestHandler]]) -> None:
        self.replies: deque[ReplyT] = deque()
        self.requests: list[ReceivedT] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def address(self) -> str:
        """``http://127.0.0.1:PORT``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def reply(self, *replies: ReplyT | str) -> None:
        """Queue the answers to the next requests, in order (a string is a text reply)."""
        with self._lock:
            self.replies.extend(self.reply_type(r) if isinstance(r, str) else r for r in replies)

    def start(self) -> None:
        """Listen in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop listening and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _record(self, received: ReceivedT) -> None:
        with self._lock:
            self.requests.append(received)

    def _next(self, received: ReceivedT) -> ReplyT | None:
        with self._lock:
            self.requests.append(received)
            return self.replies.popleft() if self.replies else None
