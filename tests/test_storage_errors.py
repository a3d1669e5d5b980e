"""When the database fails for a reason of its own, the error says which: full, locked, too slow.

Each failure is provoked for real where that is cheap: SQLite's ``max_page_count`` makes it
report "database or disk is full" exactly as a full disk does, a short ``busy_timeout`` stands
in for the 30 s one, and PostgreSQL's ``statement_timeout`` and ``lock_timeout`` are set on the
test's own database while a second connection holds the row. None of these is a hand-edited
schema or an unreachable server, and no message may say so. Nothing stored is lost.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

from scenario import ask_to_delete, ops_agent, paused_run, say
from timestep import (
    RunStateStore,
    StorageError,
    StorageUnavailableError,
    TimestepSession,
    run_agent,
)
from timestep.storage import close_backends, get_backend
from timestep.storage import sql as sql_backend

MISLEADING = ("changed by hand", "fresh database", "Check that it is running")


def assert_names_the_cause(error: StorageError, *words: str) -> None:
    message = str(error)
    for word in words:
        assert word in message, message
    for wrong in MISLEADING:
        assert wrong not in message, message


async def pragma(url: str, statement: str) -> None:
    """Run a PRAGMA on the backend's pooled connection (used one at a time, it is the same)."""
    backend = get_backend(url)
    async with backend.transaction() as conn:  # type: ignore[attr-defined]
        await conn.exec_driver_sql(statement)


# --- SQLite -----------------------------------------------------------------------------------


async def test_a_full_sqlite_database_says_it_is_full_and_keeps_what_it_has(
    sqlite_url: str,
) -> None:
    agent, paused = await paused_run()
    await RunStateStore(agent=agent, session_id="ticket-1", url=sqlite_url).save(paused)
    pages = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
    (count,) = pages.execute("PRAGMA page_count").fetchone()
    pages.close()
    # The file may not grow any more: to SQLite that is a full disk.
    await pragma(sqlite_url, f"PRAGMA max_page_count = {count}")
    big = ops_agent(ask_to_delete(), say("done"))
    bulky = await run_agent(big, "clean up " + "/tmp/x " * 100_000)

    with pytest.raises(StorageError) as full:
        await RunStateStore(agent=big, session_id="ticket-2", url=sqlite_url).save(bulky)

    assert not isinstance(full.value, StorageUnavailableError)
    assert_names_the_cause(full.value, "full", "disk", "nothing was written")
    # Sessions write through a transaction of their own: same cause, same words.
    note = {"role": "user", "content": "/tmp/x " * 100_000}
    with pytest.raises(StorageError) as session_full:
        await TimestepSession("ticket-2", url=sqlite_url).add_items([note])  # type: ignore[list-item]
    assert_names_the_cause(session_full.value, "full", "disk", "nothing was written")
    assert await RunStateStore(agent=agent, session_id="ticket-1", url=sqlite_url).info()


async def test_sqlite_locked_past_the_busy_timeout_says_another_process_holds_it(
    sqlite_url: str,
) -> None:
    agent, paused = await paused_run()
    await RunStateStore(agent=agent, session_id="ticket-1", url=sqlite_url).save(paused)
    await pragma(sqlite_url, "PRAGMA busy_timeout = 200")  # the 30 s one, shortened
    writer = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StorageUnavailableError) as locked:
            await RunStateStore(agent=agent, session_id="ticket-2", url=sqlite_url).save(paused)
    finally:
        writer.rollback()
        writer.close()

    assert_names_the_cause(locked.value, "locked", "another", "busy timeout", "nothing was written")
    await RunStateStore(agent=agent, session_id="ticket-2", url=sqlite_url).save(paused)


# --- PostgreSQL -------------------------------------------------------------------------------


@asynccontextmanager
async def row_held(url: str, session_id: str) -> AsyncIterator[None]:
    """Another session holds the row's lock in an open transaction (an operator's psql)."""
    holder = await asyncpg.connect(url)
    try:
        async with holder.transaction():
            await holder.execute(
                "SELECT 1 FROM timestep_run_states WHERE session_id = $1 FOR UPDATE", session_id
            )
            yield
    finally:
        await holder.close()


