"""Many OS processes saving the same sessions at once, and the audit of what they logged.

Shared by tests/test_concurrency.py (which asserts on the audit) and bench/faults.py (which
prints it). Each worker process keeps one ``RunStateStore`` per shared session and saves a
real paused ``RunState`` again and again. What it writes carries a marker (``w3:41`` = worker
3, attempt 41) and the marker of the save it builds on; on ``StateConflictError`` it reloads
and goes on from what it found. Every attempt is one JSON line in the worker's own log::

    {"worker": 3, "n": 41, "session": "shared-2", "marker": "w3:41", "parent": "w5:40",
     "expected": 17, "outcome": "saved", "version": 18}

Optimistic writes are right when the acknowledged saves of each session form one unbroken
chain, version 1 to the row's version, each built on the one before; :func:`audit` checks that
against the rows the database holds at the end.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from outage_load import history_of, paused_with_history

from timestep import RunStateStore, StateConflictError
from timestep.storage import close_backends

__all__ = ["Audit", "audit", "run_workers"]

KEEP = 8  # markers kept in a state's history: enough to check, small enough to stay cheap
SESSIONS_PREFIX = "shared-"


async def work(url: str, worker: int, saves: int, sessions: int, log: Path) -> None:
    """One worker's saves, each logged to ``log`` as it ends."""
    agent, state, context = await paused_with_history()
    stores = [
        RunStateStore(agent=agent, session_id=f"{SESSIONS_PREFIX}{s}", url=url)
        for s in range(sessions)
    ]
    heads: list[list[str]] = [[] for _ in range(sessions)]
    rng = random.Random(worker)
    try:
        with log.open("w") as out:
            for n in range(saves):
                s = rng.randrange(sessions)
                store, marker = stores[s], f"w{worker}:{n}"
                written = [*heads[s], marker][-KEEP:]
                context["history"] = written
                entry: dict[str, Any] = {
                    "worker": worker,
                    "n": n,
                    "session": store.session_id,
                    "marker": marker,
                    "parent": heads[s][-1] if heads[s] else None,
                    "expected": store.version,
                }
                try:
                    stored = await store.save(state)
                    entry.update(outcome="saved", version=stored.version)
                    heads[s] = written
                except StateConflictError as conflict:
                    entry.update(outcome="conflict", actual=conflict.actual_version)
                    heads[s] = history_of(await store.load())[-KEEP:]
                except Exception as error:  # logged: the audit says which and why
                    entry.update(outcome=f"error: {type(error).__name__}: {error}")
                out.write(json.dumps(entry) + "\n")
    finally:
        await close_backends()


def forked_main(
    url: str, worker: int, saves: int, sessions: int, log: str, ready: Any, home: str
) -> None:
    """A worker process: wait for every other worker to be ready, then save."""
    os.environ["TIMESTEP_HOME"] = home
    os.environ["TIMESTEP_LOAD_PLUGINS"] = ""

    async def main() -> None:
        await paused_with_history()  # warm: imports and the scripted run before the start line
        ready.wait()
        await work(url, worker, saves, sessions, Path(log))

    asyncio.run(main())


def run_workers(url: str, *, processes: int, saves: int, sessions: int, folder: Path) -> list[Path]:
    """Run ``processes`` worker processes to the end; their log files.

    Workers are forked from a server that imported Timestep once (tests/workflow_support.py
    sets what it preloads), so 8 processes start in well under a second.
    """
    context = multiprocessing.get_context("forkserver")
    ready = context.Barrier(processes)
    logs = [folder / f"worker-{w}.jsonl" for w in range(processes)]
    workers = [
        context.Process(
            target=forked_main,
            args=(url, w, saves, sessions, str(logs[w]), ready, str(folder)),
        )
        for w in range(processes)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=600)
    failed = [w for w, p in enumerate(workers) if p.exitcode != 0]
    if failed:
        for process in workers:
            process.kill()
        raise RuntimeError(
            f"worker processes {failed} failed (exit codes {[workers[w].exitcode for w in failed]})"
        )
    return logs


@dataclass
class Audit:
    """What the logs and the final rows say, and every way they disagree (``problems``)."""

    attempted: int = 0
    acknowledged: int = 0
    conflicts: int = 0
    landed: int = 0  # versions the rows reached: each landed save adds exactly one
    lost_updates: int = 0  # acknowledged saves no later state builds on
    problems: list[str] = field(default_factory=list)

    def figures(self) -> dict[str, int]:
        return {
            "saves attempted": self.attempted,
            "saves landed": self.landed,
            "conflicts detected": self.conflicts,
            "lost updates": self.lost_updates,
        }


async def final_rows(url: str, sessions: int) -> dict[str, tuple[int, list[str]]]:
    """Each shared session's row: its version and the markers its state carries."""
    agent, _, _ = await paused_with_history()
    rows = {}
    try:
        for s in range(sessions):
            store = RunStateStore(agent=agent, session_id=f"{SESSIONS_PREFIX}{s}", url=url)
            stored = await store.info()
            if stored is not None:
                # Loading it proves the row is a whole, resumable RunState.
                rows[store.session_id] = (stored.version, history_of(await store.load()))
    finally:
        await close_backends()
    return rows


def audit(logs: list[Path], rows: dict[str, tuple[int, list[str]]]) -> Audit:
    """Check the workers' logs against the final rows."""
    result = Audit()
    entries = [json.loads(line) for log in logs for line in log.read_text().splitlines()]
    result.attempted = len(entries)
    saved: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
    for entry in entries:
        outcome = entry["outcome"]
        if outcome == "conflict":
            result.conflicts += 1
        elif outcome != "saved":
            result.problems.append(
                f"{entry['marker']} ended neither saved nor in conflict: {outcome}"
            )
            continue
        else:
            result.acknowledged += 1
            session, version = entry["session"], entry["version"]
            if version in saved[session]:
                twin = saved[session][version]["marker"]
                result.problems.append(
                    f"{entry['marker']} and {twin} both saved {session} v{version}"
                )
            saved[session][version] = entry
            if version != (entry["expected"] or 0) + 1:
                result.problems.append(
                    f"{entry['marker']} expected v{entry['expected']} but saved v{version}"
                )
    for session in sorted(set(saved) | set(rows)):
        versions = saved[session]
        row_version, history = rows.get(session, (0, []))
        result.landed += row_version
        if sorted(versions) != list(range(1, row_version + 1)):
            result.problems.append(
                f"{session}: acknowledged versions {sorted(versions)[:5]}... are not exactly "
                f"1..{row_version}, the row's version"
            )
        # Walk the chain down from the row: every acknowledged save must be on it.
        on_chain = set()
        marker = history[-1] if history else None
        by_marker = {e["marker"]: e for e in versions.values()}
        while marker is not None and marker in by_marker and marker not in on_chain:
            on_chain.add(marker)
            marker = by_marker[marker]["parent"]
        off_chain = set(by_marker) - on_chain
        result.lost_updates += len(off_chain)
        if off_chain:
            result.problems.append(f"{session}: acknowledged saves lost: {sorted(off_chain)[:5]}")
        for version, entry in versions.items():
            parent = versions.get(version - 1, {}).get("marker")
            if entry["parent"] != parent:
                result.problems.append(
                    f"{session} v{version} ({entry['marker']}) built on {entry['parent']}, "
                    f"not on v{version - 1} ({parent})"
                )
        if row_version and versions.get(row_version, {}).get("marker") != history[-1]:
            result.problems.append(f"{session}: the row does not hold its last acknowledged save")
    return result
