"""A fake OpenAI server: a real HTTP server on 127.0.0.1 speaking the two APIs the SDK uses.

``POST /v1/responses`` (the Responses API, the SDK's default for OpenAI models) and
``POST /v1/chat/completions`` (``openai_use_responses=False``) each answer with one JSON body,
or, when the request says ``"stream": true``, with server-sent events shaped like OpenAI's:
``event: response.*`` / ``data: {...}`` frames ending in ``response.completed`` for the
Responses API, and ``data: {chunk}`` frames ending in ``data: [DONE]`` for Chat Completions.

Like ``fake_ollama``, it plays back scripted replies in order and records every request, so a
test drives it through the real ``openai`` client and then checks exactly what was sent::

    server.reply(Reply(tool_calls=[function_call("transfer_to_billing")]))
    ... run the agent with MultiModelProvider(openai_base_url=server.base_url, ...) ...
    assert server.requests[0].headers["authorization"] == "Bearer test-key"
"""

from __future__ import annotations

import itertools
import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from scripted_server import ScriptedServer

__all__ = ["FakeOpenAI", "Received", "Reply", "function_call"]

RESPONSES_PATH = "/v1/responses"
CHAT_COMPLETIONS_PATH = "/v1/chat/completions"


def function_call(name: str, **arguments: Any) -> dict[str, Any]:
    """One function call the fake model makes; OpenAI sends the arguments as JSON text."""
    return {"name": name, "arguments": json.dumps(arguments)}


@dataclass
class Reply:
    """What the fake model answers to one request: text, function calls, or both."""

    content: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    input_tokens: int = 30
    output_tokens: int = 12
    status: int = 200
    """Any other status answers with OpenAI's error body instead (401, 500, ...)."""


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
    def stream(self) -> bool:
        """Whether the client asked for a streamed reply."""
        return bool(self.body.get("stream", False))

    @property
    def tool_names(self) -> list[str]:
        """The names of the tools sent, in either API's tool shape."""
        return [
            tool["function"]["name"] if "function" in tool else tool["name"]
            for tool in self.body.get("tools") or []
        ]


class FakeOpenAI(ScriptedServer[Reply, Received]):
    """The server. Start it with :meth:`start`; give the client ``base_url``."""

    reply_type = Reply

    def __init__(self) -> None:
        super().__init__(_handler_for)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, what ``openai_base_url`` expects."""
        return f"{self.address}/v1"


def _handler_for(server: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes; with Nagle's algorithm the body would
        # wait for the client's delayed ACK (~40 ms a reply on loopback).
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            return None

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except json.JSONDecodeError as error:
                self._error(400, f"We could not parse the JSON body of your request: {error}")
                return
            received = Received(
                path=self.path,
                headers={key.lower(): value for key, value in self.headers.items()},
                body=body,
            )
            if self.path not in (RESPONSES_PATH, CHAT_COMPLETIONS_PATH):
                server._record(received)
                self._error(404, f"Invalid URL (POST {self.path})", code="unknown_url")
                return
            if not received.headers.get("authorization", "").startswith("Bearer "):
                server._record(received)
                self._error(401, "You didn't provide an API key.", code="invalid_api_key")
                return
            reply = server._next(received)
            if reply is None:
                # A 400, not a 5xx: the client retries server errors, which would only slow
                # down a test that forgot to script a reply.
                self._error(400, "fake openai: no scripted reply for this request")
            elif reply.status != 200:
                self._error(reply.status, f"fake openai: scripted HTTP {reply.status}")
            elif self.path == RESPONSES_PATH and received.stream:
                self._events(_response_events(reply, body))
            elif self.path == RESPONSES_PATH:
                self._send_json(200, _response(reply, body, _items(reply)))
            elif received.stream:
                self._events(_chat_chunks(reply, body))
            else:
                self._send_json(200, _chat_completion(reply, body))

        def _events(self, frames: Iterator[bytes]) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for frame in frames:
                    self.wfile.write(f"{len(frame):x}\r\n".encode() + frame + b"\r\n")
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                # The client stopped reading (a consumer that ended the stream early).
                self.close_connection = True

        def _error(self, status: int, message: str, *, code: str | None = None) -> None:
            error = {"message": message, "type": "invalid_request_error", "param": None}
            self._send_json(status, {"error": {**error, "code": code}})

        def _send_json(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _words(text: str) -> list[str]:
    return re.findall(r"\s*\S+\s*", text) if text.strip() else ([text] if text else [])


# --- Responses API -------------------------------------------------------------------------


def _items(reply: Reply) -> list[dict[str, Any]]:
    """The reply's output items, complete."""
    items: list[dict[str, Any]] = []
    if reply.content:
        items.append(
            {
                "type": "message",
                "id": _id("msg"),
                "status": "completed",
                "role": "assistant",
                "content": [_text_part(reply.content)],
            }
        )
    for call in reply.tool_calls:
        items.append(
            {
                "type": "function_call",
                "id": _id("fc"),
                "call_id": _id("call"),
                "name": call["name"],
                "arguments": call["arguments"],
                "status": "completed",
            }
        )
    return items


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _response(
    reply: Reply,
    body: dict[str, Any],
    output: list[dict[str, Any]],
    status: str = "completed",
    response_id: str | None = None,
) -> dict[str, Any]:
    """The response object: whole, or a streamed snapshot (``in_progress``, no output yet)."""
    done = status == "completed"
    return {
        "id": response_id or _id("resp"),
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "model": body.get("model"),
        "instructions": body.get("instructions"),
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "temperature": 1.0,
        "top_p": 1.0,
        "text": {"format": {"type": "text"}},
        "truncation": "disabled",
        "metadata": {},
        "error": None,
        "incomplete_details": None,
        "usage": _response_usage(reply) if done else None,
    }