async def set_for_database(url: str, setting: str, value: str) -> None:
    """A server setting for every new connection to this database, as a DBA would set it."""
    admin = await asyncpg.connect(url)
    try:
        name = url.rpartition("/")[2]
        await admin.execute(f"ALTER DATABASE \"{name}\" SET {setting} = '{value}'")
    finally:
        await admin.close()
    await close_backends()  # new connections pick it up


async def stored_pause(url: str) -> tuple[RunStateStore, object]:
    agent, paused = await paused_run()
    store = RunStateStore(agent=agent, session_id="ticket-1", url=url)
    await store.save(paused)
    return store, paused


async def test_postgres_statement_timeout_is_named(postgres_url: str) -> None:
    store, paused = await stored_pause(postgres_url)
    await set_for_database(postgres_url, "statement_timeout", "300ms")

    async with row_held(postgres_url, "ticket-1"):
        with pytest.raises(StorageUnavailableError) as slow:
            await store.save(paused)  # type: ignore[arg-type]

    assert_names_the_cause(slow.value, "statement_timeout", "nothing was written")
    assert (await store.info()).version == 1  # type: ignore[union-attr]


async def test_postgres_lock_timeout_is_named(postgres_url: str) -> None:
    store, paused = await stored_pause(postgres_url)
    await set_for_database(postgres_url, "lock_timeout", "300ms")

    async with row_held(postgres_url, "ticket-1"):
        with pytest.raises(StorageUnavailableError) as waited:
            await store.save(paused)  # type: ignore[arg-type]

    assert_names_the_cause(waited.value, "lock", "another transaction", "nothing was written")
    await store.save(paused)  # type: ignore[arg-type]  # once the lock is gone, it lands
    assert (await store.info()).version == 2  # type: ignore[union-attr]


async def test_a_row_lock_held_for_minutes_is_named_not_an_outage(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A long lock wait on a server with no lock_timeout of its own; Timestep's limits
    # (seconds, not the real 50 s / 60 s) shortened so the test stays short.
    monkeypatch.setattr(sql_backend, "LOCK_TIMEOUT_SECONDS", 0.3)
    store, paused = await stored_pause(postgres_url)
    await close_backends()

    async with row_held(postgres_url, "ticket-1"):
        with pytest.raises(StorageUnavailableError) as waited:
            await store.save(paused)  # type: ignore[arg-type]

    assert_names_the_cause(waited.value, "lock", "another transaction", "nothing was written")
    assert (await store.info()).version == 1  # type: ignore[union-attr]


async def test_a_statement_unanswered_past_the_command_timeout_names_both_causes(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server's lock_timeout is longer than Timestep's command timeout: the client gives
    # up first, and cannot tell a stalled network from a statement stuck behind a lock.
    monkeypatch.setattr(sql_backend, "STATEMENT_TIMEOUT_SECONDS", 0.5)
    store, paused = await stored_pause(postgres_url)
    await set_for_database(postgres_url, "lock_timeout", "60s")

    async with row_held(postgres_url, "ticket-1"):
        with pytest.raises(StorageUnavailableError) as unanswered:
            await store.save(paused)  # type: ignore[arg-type]

    message = str(unanswered.value)
    assert "no answer within 0.5 s" in message
    assert "lock" in message and "pg_stat_activity" in message


async def test_a_full_postgres_disk_is_named(postgres_url: str) -> None:
    # Filling the server's disk is not cheap; the translation gets the driver's own error.
    backend = get_backend(postgres_url)

    with pytest.raises(StorageError) as full:
        async with backend._guard():  # type: ignore[attr-defined]
            raise asyncpg.exceptions.DiskFullError("could not extend file: No space left")

    assert not isinstance(full.value, StorageUnavailableError)
    assert_names_the_cause(full.value, "disk", "full", "nothing was written")
