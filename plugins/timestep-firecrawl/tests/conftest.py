"""Each test gets a fresh fake Firecrawl on loopback and an environment pointing at it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from fake_firecrawl import FakeFirecrawl, start, stop
from timestep import plugins
from timestep.tools import search_backends


@pytest.fixture(autouse=True)
def _isolated(timestep_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the developer's keys, search choice or other installed plugins."""
    for name in ("FIRECRAWL_API_KEY", "FIRECRAWL_API_URL", "TIMESTEP_SEARCH_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    # Only this distribution's entry point loads, as if it were the one search plugin installed.
    monkeypatch.setenv("TIMESTEP_LOAD_PLUGINS", "firecrawl")
    plugins._reset_for_tests()
    search_backends._reset_for_tests()
    yield
    plugins._reset_for_tests()
    search_backends._reset_for_tests()


@pytest.fixture
def firecrawl() -> Iterator[FakeFirecrawl]:
    """A running fake Firecrawl; ``.url`` is its base URL, ``.requests`` what it received."""
    fake = FakeFirecrawl()
    server = start(fake)
    yield fake
    stop(server)


@pytest.fixture
def firecrawl_env(firecrawl: FakeFirecrawl, monkeypatch: pytest.MonkeyPatch) -> FakeFirecrawl:
    """The fake Firecrawl, configured the way a user configures the real one."""
    monkeypatch.setenv("FIRECRAWL_API_KEY", firecrawl.api_key)
    monkeypatch.setenv("FIRECRAWL_API_URL", firecrawl.url)
    return firecrawl


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL nothing listens on: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
