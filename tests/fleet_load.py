"""A fleet of worker processes of one program, default configuration, one killed for good.

Shared by tests/test_workflows_fleet.py (which asserts on it) and bench/faults.py (which prints
it). Every worker is tests/workflow_process.py serving one queue, at most two runs at a time;
the first also queues the runs. Once the second worker is in the middle of a run it is killed
(``kill -9``) and never restarted; the others carry on until every run has finished or the
deadline passes. Every model call, tool call and guardrail check is recorded with its run, its
process and the time, so the result counts what ran twice and how long adoption took.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workflow_support import Worker, read_record

from timestep.storage import close_backends
from timestep.workflows import list_agent_workflows, shutdown_dbos

QUEUE = "fleet"
TOOLS = ("tool:c1", "tool:c2", "tool:c3")
LAST = "model:3"


@dataclass
class FleetResult:
    """What happened to ``runs`` queued runs when one of the fleet died mid-load."""

    runs: int
    statuses: Counter[str]
    tools_completed_twice: int
    calls_rerun: int
    held_by_victim: int
    adoption_seconds: list[float] = field(default_factory=list)

    @property
    def left_pending(self) -> int:
        return self.statuses["PENDING"] + self.statuses["ENQUEUED"]

    @property
    def lost(self) -> int:
        """Runs that neither succeeded nor are still on their way (errors, missing rows)."""
        return self.runs - self.statuses["SUCCESS"] - self.left_pending

    def figures(self) -> dict[str, Any]:
        """The figures bench/faults.py prints, in order."""
        times = sorted(self.adoption_seconds)
        return {
            "runs queued": self.runs,
            "runs succeeded": self.statuses["SUCCESS"],
            "runs lost (must be 0)": self.lost,
            "runs left pending (must be 0)": self.left_pending,
            "tool calls completed twice (must be 0)": self.tools_completed_twice,
            "calls cut short by the kill, run again": self.calls_rerun,
            "runs the killed worker held": self.held_by_victim,
            "adoption after the kill, p50 (s)": statistics.median(times) if times else 0.0,
            "adoption after the kill, max (s)": times[-1] if times else 0.0,
        }


def run_fleet(
    url: str,
    folder: Path,
    *,
    workers: int = 3,
    runs: int = 12,
    delay: float = 0.3,
    env: dict[str, str] | None = None,
    timeout: float = 180.0,
) -> FleetResult:
    """Run the fleet on ``url`` (files in ``folder``) and audit it; see the module docstring."""
    record, stop = folder / "record.jsonl", folder / "stop"
    environment = {**os.environ, **(env or {})}
    environment.pop("TIMESTEP_EXECUTOR_ID", None)  # default identity: the point of the test
    common = ("--queue", QUEUE, "--worker-concurrency", "2", "--delay", str(delay))
    fleet = [
        Worker(
            "worker",
            url,
            str(record),
            *common,
            "--serve-until",
            str(stop),
            *(("--enqueue", str(runs)) if number == 0 else ()),
            env=environment,
        )
        for number in range(workers)
    ]
    victim = fleet[1]
    deadline = time.monotonic() + timeout
    try:
        while not _held(read_record(record), victim.pid):
            if time.monotonic() > deadline or victim.ended:
                raise AssertionError("the worker to kill never got a run")
            time.sleep(0.05)
        victim.kill()
        killed_at = time.time()
        held = _held(read_record(record), victim.pid)
        while _finished(read_record(record)) < runs and time.monotonic() < deadline:
            time.sleep(0.1)
        # A run's last step ends a moment before its workflow is recorded as finished; stop
        # the workers only once none is on its way (or the deadline passed).
        while time.monotonic() < deadline:
            statuses = asyncio.run(_statuses(url, runs))
            if statuses["PENDING"] + statuses["ENQUEUED"] == 0:
                break
            time.sleep(0.2)
        stop.touch()
        for process in fleet:
            if process is not victim:
                process.outcome()
    finally:
        for process in fleet:
            if not process.ended:
                process.kill()
    events = read_record(record)
    ended = Counter(
        (e["workflow"], e["label"]) for e in events if e["phase"] == "end" and e["label"] in TOOLS
    )
    started = Counter((e["workflow"], e["label"]) for e in events if e["phase"] == "start")
    adoption = []
    for workflow_id in held:
        later = [e["t"] for e in events if e["workflow"] == workflow_id and e["pid"] != victim.pid]
        if later:
            adoption.append(min(later) - killed_at)
    return FleetResult(
        runs=runs,
        statuses=asyncio.run(_statuses(url, runs)),
        tools_completed_twice=sum(1 for n in ended.values() if n > 1),
        calls_rerun=sum(n - 1 for n in started.values() if n > 1),
        held_by_victim=len(held),
        adoption_seconds=adoption,
    )


def _held(events: list[dict[str, Any]], pid: int) -> set[str]:
    """The runs ``pid`` has started and nobody has finished."""
    finished = {e["workflow"] for e in events if e["label"] == LAST and e["phase"] == "end"}
    return {e["workflow"] for e in events if e["pid"] == pid} - finished


def _finished(events: list[dict[str, Any]]) -> int:
    return len({e["workflow"] for e in events if e["label"] == LAST and e["phase"] == "end"})


async def _statuses(url: str, runs: int) -> Counter[str]:
    try:
        found = await list_agent_workflows(limit=runs * 2, url=url)
    finally:
        await close_backends()
        shutdown_dbos()
    return Counter(run.status for run in found if run.workflow_id.startswith("load-"))
