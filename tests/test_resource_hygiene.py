"""Engines, pools, DBOS and HTTP clients close cleanly: a whole program, then what it left open.

The program is this file run as a script, in its own process with ``-X dev -W
error::ResourceWarning``. For SQLite and then PostgreSQL it stores an agent, loads it, runs it
with a session until it pauses, saves, loads, approves and resumes it, and runs a second agent
as a DBOS workflow, with tracing to the database on. The first agent's model is an Ollama model
(the plugin's HTTP client), the second an OpenAI one (the SDK's shared HTTP client), served by
the plugins' fake servers on 127.0.0.1. It shuts down the way Timestep asks programs to:
``timestep.aclose()`` before each event loop ends (docs/how-to/postgres.md), ``shutdown_dbos()``
after it (docs/workflows.md).
At exit it reports every file, socket and thread it opened and did not close; the test wants
none, and no ResourceWarning on stderr::

    python tests/test_resource_hygiene.py OLLAMA_URL OPENAI_URL DATABASE_URL...
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import gc
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, function_tool

from subprocesses import LEAK_MARKERS, leaks, run_python
from timestep import (
    RunStateStore,
    TimestepSession,
    aclose,
    load_agent,
    registry,
    run_agent,
    save_agent,
)
from timestep.workflows import (
    configure_dbos,
    ensure_dbos_launched,
    register_agent,
    run_agent_workflow,
    shutdown_dbos,
)

PLUGIN_FAKES = Path(__file__).resolve().parents[1] / "plugins" / "timestep-ollama" / "tests"

# --- the program ----------------------------------------------------------------------------


@function_tool(needs_approval=True)
def delete_file(path: str) -> str:
    """Delete a file."""
    return f"deleted {path}"


DESK = Agent(name="Desk", instructions="Answer briefly.", model="gpt-4.1-mini")


async def ops_desk(url: str) -> dict[str, Any]:
    """One database's day: a stored agent paused, approved and resumed; a durable run."""
    registry.add(delete_file)
    await save_agent(Agent(name="Ops", model="ollama/llama3", tools=[delete_file]), url=url)
    ops = await load_agent("Ops", url=url)
    session = TimestepSession("ticket-1", url=url)
    store = RunStateStore(agent=ops, session_id="ticket-1", url=url)
    await store.save(await run_agent(ops, "Clean up /tmp/x", session=session))

    state = await store.load()
    for item in state.get_interruptions():
        state.approve(item)
    finished = await run_agent(ops, state, session=session)
    await store.save(finished)

    desk = await run_agent_workflow(DESK, "Anything new?", workflow_id="desk-1")
    return {
        "ops": finished.final_output,
        "history": await session.count(),
        "desk": desk.final_output,
    }


async def day(url: str) -> dict[str, Any]:
    try:
        return await ops_desk(url)
    finally:
        # What the docs ask of a program before its event loop ends.
        await aclose()


def main(ollama_url: str, openai_url: str, *urls: str) -> None:
    baseline = open_files()
    # Registered first, so it runs last: after the trace writer's own exit handler.
    atexit.register(report_what_is_still_open, baseline)
    os.environ.update(
        OLLAMA_HOST=ollama_url,
        OPENAI_BASE_URL=openai_url,
        OPENAI_API_KEY="sk-test-hygiene-not-a-key",
        TIMESTEP_TRACING="db",
        TIMESTEP_DB_URL=urls[0],
    )
    register_agent(DESK)
    report = {}
    for url in urls:
        configure_dbos(url, notification_listener_polling_interval_sec=0.05)
        ensure_dbos_launched()
        try:
            report[url.partition(":")[0]] = asyncio.run(day(url))
        finally:
            shutdown_dbos()
    print(json.dumps(report), flush=True)


def per_call_loops(url: str, calls: str, style: str = "asyncio.run") -> None:
    """A sync web handler's way: every request runs its own event loop (``asyncio.run``, or
    with ``style="loop.close"`` a loop closed by hand) and nobody ever calls
    ``timestep.aclose()``. Prints the most database connections (PostgreSQL, from
    ``pg_stat_activity``), threads and open files seen between requests."""
    from scenario import paused_run

    agent, paused = asyncio.run(paused_run())
    state = paused.to_state()

    async def request(number: int) -> None:
        store = RunStateStore(agent=agent, session_id=f"ticket-{number}", url=url)
        await store.save(state)
        await RunStateStore(agent=agent, session_id=f"ticket-{number}", url=url).load()

    peak = {"connections": 0, "threads": 0, "files": 0}
    files_before = len(open_files())
    for number in range(int(calls)):
        if style == "asyncio.run":
            asyncio.run(request(number))
        else:
            loop = asyncio.new_event_loop()
            loop.run_until_complete(request(number))
            loop.close()
        if number % 10 == 9:
            peak["threads"] = max(peak["threads"], threading.active_count() - 1)
            peak["files"] = max(peak["files"], len(open_files()) - files_before)
            if url.startswith("postgresql"):
                connections = asyncio.run(server_connections(url))
                peak["connections"] = max(peak["connections"], connections)
    print(json.dumps(peak), flush=True)


