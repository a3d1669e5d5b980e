"""Fixtures: fake Ollama servers on loopback and providers pointed at them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from fake_ollama import FakeOllama
from timestep_ollama import OllamaModelProvider

# Nothing listens on the discard port, so a request that escaped the fakes fails fast and
# never leaves the machine.
UNREACHABLE = "http://127.0.0.1:9"


@pytest.fixture(autouse=True)
def _isolated(timestep_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's Ollama settings, keys or plugin selection."""
    for name in ("OLLAMA_API_KEY", "TIMESTEP_LOAD_PLUGINS", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OLLAMA_HOST", UNREACHABLE)
    monkeypatch.setenv("OLLAMA_CLOUD_HOST", UNREACHABLE)


def _serve() -> Iterator[FakeOllama]:
    server = FakeOllama()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def ollama_server() -> Iterator[FakeOllama]:
    """A fake local Ollama server."""
    yield from _serve()


@pytest.fixture
def cloud_server() -> Iterator[FakeOllama]:
    """A second fake server, standing in for Ollama Cloud."""
    yield from _serve()


@pytest.fixture
async def provider(ollama_server: FakeOllama) -> AsyncIterator[OllamaModelProvider]:
    """An ``OllamaModelProvider`` whose local server is ``ollama_server``."""
    provider = OllamaModelProvider(base_url=ollama_server.url)
    yield provider
    await provider.aclose()
