"""Saves and loads kept running while PostgreSQL restarts, and what each of them saw.

Shared by tests/test_outage.py (which asserts on it) and bench/faults.py (which prints it).

Each writer owns its sessions and saves a real paused ``RunState`` over and over. The state's
run context carries ``history``: the markers (``w2:17`` = writer 2, attempt 17) of every save
the written state builds on, its own last. With one writer per session, each save that lands
adds exactly one marker and one version, so after the outage a row must hold a history of
``version`` markers that this writer once tried to write, containing every marker whose save
was acknowledged. Readers load the writers' sessions meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agents import Agent, RunState

from scenario import ask_to_delete, ops_agent, say
from timestep import (
    RunStateStore,
    StateConflictError,
    StateNotFoundError,
    StorageUnavailableError,
    run_agent,
)

__all__ = ["Attempt", "Outage", "paused_with_history", "run_through_outage"]

SAVES_PER_SESSION = 5


@dataclass
class Attempt:
    """One save or load: when it ran, how it ended, and for a save what it wrote."""

    kind: str  # "save" or "load"
    actor: str
    session: str
    started: float
    ended: float
    outcome: str  # "ok", "not-found", or the exception's class name
    message: str = ""
    written: list[str] = field(default_factory=list)  # a save's history, its marker last
    version: int | None = None  # the version a save was acknowledged at
    reloaded: list[str] | None = None  # after a conflict: the history found in the row


@dataclass
class Row:
    """A session's row after the outage."""

    version: int
    history: list[str]
    loadable: bool  # RunStateStore.load rebuilt a RunState from it


@dataclass
class Outage:
    """What happened: every attempt, the restart's timing, and the rows found afterwards."""

    attempts: list[Attempt]
    stopping: float  # just before the stop was asked for
    up: float  # once the server accepted connections again
    rows: dict[str, Row]

    @property
    def saves(self) -> list[Attempt]:
        return [a for a in self.attempts if a.kind == "save"]

    @property
    def loads(self) -> list[Attempt]:
        return [a for a in self.attempts if a.kind == "load"]

    def acknowledged(self) -> list[Attempt]:
        return [a for a in self.saves if a.outcome == "ok"]

    def found_after(self) -> list[Attempt]:
        """Acknowledged saves the session's row still holds, exactly: the row's history starts
        with everything that save wrote (later saves of the session only add to it)."""
        return [
            a
            for a in self.acknowledged()
            if a.session in self.rows
            and self.rows[a.session].history[: len(a.written)] == a.written
        ]

    def after_restart(self) -> list[Attempt]:
        """Calls started once the server was back."""
        return [a for a in self.attempts if a.started >= self.up]

    def figures(self) -> dict[str, int]:
        loads = self.loads
        return {
            "saves attempted": len(self.saves),
            "saves acknowledged": len(self.acknowledged()),
            "acknowledged saves found after the outage": len(self.found_after()),
            "saves failed: StorageUnavailableError": _count(self.saves, StorageUnavailableError),
            "saves failed: StateConflictError": _count(self.saves, StateConflictError),
            "loads attempted": len(loads),
            "loads succeeded": sum(a.outcome in ("ok", "not-found") for a in loads),
            "loads failed: StorageUnavailableError": _count(loads, StorageUnavailableError),
        }


def _count(attempts: list[Attempt], error: type[Exception]) -> int:
    return sum(a.outcome == error.__name__ for a in attempts)


async def paused_with_history(
    name: str = "Ops",
) -> tuple[Agent[None], RunState[Any, Any], dict[str, Any]]:
    """An agent, its run paused on an approval, and the run context dict the state serializes.

    Setting ``context["history"]`` changes what the next save of the state writes.
    """
    agent = ops_agent(ask_to_delete(), say("done"), name=name)
    context: dict[str, Any] = {"history": []}
    result = await run_agent(agent, "clean up /tmp/x", context=context)
    assert result.interruptions, "the scripted run should pause for approval"
    return agent, result.to_state(), context


def history_of(state: RunState[Any, Any]) -> list[str]:
    """The markers a stored state carries in its run context."""
    return list(state.to_json()["context"]["context"]["history"])