async def server_connections(url: str) -> int:
    """How many connections the server holds to this database, not counting the asking one."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    return count


def open_files() -> dict[int, str]:
    """This process's open file descriptors and what each is (a path, ``socket:[...]``...)."""
    found = {}
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the descriptor listdir used, closed since
            found[int(fd)] = os.readlink(f"/proc/self/fd/{fd}")
    return found


def report_what_is_still_open(baseline: dict[int, str]) -> None:
    """Print the files, sockets and threads the program opened and did not close.

    Collected first: an object nobody references any more closes (or warns about) what it
    holds only when collected, and at interpreter exit Python stops reporting such warnings.
    """
    gc.collect()
    opened = sorted(set(open_files().items()) - set(baseline.items()))
    threads = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    print(json.dumps({"open": [what for _, what in opened], "threads": sorted(threads)}))


# --- the tests ------------------------------------------------------------------------------


def test_a_program_that_shuts_down_as_documented_leaves_nothing_open(
    fakes: dict[str, Any], sqlite_url: str, postgres_url: str, timestep_home: Path
) -> None:
    from fake_ollama import Reply, tool_call

    ollama, openai = fakes["ollama"], fakes["openai"]
    for _ in (sqlite_url, postgres_url):
        ollama.reply(Reply(tool_calls=[tool_call("delete_file", path="/tmp/x")]), "Deleted.")
        openai.reply("Nothing new.")

    # run_python adds -W error::ResourceWarning, and fails on a leak reported on stderr.
    done = run_python(
        "-X", "dev", __file__, ollama.url, openai.base_url, sqlite_url, postgres_url,
        home=timestep_home,
    )  # fmt: skip

    *_, outcome, left_open = [json.loads(line) for line in done.stdout.splitlines()]
    day = {"ops": "Deleted.", "history": 4, "desk": "Nothing new."}
    assert outcome == {"sqlite": day, "postgresql": day}
    assert not ollama.replies and not openai.replies  # both databases did the whole day
    assert left_open == {"open": [], "threads": []}
    assert leaks(done.stderr) == []


def test_a_child_process_that_leaves_a_file_open_fails_its_test(timestep_home: Path) -> None:
    leaky = "import sys; handle = open(sys.executable, 'rb'); del handle"

    with pytest.raises(pytest.fail.Exception, match="left resources open") as failed:
        run_python("-c", leaky, home=timestep_home)

    assert "ResourceWarning: unclosed file" in str(failed.value)
    assert any(marker in str(failed.value) for marker in LEAK_MARKERS)


def test_a_new_event_loop_per_request_without_aclose_holds_connections_bounded(
    db_url: str, timestep_home: Path
) -> None:
    # asyncio.run() per request: sync web handlers, Celery tasks, scripts. Each loop's pool
    # must be released when that loop ends, or the server runs out of connections.
    done = run_python(__file__, "per-call-loops", db_url, "200", home=timestep_home)

    peak = json.loads(done.stdout.splitlines()[-1])
    pool_limit = 15  # pool_size 5 + max_overflow 10 (timestep/storage/sql.py)
    assert peak["connections"] <= pool_limit
    assert peak["threads"] <= pool_limit  # aiosqlite: one thread per open connection
    assert peak["files"] <= 3 * pool_limit  # SQLite: database, -wal and -shm per connection
    assert leaks(done.stderr) == []


def test_loops_closed_by_hand_without_aclose_do_not_pile_up_connections(
    db_url: str, timestep_home: Path
) -> None:
    # loop.close() alone skips the shutdown step Timestep closes pools in: the pool of such a
    # loop is cut loose when the next loop first uses Timestep. Python may report those
    # connections as unclosed (they were), so this child runs without -W error.
    done = subprocess.run(
        [sys.executable, __file__, "per-call-loops", db_url, "100", "loop.close"],
        capture_output=True,
        text=True,
        env={**os.environ, "TIMESTEP_HOME": str(timestep_home)},
        timeout=180,
        check=True,
    )

    peak = json.loads(done.stdout.splitlines()[-1])
    pool_limit = 15
    assert peak["connections"] <= pool_limit
    assert peak["threads"] <= pool_limit
    assert peak["files"] <= 3 * pool_limit


@pytest.fixture
def fakes() -> Iterator[dict[str, Any]]:
    """The Ollama plugin's fake Ollama and OpenAI servers on 127.0.0.1."""
    pytest.importorskip("timestep_ollama", reason="the Ollama plugin is not installed")
    if str(PLUGIN_FAKES) not in sys.path:
        sys.path.append(str(PLUGIN_FAKES))
    from fake_ollama import FakeOllama
    from fake_openai import FakeOpenAI

    servers = {"ollama": FakeOllama(), "openai": FakeOpenAI()}
    for server in servers.values():
        server.start()
    yield servers
    for server in servers.values():
        server.stop()


if __name__ == "__main__":
    if sys.argv[1] == "per-call-loops":
        per_call_loops(*sys.argv[2:])
    else:
        main(*sys.argv[1:])
