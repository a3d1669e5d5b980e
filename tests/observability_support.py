"""Helpers for the observability tests: known token counts, stored rows, a fake Responses API.

The fake server speaks just enough of OpenAI's Responses API (``POST /v1/responses``, not
streamed) for the SDK's real ``OpenAIResponsesModel`` to run against it on 127.0.0.1: the
model the SDK traces itself, whose usage reaches Timestep through its response spans.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from agents import function_tool
from agents.usage import InputTokensDetails, OutputTokensDetails, Usage
from sqlalchemy import select

from timestep.observability.lookup import sql_backend
from timestep.storage.schema import model_usage, spans, traces


def tokens(input_tokens: int, output_tokens: int, *, cached: int = 0, reasoning: int = 0) -> Usage:
    """The usage a scripted model step reports."""
    return Usage(
        requests=1,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
        input_tokens_details=InputTokensDetails(cached_tokens=cached, cache_write_tokens=0),
        output_tokens_details=OutputTokensDetails(reasoning_tokens=reasoning),
    )


def ops_tools(ran: list[str] | None = None) -> list[Any]:
    """``delete_file`` (needs approval) and ``look`` (does not)."""
    done = ran if ran is not None else []

    @function_tool(needs_approval=True)
    def delete_file(path: str) -> str:
        """Delete a file."""
        done.append(path)
        return f"deleted {path}"

    @function_tool
    def look(path: str) -> str:
        """Look at a file."""
        return f"{path} is 3 bytes"

    return [delete_file, look]


async def stored(url: str, table_name: str) -> list[dict[str, Any]]:
    """Every row of one observability table, as written."""
    table = {"traces": traces, "spans": spans, "model_usage": model_usage}[table_name]
    async with sql_backend(url).transaction() as conn:
        return [dict(row._mapping) for row in await conn.execute(select(table))]


async def usage_rows(url: str) -> list[tuple[Any, ...]]:
    """Model usage rows, oldest first, as (agent, model, provider, in, cached, out,
    reasoning, total, cost in nano-dollars, source)."""
    async with sql_backend(url).transaction() as conn:
        rows = await conn.execute(
            select(
                model_usage.c.agent_name,
                model_usage.c.model,
                model_usage.c.provider,
                model_usage.c.input_tokens,
                model_usage.c.cached_tokens,
                model_usage.c.output_tokens,
                model_usage.c.reasoning_tokens,
                model_usage.c.total_tokens,
                model_usage.c.cost_nanousd,
                model_usage.c.source,
            ).order_by(model_usage.c.ended_at)
        )
        return [tuple(row) for row in rows]


def response_body(text: str, usage: dict[str, Any], model: str) -> dict[str, Any]:
    """A completed Responses API reply with one assistant message."""
    return {
        "id": "resp_fake_1",
        "object": "response",
        "created_at": 1_767_225_600,
        "model": model,
        "status": "completed",
        "output": [
            {
                "type": "message",
                "id": "msg_fake_1",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        ],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": usage,
    }


@contextmanager
def fake_responses_api(replies: list[dict[str, Any]]) -> Iterator[tuple[str, list[Any]]]:
    """Serve ``replies`` in order at ``http://127.0.0.1:PORT/v1``; yields the base URL and
    the request bodies received."""
    received: list[Any] = []
    queue = list(replies)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            received.append(json.loads(self.rfile.read(length) or b"{}"))
            body = json.dumps(queue.pop(0)).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", received
    finally:
        server.shutdown()
        server.server_close()