async def run_through_outage(
    url: str,
    stop: Callable[[], None],
    start: Callable[[], None],
    *,
    writers: int = 4,
    readers: int = 2,
    before: float = 0.8,
    down: float = 0.8,
    after: float = 1.0,
) -> Outage:
    """Keep ``writers`` and ``readers`` busy on ``url`` for ``before`` seconds, ``stop()`` the
    server, wait ``down`` seconds, ``start()`` it, go on for ``after`` seconds; then read back
    every session's row."""
    attempts: list[Attempt] = []
    sessions: dict[str, str] = {}  # session -> its writer, once a save of it was acknowledged
    done = asyncio.Event()
    tasks = [asyncio.create_task(_writer(w, url, attempts, sessions, done)) for w in range(writers)]
    tasks += [
        asyncio.create_task(_reader(r, url, attempts, sessions, done)) for r in range(readers)
    ]
    try:
        await asyncio.sleep(before)
        stopping = time.monotonic()
        await asyncio.to_thread(stop)
        await asyncio.sleep(down)
        await asyncio.to_thread(start)
        up = time.monotonic()
        await asyncio.sleep(after)
    finally:
        done.set()
        await asyncio.gather(*tasks)
    agent, _, _ = await paused_with_history()
    rows = {}
    for session in sorted({a.session for a in attempts if a.kind == "save"}):
        store = RunStateStore(agent=agent, session_id=session, url=url)
        stored = await store.info()
        if stored is None:
            continue
        try:
            await store.load()
            loadable = True
        except Exception:
            loadable = False
        history = json.loads(stored.state)["context"]["context"]["history"]
        rows[session] = Row(version=stored.version, history=history, loadable=loadable)
    return Outage(attempts=attempts, stopping=stopping, up=up, rows=rows)


async def _writer(
    w: int, url: str, attempts: list[Attempt], sessions: dict[str, str], done: asyncio.Event
) -> None:
    agent, state, context = await paused_with_history()
    n = 0
    for s in range(10_000):
        session = f"w{w}-s{s}"
        store = RunStateStore(agent=agent, session_id=session, url=url)
        history: list[str] = []
        acknowledged = 0
        reload = False
        while acknowledged < SAVES_PER_SESSION:
            if done.is_set():
                return
            if reload:  # after a conflict: build on what the row holds now
                try:
                    history = history_of(await store.load())
                    reload = False
                except StorageUnavailableError:
                    await asyncio.sleep(0.02)
                continue
            marker = f"w{w}:{n}"
            n += 1
            written = [*history, marker]
            context["history"] = written
            began = time.monotonic()
            try:
                stored = await store.save(state)
            except Exception as error:  # recorded: the test checks that every one is expected
                attempt = Attempt(
                    "save",
                    f"writer-{w}",
                    session,
                    began,
                    time.monotonic(),
                    type(error).__name__,
                    str(error),
                    written,
                )
                attempts.append(attempt)
                if isinstance(error, StateConflictError):
                    attempt.reloaded = await _reload(store)
                    if attempt.reloaded is None:
                        reload = True
                    else:
                        history = attempt.reloaded
                else:
                    await asyncio.sleep(0.02)  # the database is away: do not spin
                continue
            attempts.append(
                Attempt(
                    "save",
                    f"writer-{w}",
                    session,
                    began,
                    time.monotonic(),
                    "ok",
                    written=written,
                    version=stored.version,
                )
            )
            sessions[session] = f"writer-{w}"
            history = written
            acknowledged += 1
            await asyncio.sleep(0)


async def _reload(store: RunStateStore) -> list[str] | None:
    try:
        return history_of(await store.load())
    except StorageUnavailableError:
        return None


async def _reader(
    r: int, url: str, attempts: list[Attempt], sessions: dict[str, str], done: asyncio.Event
) -> None:
    agent, _, _ = await paused_with_history()
    rng = random.Random(r)
    while not done.is_set():
        if not sessions:
            await asyncio.sleep(0.01)
            continue
        session = rng.choice(sorted(sessions))
        store = RunStateStore(agent=agent, session_id=session, url=url)
        began = time.monotonic()
        try:
            await store.load()
            outcome, message = "ok", ""
        except StateNotFoundError:
            outcome, message = "not-found", ""
        except Exception as error:  # recorded: the test checks that every one is expected
            outcome, message = type(error).__name__, str(error)
        ended = time.monotonic()
        attempts.append(Attempt("load", f"reader-{r}", session, began, ended, outcome, message))
        await asyncio.sleep(0.01 if outcome == "ok" else 0.02)
