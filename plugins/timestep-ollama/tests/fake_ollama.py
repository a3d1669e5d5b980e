"""A fake Ollama server: a real HTTP server on 127.0.0.1 that speaks ``POST /api/chat``.

It plays back scripted replies in order and records every request, so a test can say what the
"model" answers and then check exactly what the ``ollama`` client sent. Replies are shaped like
a real Ollama server's: one JSON object when ``stream`` is false; otherwise NDJSON chunks over
chunked transfer encoding, one per piece of thinking or text and one per tool call, then a
final ``done: true`` chunk with ``done_reason`` and the token counts.

Example::

    server.reply(Reply("Hello!"))
    server.reply(Reply(tool_calls=[tool_call("get_weather", city="Paris")]))
    ... run the agent ...
    assert server.requests[0].messages[-1] == {"role": "user", "content": "hi"}
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

from scripted_server import ScriptedServer

__all__ = ["FakeOllama", "Received", "Reply", "tool_call"]


def tool_call(name: str, **arguments: Any) -> dict[str, Any]:
    """One tool call as Ollama returns it: a name and the arguments as a JSON object."""
    return {"function": {"name": name, "arguments": arguments}}


@dataclass
class Reply:
    """What the fake model answers to one request.

    ``chunks`` overrides how a streamed reply is cut up: each entry is the ``message`` of one
    streamed chunk (``{"content": "Hel"}``, ``{"tool_calls": [...]}``). ``status`` and
    ``error`` make the server refuse the request the way Ollama does; ``stream_error`` makes
    a streamed reply fail midway with an ``{"error": ...}`` line, and ``end_early`` cuts it
    off without its final chunk.
    """

    content: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    thinking: str = ""
    prompt_eval_count: int = 20
    eval_count: int = 10
    done_reason: str = "stop"
    chunks: list[dict[str, Any]] | None = None
    status: int = 200
    error: str | None = None
    end_early: bool = False
    stream_error: str | None = None


@dataclass
class Received:
    """One request the server got."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def model(self) -> str:
        """The model name sent."""
        return str(self.body.get("model"))

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The chat messages sent."""
        return list(self.body.get("messages") or [])

    @property
    def tools(self) -> list[dict[str, Any]]:
        """The tools sent (empty when none)."""
        return list(self.body.get("tools") or [])

    @property
    def tool_names(self) -> list[str]:
        """The names of the tools sent."""
        return [tool["function"]["name"] for tool in self.tools]

    @property
    def options(self) -> dict[str, Any]:
        """The ``options`` sent (empty when none)."""
        return dict(self.body.get("options") or {})


class FakeOllama(ScriptedServer[Reply, Received]):
    """The server. Start it with :meth:`start` (the fixture does); ``url`` is where it listens."""

    reply_type = Reply

    def __init__(self) -> None:
        super().__init__(_handler_for)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return self.address


def _handler_for(server: FakeOllama) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Small writes would otherwise wait ~40 ms for the client's delayed ACK.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            return None

        def do_GET(self) -> None:
            if self.path == "/":
                self._send(200, b"Ollama is running", "text/plain; charset=utf-8")
            else:
                self._send_json(404, {"error": "404 page not found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError as error:
                self._send_json(400, {"error": f"invalid character in request body: {error}"})
                return
            received = Received(
                path=self.path,
                headers={key.lower(): value for key, value in self.headers.items()},
                body=body,
            )
            if self.path != "/api/chat":
                server._record(received)
                self._send_json(404, {"error": "404 page not found"})
                return
            if not body.get("model"):
                server._record(received)
                self._send_json(400, {"error": "model is required"})
                return
            reply = server._next(received)
            if reply is None:
                self._send_json(500, {"error": "fake ollama: no scripted reply for this request"})
            elif reply.status != 200:
                self._send_json(reply.status, {"error": reply.error or "error"})
            elif body.get("stream", True):
                self._stream(_chunks(reply, body["model"]), reply)
            else:
                self._send_json(200, _whole(reply, body["model"]))

        def _stream(self, chunks: Iterator[dict[str, Any]], reply: Reply) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for chunk in chunks:
                    if chunk["done"] and reply.stream_error:
                        self._line({"error": reply.stream_error})
                    if chunk["done"] and (reply.end_early or reply.stream_error):
                        break
                    self._line(chunk)
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                # The client stopped reading (a consumer that ended the stream early).
                self.close_connection = True

        def _line(self, payload: dict[str, Any]) -> None:
            line = json.dumps(payload).encode() + b"\n"
            self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
            self.wfile.flush()

        def _send_json(self, status: int, payload: dict[str, Any]) -> None:
            self._send(status, json.dumps(payload).encode(), "application/json; charset=utf-8")

        def _send(self, status: int, data: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _message(**fields: Any) -> dict[str, Any]:
    return {"role": "assistant", "content": "", **fields}


def _final(reply: Reply, model: str, message: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": model,
        "created_at": _now(),
        "message": message,
        "done": True,
        "done_reason": reply.done_reason,
        "total_duration": 5_000_000,
        "load_duration": 1_000_000,
        "prompt_eval_count": reply.prompt_eval_count,
        "prompt_eval_duration": 2_000_000,
        "eval_count": reply.eval_count,
        "eval_duration": 2_000_000,
    }


def _whole(reply: Reply, model: str) -> dict[str, Any]:
    fields: dict[str, Any] = {"content": reply.content}
    if reply.thinking:
        fields["thinking"] = reply.thinking
    if reply.tool_calls:
        fields["tool_calls"] = reply.tool_calls
    return _final(reply, model, _message(**fields))


def _chunks(reply: Reply, model: str) -> Iterator[dict[str, Any]]:
    pieces = reply.chunks
    if pieces is None:
        pieces = [{"thinking": part} for part in _words(reply.thinking)]
        pieces += [{"content": part} for part in _words(reply.content)]
        pieces += [{"tool_calls": [call]} for call in reply.tool_calls]
    for piece in pieces:
        yield {"model": model, "created_at": _now(), "message": _message(**piece), "done": False}
    yield _final(reply, model, _message())


def _words(text: str) -> list[str]:
    return re.findall(r"\s*\S+\s*", text) if text.strip() else ([text] if text else [])
