"""Eight processes saving the same few sessions at once lose no update, and a reader never
waits for another process's write.

Every save either lands or raises ``StateConflictError``, and the rows end exactly as the log
the workers keep says they should (tests/concurrency_worker.py has the workers and the audit).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
from concurrency_worker import audit, final_rows, run_workers

from scenario import paused_run
from subprocesses import run_python
from timestep import RunStateStore
from timestep.storage import close_backends

PROCESSES = 8
SESSIONS = 4
# 8 x 500 on both took ~60 s on the 2-CPU CI machine (PostgreSQL ~32 s, SQLite ~24 s), over
# the suite's budget. PostgreSQL keeps the full 8 x 500: it is where writers really run in
# parallel. SQLite serialises every write on one file lock, so a quarter of the saves already
# makes hundreds of conflicts on every session (~10 s), and more only repeats them.
SAVES = {"postgres": 500, "sqlite": 125}


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_processes_saving_the_same_sessions_lose_no_update(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url: str = request.getfixturevalue(f"{backend}_url")

    began = time.monotonic()
    logs = run_workers(
        url, processes=PROCESSES, saves=SAVES[backend], sessions=SESSIONS, folder=tmp_path
    )
    result = audit(logs, asyncio.run(final_rows(url, SESSIONS)))
    print(backend, f"{time.monotonic() - began:.1f}s", result.figures())

    assert result.attempted == PROCESSES * SAVES[backend]
    # Every save landed or was refused as a conflict; the refused ones really competed.
    assert result.acknowledged + result.conflicts == result.attempted
    assert result.conflicts > 0
    # Per session: versions 1..N acknowledged once each, each built on the one before, and
    # the row holds the last; so every landed save is acknowledged and none was lost.
    assert result.problems == []
    assert result.landed == result.acknowledged
    assert result.lost_updates == 0


async def test_readers_do_not_wait_for_another_process_writing_to_sqlite(
    sqlite_url: str, timestep_home: Path
) -> None:
    # A database already in use: tables made, one paused run stored.
    agent, paused = await paused_run()
    await RunStateStore(agent=agent, session_id="ticket-1", url=sqlite_url).save(paused)
    await close_backends()  # from here on, as a fresh process would see it

    # Another process is in the middle of a write transaction (a long save, a migration).
    writer = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE timestep_run_states SET current_agent = current_agent")

        # WAL readers read at once; 10 s is far below the 30 s busy timeout a lock wait takes.
        store = RunStateStore(agent=agent, session_id="ticket-1", url=sqlite_url)
        listed = await asyncio.wait_for(store.list(), timeout=10)
        loaded = await asyncio.wait_for(store.load(), timeout=10)
        # A CLI call is a fresh process. One that queued for the lock would fail after the
        # busy timeout ("database is locked"); the deadline only stops a hang.
        listing = run_python(
            "-m", "timestep.cli", "runs", "list", "--url", sqlite_url, home=timestep_home
        )  # fmt: skip
    finally:
        writer.rollback()
        writer.close()

    assert [row.session_id for row in listed] == ["ticket-1"]
    assert loaded.get_interruptions()
    assert "ticket-1" in listing.stdout
