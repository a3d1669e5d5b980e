"""PostgreSQL goes away while runs are being saved, loaded and executed, then comes back.

Every acknowledged save is still there afterwards, nothing half-written is visible, calls in
flight either succeed after reconnecting or fail with ``StorageUnavailableError`` (which says
whether anything may have been written), and durable workflows finish once the database is
back. The shared PostgreSQL server must never be stopped, so these tests restart a private
one of their own (tests/pg_cluster.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from net_faults import CuttingProxy
from outage_load import Attempt, Outage, paused_with_history, run_through_outage
from pg_cluster import ClusterUnavailable, PrivateCluster
from workflow_support import FINAL_ANSWER, Recorder, clerk, launched

from timestep import RunStateStore, StorageUnavailableError, TimestepSession
from timestep.storage import close_backends, sql
from timestep.workflows import (
    approve_workflow,
    pending_approvals,
    register_agent,
    register_session_factory,
    run_agent_workflow,
)

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="session")
def private_cluster() -> Iterator[PrivateCluster]:
    """A PostgreSQL server of this test session's own, free to stop and start."""
    try:
        cluster = PrivateCluster.create()
    except ClusterUnavailable as error:
        if os.environ.get("TIMESTEP_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"TIMESTEP_REQUIRE_POSTGRES=1 but no private server can start: {error}")
        pytest.skip(f"cannot start a private PostgreSQL server: {error}")
    try:
        yield cluster
    finally:
        cluster.destroy()


@dataclass
class Database:
    cluster: PrivateCluster
    name: str

    @property
    def url(self) -> str:
        return self.cluster.url(self.name)


@pytest.fixture
async def private_db(private_cluster: PrivateCluster) -> AsyncIterator[Database]:
    """A fresh database on the private server; the server is running again afterwards."""
    name = f"outage_{uuid.uuid4().hex[:12]}"
    await _admin(private_cluster, f'CREATE DATABASE "{name}"')
    try:
        yield Database(private_cluster, name)
    finally:
        await close_backends()
        if not private_cluster.running:
            private_cluster.start()
        await _admin(private_cluster, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _admin(cluster: PrivateCluster, statement: str) -> None:
    conn = await asyncpg.connect(cluster.url("postgres"), timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def test_a_restart_mid_flight_loses_no_acknowledged_save_and_needs_no_reconnect(
    private_db: Database,
) -> None:
    cluster = private_db.cluster
    outage = await run_through_outage(private_db.url, cluster.stop, cluster.start)
    print(outage.figures())

    # The restart really hit work in flight, and work went on after it.
    assert any(a.outcome == "StorageUnavailableError" for a in outage.saves)
    assert any(a.outcome == "StorageUnavailableError" for a in outage.loads)
    assert outage.acknowledged() and outage.after_restart()

    # Every acknowledged save is still there, with exactly its content.
    assert outage.found_after() == outage.acknowledged()

    # Every failure was the database being away, or the conflict that follows a save whose
    # acknowledgement was lost with the connection but which did land.
    for attempt in outage.attempts:
        assert attempt.outcome in {"ok", "not-found", "StorageUnavailableError"} or (
            attempt.outcome == "StateConflictError" and landed_unacknowledged(outage, attempt)
        ), attempt
        if attempt.outcome == "StorageUnavailableError":
            assert f"127.0.0.1:{cluster.port}/{private_db.name}" in attempt.message

    # A failure that says "nothing was written" is true to its word.
    for attempt in outage.saves:
        if "nothing was written" in attempt.message:
            assert not written_anywhere(outage, attempt.written[-1]), attempt

    # Nothing half-written: each row rebuilds into a RunState, holds one of the states its
    # writer tried to write, and carries one marker per version (no save applied twice).
    tried = {(a.session, tuple(a.written)) for a in outage.saves}
    assert outage.rows
    for session, row in outage.rows.items():
        assert row.loadable, session
        assert (session, tuple(row.history)) in tried, (session, row)
        assert row.version == len(row.history), (session, row)

    # Once the server was back, every call worked on the pooled engine as it was.
    for attempt in outage.after_restart():
        assert attempt.outcome in {"ok", "not-found"} or landed_unacknowledged(outage, attempt)


def landed_unacknowledged(outage: Outage, conflict: Attempt) -> bool:
    """Whether ``conflict`` came right after its writer's failed save of that session, which
    the row shows did land: the writer's store never learnt the new version."""
    if conflict.outcome != "StateConflictError" or not conflict.reloaded:
        return False
    mine = [a for a in outage.saves if a.actor == conflict.actor and a.session == conflict.session]
    before = mine[: mine.index(conflict)]
    return bool(
        before
        and before[-1].outcome == "StorageUnavailableError"
        and conflict.reloaded == before[-1].written
    )


def written_anywhere(outage: Outage, marker: str) -> bool:
    rows = [row.history for row in outage.rows.values()]
    reloads = [a.reloaded or [] for a in outage.saves]
    return any(marker in history for history in rows + reloads)


async def test_a_call_while_the_database_is_down_fails_fast_naming_it_without_password(
    private_db: Database,
) -> None:
    cluster = private_db.cluster
    # Trust authentication ignores the password; it is only there to be kept out of messages.
    url = f"postgresql://postgres:s3cret@127.0.0.1:{cluster.port}/{private_db.name}"
    agent, state, _ = await paused_with_history()
    store = RunStateStore(agent=agent, session_id="down", url=url)
    await store.save(state)  # the pool now holds a connection the stop will kill

    # Off the event loop, as in a live program: the loop sees the server say goodbye, and the
    # dead pooled connection is discarded before the next call could use it.
    await asyncio.to_thread(cluster.stop)
    for call in (lambda: store.save(state), store.load):
        began = time.monotonic()
        with pytest.raises(StorageUnavailableError) as caught:
            await call()
        assert time.monotonic() - began < 2.0
        message = str(caught.value)
        assert f"postgres:***@127.0.0.1:{cluster.port}/{private_db.name}" in message
        assert "s3cret" not in message
        assert "nothing was written" in message

    await asyncio.to_thread(cluster.start)
    # The same store carries on: the stale pooled connection is replaced on its own.
    await store.load()
    assert (await store.save(state)).version == 2


async def test_an_unanswering_server_fails_within_the_connect_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # asyncpg would wait 60 s by default; Timestep gives up after CONNECT_TIMEOUT_SECONDS.
    assert sql.CONNECT_TIMEOUT_SECONDS <= 10
    monkeypatch.setattr(sql, "CONNECT_TIMEOUT_SECONDS", 0.5)
    with socket.socket() as silent:  # accepts TCP connections, never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        agent, _, _ = await paused_with_history()
        store = RunStateStore(agent=agent, url=f"postgresql://postgres@127.0.0.1:{port}/db")
        began = time.monotonic()
        with pytest.raises(StorageUnavailableError, match=f"127.0.0.1:{port}/db.*TimeoutError"):
            await store.load()
        assert time.monotonic() - began < 5.0
    await close_backends()


# A connection can also die between a statement and its reply (a pooler or network path
# failing). The save then reads the row back on a fresh connection to learn what happened.
@pytest.mark.parametrize(
    ("save", "after_reply"),
    [("create", True), ("update", True), ("update", False), ("overwrite", True)],
    ids=[
        "create-ran-reply-lost",
        "update-ran-reply-lost",
        "update-never-arrived",
        "overwrite-ran-reply-lost",
    ],
)
async def test_a_save_cut_off_mid_statement_lands_exactly_once(
    private_db: Database, save: str, after_reply: bool
) -> None:
    proxy = await CuttingProxy.open("127.0.0.1", private_db.cluster.port)
    try:
        agent, state, context = await paused_with_history()
        url = proxied(private_db, proxy)
        # Every kind of save once on another session, so the one cut below is a single
        # request (asyncpg prepares each statement on its first use).
        warm = RunStateStore(agent=agent, session_id="warm", url=url)
        for overwrite in (False, False, True):
            await warm.save(state, overwrite=overwrite)
        store = RunStateStore(agent=agent, session_id="cut", url=url)
        if save != "create":
            context["history"] = ["first"]
            await store.save(state)
            context["history"] = ["first", "second"]
            await store.save(state)
        context["history"] = [*context["history"], "cut"]

        proxy.cut_next(after_reply=after_reply)
        stored = await store.save(state, overwrite=save == "overwrite")

        assert proxy.cuts == 1
        expected = 1 if save == "create" else 3
        assert stored.version == store.version == expected
        row = await RunStateStore(agent=agent, session_id="cut", url=private_db.url).info()
        assert row is not None and row.version == expected  # applied once, not twice
        assert json.loads(row.state)["context"]["context"]["history"] == context["history"]
    finally:
        await close_backends()
        await proxy.close()


async def test_a_statement_left_unanswered_is_abandoned_and_the_call_still_works(
    private_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A network path that dies without closing the connection: only a timeout notices.
    monkeypatch.setattr(sql, "STATEMENT_TIMEOUT_SECONDS", 0.5)
    proxy = await CuttingProxy.open("127.0.0.1", private_db.cluster.port)
    try:
        agent, state, context = await paused_with_history()
        store = RunStateStore(agent=agent, session_id="silent", url=proxied(private_db, proxy))
        await store.save(state)
        await store.load()  # warm: each statement below is a single request

        began = time.monotonic()
        async with asyncio.timeout(20):  # without a statement timeout these would hang
            proxy.stall_next()
            loaded = await store.load()  # retried once on a fresh connection
            assert loaded.to_json() == state.to_json()

            context["history"] = ["after the silence"]
            proxy.stall_next()
            stored = await store.save(state)  # reconciled: the update never arrived: re-run
        assert proxy.cuts == 2 and stored.version == 2
        assert time.monotonic() - began < 10.0
        row = await RunStateStore(agent=agent, session_id="silent", url=private_db.url).info()
        assert row is not None and row.version == 2
        assert json.loads(row.state)["context"]["context"]["history"] == ["after the silence"]
    finally:
        await close_backends()
        await proxy.close()


async def test_an_overwrite_that_may_have_landed_is_not_run_twice(private_db: Database) -> None:
    # An overwrite asks for no particular version, so reading the row back cannot tell "never
    # ran" from "ran and was already replaced": it says so rather than overwrite again.
    proxy = await CuttingProxy.open("127.0.0.1", private_db.cluster.port)
    try:
        agent, state, context = await paused_with_history()
        store = RunStateStore(agent=agent, session_id="cut", url=proxied(private_db, proxy))
        context["history"] = ["first"]
        await store.save(state)
        await store.save(state, overwrite=True)
        context["history"] = ["first", "lost"]

        proxy.cut_next(after_reply=False)
        with pytest.raises(StorageUnavailableError, match="may or may not have been written"):
            await store.save(state, overwrite=True)

        row = await RunStateStore(agent=agent, session_id="cut", url=private_db.url).info()
        assert row is not None and row.version == 2
        assert json.loads(row.state)["context"]["context"]["history"] == ["first"]
    finally:
        await close_backends()
        await proxy.close()


def proxied(database: Database, proxy: CuttingProxy) -> str:
    return f"postgresql://postgres@127.0.0.1:{proxy.port}/{database.name}"


async def test_a_durable_run_in_flight_during_a_restart_finishes_once_the_database_is_back(
    private_db: Database,
) -> None:
    cluster = private_db.cluster
    recorder = Recorder()
    with launched(private_db.url), dbos_warnings() as warnings:
        clerk_agent = register_agent(clerk(recorder, approval=True, delay=0.3))
        run = asyncio.create_task(
            run_agent_workflow(
                agent=clerk_agent, input_items="Refund order 7", workflow_id="refund-7"
            )
        )
        await until(lambda: recorder.starts("tool:c1") == 1, "the run to reach its first tool")

        # The database goes away mid-tool-call, for longer than DBOS's first retry backoff.
        await asyncio.to_thread(cluster.stop)
        await asyncio.sleep(1.5)
        await asyncio.to_thread(cluster.start)

        # The run goes on by itself, parks on the refund (its RunState saved through the
        # engine's pool, which the restart emptied), and finishes once approved.
        await until_async(lambda: pending_approvals("refund-7", url=private_db.url), "parked")
        assert await approve_workflow("refund-7", url=private_db.url) == ["c3"]
        result = await asyncio.wait_for(run, timeout=60)

    assert result.final_output == FINAL_ANSWER
    # Every call completed exactly once: DBOS waited for its database rather than failing.
    assert any("Database connection failed" in warning for warning in warnings)
    for label in ("model:0", "guardrail", "tool:c1", "tool:c2", "model:2", "tool:c3", "model:3"):
        ends = [e["pid"] for e in recorder.events if (e["label"], e["phase"]) == (label, "end")]
        assert ends == [os.getpid()], label
    stored = await RunStateStore(
        agent=clerk_agent, session_id="refund-7", url=private_db.url
    ).info()
    assert stored is not None and stored.status == "completed"


@contextmanager
def dbos_warnings() -> Iterator[list[str]]:
    """What DBOS logs meanwhile (it says when it waits for its database)."""
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler = Collect(logging.WARNING)
    logging.getLogger("dbos").addHandler(handler)
    try:
        yield messages
    finally:
        logging.getLogger("dbos").removeHandler(handler)


async def until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30.0
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def until_async(check: Callable[[], Awaitable[object]], what: str) -> None:
    deadline = time.monotonic() + 60.0
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_a_durable_run_whose_session_read_meets_the_outage_waits_for_the_database(
    private_db: Database,
) -> None:
    cluster = private_db.cluster
    restart = threading.Timer(1.5, cluster.start)
    went_down = threading.Event()

    class OutageSession(TimestepSession):
        """A session on the private server that takes the server down as it is first read."""

        async def get_items(self, limit: int | None = None) -> list[Any]:
            if not went_down.is_set():
                went_down.set()
                await asyncio.to_thread(cluster.stop)
                restart.start()
            return await super().get_items(limit)

    register_session_factory(
        OutageSession, lambda session_id: OutageSession(session_id, url=private_db.url)
    )
    with launched(private_db.url):
        clerk_agent = register_agent(clerk(Recorder()))
        session = OutageSession("customer-1", url=private_db.url)
        result = await run_agent_workflow(
            agent=clerk_agent, input_items="Where are orders 7 and 8?", session=session
        )
    restart.join()

    # The read failed while the server was down, waited, and the run went on to the end.
    assert went_down.is_set()
    assert result.final_output == FINAL_ANSWER
    assert await session.get_items() == result.new_items and len(result.new_items) == 8
