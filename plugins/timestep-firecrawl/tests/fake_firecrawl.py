"""A fake Firecrawl API on 127.0.0.1: a real HTTP server speaking the v2 search protocol.

It answers ``POST /v2/search`` the way api.firecrawl.dev does (bearer-token authentication, a
JSON body with ``query``, ``limit`` and ``includeDomains``, a
``{"success": true, "data": {"web": [...]}}`` reply) and records every request, so tests drive
the real firecrawl-py client and then check what went over the wire.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

PAGES: list[dict[str, Any]] = [
    {
        "url": "https://docs.python.org/3/whatsnew/3.13.html",
        "title": "What's New In Python 3.13",
        "description": "This article explains the new features in Python 3.13.",
    },
    {
        "url": "https://peps.python.org/pep-0719/",
        "title": "PEP 719 - Python 3.13 Release Schedule",
        "description": "The release schedule for Python 3.13.",
    },
    {
        "url": "https://realpython.com/python313-new-features/",
        "title": "Python 3.13: Cool New Features for You to Try",
        "description": "A tour of the free-threaded build, the new REPL and better errors.",
    },
    {
        "url": "https://en.wikipedia.org/wiki/History_of_Python",
        "title": "History of Python - Wikipedia",
        "description": "Python was conceived in the late 1980s by Guido van Rossum.",
    },
]


@dataclass
class RecordedRequest:
    """One request the fake received."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeFirecrawl:
    """The server's behaviour, changeable per test, and what it has seen."""

    api_key: str = "fc-test-key"
    """The key it accepts ("": no authentication, like a self-hosted server)."""
    pages: list[dict[str, Any]] = field(default_factory=lambda: list(PAGES))
    honor_domains: bool = True
    """False: ignore ``includeDomains``, as a misbehaving service might."""
    failure: tuple[int, dict[str, Any] | str] | None = None
    """(status, body) to answer every search with instead of results."""
    delay: float = 0.0
    """Seconds to wait before answering (cut short when the server stops)."""
    requests: list[RecordedRequest] = field(default_factory=list)
    url: str = ""
    stopping: threading.Event = field(default_factory=threading.Event)

    def reply(self, request: RecordedRequest) -> tuple[int, dict[str, Any] | str]:
        if request.path != "/v2/search" or request.method != "POST":
            return 404, {"success": False, "error": f"Cannot {request.method} {request.path}"}
        if self.api_key and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return 401, {"success": False, "error": "Unauthorized: Invalid token"}
        if self.failure is not None:
            return self.failure
        limit = int(request.body.get("limit", 5))
        domains = request.body.get("includeDomains") if self.honor_domains else None
        hits = [p for p in self.pages if not domains or _on(_url_of(p), domains)]
        return 200, {"success": True, "data": {"web": hits[:limit]}, "creditsUsed": 1}


def _url_of(page: dict[str, Any]) -> str:
    return str(page.get("url") or page.get("metadata", {}).get("url", ""))


def _on(url: str, domains: list[str]) -> bool:
    host = urlsplit(url).hostname or ""
    return any(host == d or host.endswith(f".{d}") for d in domains)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        self._answer()

    def do_GET(self) -> None:
        self._answer()

    def _answer(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        request = RecordedRequest(
            method=self.command,
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=json.loads(raw) if raw else {},
        )
        fake.requests.append(request)
        if fake.delay and fake.stopping.wait(fake.delay):
            return
        status, body = fake.reply(request)
        payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json; charset=utf-8")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean; the recorded requests say what happened


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeFirecrawl


def start(fake: FakeFirecrawl) -> _Server:
    """Serve ``fake`` on an ephemeral 127.0.0.1 port in a background thread."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.fake = fake
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    # A short poll interval: shutdown() waits up to one interval, once per test.
    serve = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-firecrawl"
    )
    serve.daemon = True
    serve.start()
    return server


def stop(server: _Server) -> None:
    """Stop serving and release any request still waiting out a delay."""
    server.fake.stopping.set()
    server.shutdown()
    server.server_close()
