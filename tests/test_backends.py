"""Every backend passes the same conformance suite; migrations run once and are versioned."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_connection

from timestep import StorageError, StorageUnavailableError
from timestep.storage import SQLStateBackend, StateBackend, get_backend
from timestep.storage.schema import MIGRATIONS, migrations
from timestep.testing import StateBackendConformance, make_record


class TestSQLiteBackend(StateBackendConformance):
    @pytest.fixture
    async def backend(self, sqlite_url: str) -> AsyncIterator[StateBackend]:
        backend = SQLStateBackend(sqlite_url)
        yield backend
        await backend.close()


class TestPostgresBackend(StateBackendConformance):
    @pytest.fixture
    async def backend(self, postgres_url: str) -> AsyncIterator[StateBackend]:
        backend = SQLStateBackend(postgres_url)
        yield backend
        await backend.close()


class TestThirdPartyMemoryBackend(StateBackendConformance):
    """The installed example plugin's backend, found by its URL scheme like any user's."""

    @pytest.fixture
    async def backend(self) -> AsyncIterator[StateBackend]:
        yield get_backend(f"memory://{uuid.uuid4().hex}")


async def test_one_backend_per_url_per_process(sqlite_url: str) -> None:
    assert get_backend(sqlite_url) is get_backend(
        sqlite_url.replace("sqlite://", "sqlite+aiosqlite://")
    )


async def test_migrations_are_applied_once_and_recorded(db_url: str) -> None:
    backends = [SQLStateBackend(db_url) for _ in range(4)]
    try:
        # Fresh database, several first users at once: all agree, none fails.
        await asyncio.gather(*(b.save(make_record(), expected_version=None) for b in backends))
        async with backends[0].transaction() as conn:
            rows = (await conn.execute(select(migrations.c.component, migrations.c.version))).all()
        expected = [(c, v) for c, steps in MIGRATIONS.items() for v in range(1, len(steps) + 1)]
        assert sorted(rows) == sorted(expected)
        assert len(await backends[0].list()) == len(backends)
    finally:
        for backend in backends:
            await backend.close()


async def test_a_database_from_a_newer_timestep_is_refused(db_url: str) -> None:
    backend = SQLStateBackend(db_url)
    await backend.list()
    async with backend.transaction() as conn:
        await conn.execute(
            migrations.insert().values(
                component="run_states", version=999, applied_at=datetime.now(UTC)
            )
        )
    await backend.close()
    newer = SQLStateBackend(db_url)
    with pytest.raises(StorageError, match=r"'run_states' tables are at version 999.*Upgrade"):
        await newer.list()
    await newer.close()


async def test_a_dropped_table_is_a_storage_error_not_a_driver_error(sqlite_url: str) -> None:
    backend = SQLStateBackend(sqlite_url)
    await backend.save(make_record("s"), expected_version=None)
    async with backend.transaction() as conn:
        await conn.execute(text("DROP TABLE timestep_run_states"))
    with pytest.raises(StorageError, match="changed by hand"):
        await backend.load("Ops", "s")
    await backend.close()


async def test_a_connection_lost_while_committing_says_the_outcome_is_unknown(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = SQLStateBackend(sqlite_url)
    async with backend.transaction() as conn:
        await conn.execute(text("CREATE TABLE notes (body TEXT)"))

    def lost(self: AsyncAdapt_aiosqlite_connection) -> None:
        self.rollback()  # what a server does with the transaction of a client that vanished
        raise ConnectionResetError("the server went away")

    # Lost before the body finished: nothing was written, and the error says so.
    with pytest.raises(StorageUnavailableError, match="nothing was written"):
        async with backend.transaction() as conn:
            raise ConnectionResetError("the server went away")
    # Lost while committing: the change may have landed.
    monkeypatch.setattr(AsyncAdapt_aiosqlite_connection, "commit", lost)
    with pytest.raises(StorageUnavailableError, match="may or may not have been written"):
        async with backend.transaction() as conn:
            await conn.execute(text("INSERT INTO notes VALUES ('hi')"))
    await backend.close()


async def test_a_new_sqlite_file_locked_by_another_first_user_is_waited_for(
    tmp_path: Path,
) -> None:
    # Switching a fresh file to WAL fails at once, busy timeout or not, while another
    # connection holds a lock: several processes opening a new database together.
    path = tmp_path / "new.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("CREATE TABLE other_app (a)")
    backend = SQLStateBackend(f"sqlite:///{path}")
    saving = asyncio.create_task(backend.save(make_record(), expected_version=None))
    await asyncio.sleep(0.3)
    holder.execute("COMMIT")
    holder.close()
    assert (await saving).version == 1
    await backend.close()
