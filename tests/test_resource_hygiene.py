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
    main(*sys.argv[1:])
