"""The ``timestep`` pytest plugin (entry point ``pytest11``): fixtures for Timestep users.

Installed with timestep, so any project's tests can use them:

- ``timestep_home``: an isolated ``TIMESTEP_HOME`` with the database settings cleared.
- ``sqlite_url`` / ``postgres_url``: a fresh, empty database per test. ``postgres_url`` creates
  a scratch database on the server named by ``TIMESTEP_TEST_PG_URL`` (default: the local server)
  and skips when none is reachable, unless ``TIMESTEP_REQUIRE_POSTGRES=1``.
- ``db_url``: parametrized over both, so one test covers both built-in backends.
- ``scripted_provider``: a :class:`~timestep.testing.ScriptedModelProvider` routed at
  ``scripted/...`` model names.
- ``register_plugin``: register a plugin object for one test; it is removed afterwards.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .. import plugins
from ..hookspecs import hookimpl
from ..run import _reset_default_model_provider
from ..storage import close_backends
from .models import ScriptedModelProvider

__all__ = [
    "db_url",
    "postgres_server",
    "postgres_url",
    "register_plugin",
    "scripted_provider",
    "sqlite_url",
    "timestep_home",
]

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
_SETTINGS_ENV = (
    "TIMESTEP_DB_URL",
    "PG_CONNECTION_URI",
    "TIMESTEP_TRACING",
    "TIMESTEP_SEARCH_BACKEND",
    "TIMESTEP_TRACE_PAYLOADS",
)


@pytest.fixture
def timestep_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty ``TIMESTEP_HOME``, with no database URL from the environment."""
    home = tmp_path / "timestep-home"
    monkeypatch.setenv("TIMESTEP_HOME", str(home))
    for name in _SETTINGS_ENV:
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> AsyncIterator[str]:
    """A fresh SQLite database file for this test."""
    yield f"sqlite:///{tmp_path / 'timestep.db'}"
    await close_backends()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """An admin URL of a reachable PostgreSQL server (skips when there is none)."""
    admin_url = os.environ.get("TIMESTEP_TEST_PG_URL", DEFAULT_ADMIN_URL)
    try:
        asyncio.run(_pg_execute(admin_url, "SELECT 1"))
    except Exception as error:
        if os.environ.get("TIMESTEP_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL at {admin_url} is required but unreachable: {error}")
        pytest.skip(f"no PostgreSQL at {admin_url} ({error}); set TIMESTEP_TEST_PG_URL")
    yield admin_url


@pytest.fixture
async def postgres_url(postgres_server: str) -> AsyncIterator[str]:
    """A fresh PostgreSQL database for this test, dropped afterwards."""
    name = f"timestep_test_{uuid.uuid4().hex[:12]}"
    await _pg_execute(postgres_server, f'CREATE DATABASE "{name}"')
    base, _, _ = postgres_server.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        await close_backends()
        await _pg_execute(postgres_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each built-in backend in turn: a fresh SQLite file, then a fresh PostgreSQL database."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def register_plugin() -> Iterator[Callable[[object], str]]:
    """Register plugin objects for the duration of one test::

    def test_mine(register_plugin):
        register_plugin(MyPlugin())
    """
    names: list[str] = []

    def register(plugin: object, name: str | None = None) -> str:
        registered = plugins.register(plugin, name=name or f"test-plugin-{uuid.uuid4().hex[:8]}")
        names.append(registered)
        return registered

    yield register
    for name in reversed(names):
        plugins.unregister(name)


class _ScriptedPlugin:
    def __init__(self, provider: ScriptedModelProvider) -> None:
        self.provider = provider

    @hookimpl
    def register_model_providers(self, register: Callable[[str, Any], None]) -> None:
        register("scripted", lambda: self.provider)


@pytest.fixture
def scripted_provider(
    register_plugin: Callable[..., str],
) -> Iterator[ScriptedModelProvider]:
    """A scripted provider serving ``Agent(model="scripted/NAME")`` through normal routing."""
    provider = ScriptedModelProvider()
    register_plugin(_ScriptedPlugin(provider), "timestep-scripted")
    # run_agent's shared provider caches what it built per prefix: start and end clean.
    _reset_default_model_provider()
    yield provider
    _reset_default_model_provider()


async def _pg_execute(url: str, sql: str) -> None:
    import asyncpg

    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()