def _response_usage(reply: Reply) -> dict[str, Any]:
    return {
        "input_tokens": reply.input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": reply.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": reply.input_tokens + reply.output_tokens,
    }


def _response_events(reply: Reply, body: dict[str, Any]) -> Iterator[bytes]:
    """The Responses API's stream: item by item, text word by word, then the whole response."""
    sequence = itertools.count()
    response_id = _id("resp")

    def event(kind: str, **fields: Any) -> bytes:
        payload = {"type": kind, "sequence_number": next(sequence), **fields}
        return f"event: {kind}\ndata: {json.dumps(payload)}\n\n".encode()

    opening = _response(reply, body, [], "in_progress", response_id)
    yield event("response.created", response=opening)
    yield event("response.in_progress", response=opening)
    items = _items(reply)
    for index, item in enumerate(items):
        where = {"item_id": item["id"], "output_index": index}
        if item["type"] == "message":
            yield event(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "content": []},
            )
            text = item["content"][0]["text"]
            yield event(
                "response.content_part.added", **where, content_index=0, part=_text_part("")
            )
            for word in _words(text):
                yield event(
                    "response.output_text.delta", **where, content_index=0, delta=word, logprobs=[]
                )
            yield event(
                "response.output_text.done", **where, content_index=0, text=text, logprobs=[]
            )
            yield event(
                "response.content_part.done", **where, content_index=0, part=_text_part(text)
            )
        else:
            yield event(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "arguments": ""},
            )
            yield event("response.function_call_arguments.delta", **where, delta=item["arguments"])
            yield event(
                "response.function_call_arguments.done",
                **where,
                name=item["name"],
                arguments=item["arguments"],
            )
        yield event("response.output_item.done", output_index=index, item=item)
    yield event(
        "response.completed", response=_response(reply, body, items, response_id=response_id)
    )


# --- Chat Completions ----------------------------------------------------------------------


def _chat_usage(reply: Reply) -> dict[str, Any]:
    return {
        "prompt_tokens": reply.input_tokens,
        "completion_tokens": reply.output_tokens,
        "total_tokens": reply.input_tokens + reply.output_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def _tool_calls(reply: Reply) -> list[dict[str, Any]]:
    return [
        {
            "id": _id("call"),
            "type": "function",
            "function": {"name": call["name"], "arguments": call["arguments"]},
        }
        for call in reply.tool_calls
    ]


def _finish_reason(reply: Reply) -> str:
    return "tool_calls" if reply.tool_calls else "stop"


def _chat_completion(reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": reply.content or None,
        "refusal": None,
    }
    if reply.tool_calls:
        message["tool_calls"] = _tool_calls(reply)
    return {
        "id": _id("chatcmpl"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model"),
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": _finish_reason(reply),
            }
        ],
        "usage": _chat_usage(reply),
        "system_fingerprint": "fp_fake",
    }


def _chat_chunks(reply: Reply, body: dict[str, Any]) -> Iterator[bytes]:
    """Chat Completions' stream: deltas, the finish reason, the usage if asked, ``[DONE]``."""
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    base = {
        "id": _id("chatcmpl"),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model"),
        "system_fingerprint": "fp_fake",
    }

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        payload: dict[str, Any] = {**base, "choices": [choice]}
        if include_usage:
            payload["usage"] = None
        return f"data: {json.dumps(payload)}\n\n".encode()

    yield chunk({"role": "assistant", "content": "", "refusal": None})
    for word in _words(reply.content):
        yield chunk({"content": word})
    for index, call in enumerate(_tool_calls(reply)):
        function = call["function"]
        opening = {**call, "function": {"name": function["name"], "arguments": ""}}
        yield chunk({"tool_calls": [{"index": index, **opening}]})
        yield chunk(
            {"tool_calls": [{"index": index, "function": {"arguments": function["arguments"]}}]}
        )
    yield chunk({}, _finish_reason(reply))
    if include_usage:
        payload: dict[str, Any] = {**base, "choices": [], "usage": _chat_usage(reply)}
        yield f"data: {json.dumps(payload)}\n\n".encode()
    yield b"data: [DONE]\n\n"
