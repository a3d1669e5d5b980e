"""``kill -9`` a worker in the middle of a durable run; a restarted worker finishes the run
without repeating any model or tool call that had completed.

Workers are separate OS processes (tests/workflow_process.py). Every model call, tool call and
guardrail check appends a start and an end line, with the process id, to a record file, so the
tests count exactly what ran where. A worker told ``--block LABEL`` hangs inside that call
(after recording its start) until it is killed.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from agents import SQLiteSession
from workflow_support import (
    FINAL_ANSWER,
    Worker,
    blocked_at,
    count,
    launched_worker,
    looked_up_order_7,
    read_record,
    wait_until,
)

from timestep import TimestepSession
from timestep.storage import close_backends
from timestep.workflows import (
    approve_workflow,
    pending_approvals,
    show_agent_workflow,
    shutdown_dbos,
)

Start = Callable[..., Worker]
T = TypeVar("T")
LABELS = ["model:0", "guardrail", "tool:c1", "tool:c2", "model:2", "tool:c3", "model:3"]


def assert_each_ran_to_completion_once(events: list[dict[str, Any]], labels: list[str]) -> None:
    for label in labels:
        assert count(events, label, "end") == 1, (label, events)


@pytest.mark.parametrize(
    ("db", "killed_in"),
    [("sqlite", "tool:c2"), ("postgres", "model:2")],
    ids=["mid-tool-on-sqlite", "mid-model-call-on-postgres"],
)
def test_a_worker_killed_mid_run_is_finished_by_its_restart_without_repeats(
    worker: Start,
    record: Path,
    tmp_path: Path,
    db: str,
    killed_in: str,
    request: pytest.FixtureRequest,
) -> None:
    url = request.getfixturevalue(f"{db}_url")
    chat = str(tmp_path / "chat.db")
    first = worker(url, "--start", "order-7", "--block", killed_in, "--session", chat)
    wait_until(blocked_at(record, killed_in), f"the worker to reach {killed_in}")
    if killed_in == "tool:c2":
        wait_until(looked_up_order_7(url, "order-7"), "lookup(7) to be checkpointed")

    first.kill()
    restarted = worker(url, "--wait", "order-7").outcome()

    assert restarted["final_output"] == FINAL_ANSWER
    events = read_record(record)
    assert_each_ran_to_completion_once(events, LABELS)
    # What had completed before the kill ran exactly once, in the first process.
    done_before = LABELS[: LABELS.index(killed_in)]
    for label in done_before:
        assert count(events, label, "start") == 1, label
        assert {e["pid"] for e in events if e["label"] == label} == {first.pid}
    # The call in flight ran again (it never completed), and everything after it ran once.
    assert count(events, killed_in, "start") == 2
    for label in LABELS[LABELS.index(killed_in) + 1 :]:
        assert count(events, label, "start") == 1, label
        assert {e["pid"] for e in events if e["label"] == label} == {restarted["pid"]}
    # The session got the run's items exactly once.
    items = asyncio.run(SQLiteSession("customer-1", chat).get_items())
    assert items == restarted["new_items"] and len(items) == 8


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_a_worker_killed_between_the_session_write_and_its_checkpoint_writes_the_history_once(
    worker: Start, record: Path, db: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue(f"{db}_url")
    first = worker(url, "--start", "order-7", "--timestep-session", "--block", "session:saved")
    wait_until(blocked_at(record, "session:saved"), "the worker to write the session")
    session = TimestepSession("customer-1", url=url)
    # The items are in the database, and DBOS has no checkpoint of the step that wrote them:
    # the recovered run has to run that step again.
    assert in_this_process(session.count()) == 8
    steps = in_this_process(show_agent_workflow("order-7", url=url)).steps
    assert "timestep.session.save" not in [step.name for step in steps]

    first.kill()
    restarted = worker(url, "--wait", "order-7").outcome()

    assert restarted["final_output"] == FINAL_ANSWER
    assert count(read_record(record), "session:saved", "start") == 1  # the hook's own process
    items = in_this_process(session.get_items())
    assert items == restarted["new_items"] and len(items) == 8
    # The next run of the conversation sees that history once, and adds to it as usual.
    in_this_process(session.add_items([{"role": "user", "content": "Thanks!"}]))
    assert in_this_process(session.count()) == 9


def test_a_run_parked_on_approval_survives_the_worker_and_a_decision_made_while_it_is_down(
    worker: Start, record: Path, sqlite_url: str
) -> None:
    first = worker(sqlite_url, "--start", "refund-7", "--approval")
    wait_until(lambda: bool(in_this_process(pending_approvals("refund-7", url=sqlite_url))), "park")
    first.kill()

    # Nobody runs the workflow now; this process (no engine launched) leaves the decision in
    # the database, where the workflow finds it once a worker recovers it.
    assert in_this_process(approve_workflow("refund-7", url=sqlite_url)) == ["c3"]
    restarted = worker(sqlite_url, "--wait", "refund-7", "--approval").outcome()

    assert restarted["final_output"] == FINAL_ANSWER
    assert restarted["approvals"] == [{"call_id": "c3", "tool_name": "refund", "approved": True}]
    events = read_record(record)
    assert_each_ran_to_completion_once(events, LABELS)
    for label in ("model:0", "guardrail", "tool:c1", "tool:c2", "model:2"):
        assert count(events, label, "start") == 1, label
    assert {e["pid"] for e in events if e["label"] == "tool:c3"} == {restarted["pid"]}


def test_a_queued_run_that_parked_is_finished_once_after_a_kill_mid_resume(
    worker: Start, record: Path, sqlite_url: str
) -> None:
    # Queued, it parks outside its queue; approved, it is queued again and killed mid-refund.
    first = worker(sqlite_url, "--start", "q-7", "--queued", "--approval", "--block", "tool:c3")
    wait_until(lambda: bool(in_this_process(pending_approvals("q-7", url=sqlite_url))), "park")
    assert in_this_process(approve_workflow("q-7", url=sqlite_url)) == ["c3"]
    wait_until(blocked_at(record, "tool:c3"), "the resumed run to reach the refund")
    first.kill()

    restarted = worker(sqlite_url, "--wait", "q-7", "--approval").outcome()

    assert restarted["workflow_id"] == "q-7" and restarted["final_output"] == FINAL_ANSWER
    assert restarted["approvals"] == [{"call_id": "c3", "tool_name": "refund", "approved": True}]
    events = read_record(record)
    assert_each_ran_to_completion_once(events, LABELS)
    for label in ("model:0", "guardrail", "tool:c1", "tool:c2", "model:2", "model:3"):
        assert count(events, label, "start") == 1, label
    assert count(events, "tool:c3", "start") == 2  # in flight at the kill: it ran again


def in_this_process(call: Coroutine[Any, Any, T]) -> T:
    """Run ``call`` on a loop of its own, then close what it opened (pools, DBOS client)."""

    async def run() -> T:
        try:
            return await call
        finally:
            await close_backends()
            shutdown_dbos()

    return asyncio.run(run())


def test_kills_at_arbitrary_moments_never_lose_the_run_or_redo_finished_work(
    worker: Start, record: Path, sqlite_url: str
) -> None:
    # Every call takes a while, so a kill lands inside one as often as between two.
    rng = random.Random(7)
    kills = 0
    process = worker(sqlite_url, "--start", "order-9", "--delay", "0.3")
    while kills < 2:
        wait_until(functools.partial(ran_or_ended, process, record), "the worker to get going")
        if process.exits_within(rng.uniform(0.0, 1.5)):
            break
        process.kill()
        kills += 1
        # A restart makes the same call again: idempotent by id, it attaches to the run its
        # launch recovered.
        process = worker(sqlite_url, "--start", "order-9", "--delay", "0.3")
    outcome = process.outcome()

    assert kills >= 1
    assert outcome["final_output"] == FINAL_ANSWER
    events = read_record(record)
    assert_each_ran_to_completion_once(events, LABELS)
    for label in LABELS:
        # A call can only run again if a kill interrupted it before it completed.
        assert count(events, label, "start") <= 1 + kills, label


def ran_or_ended(process: Worker, record: Path) -> bool:
    """Whether ``process`` has recorded a call (it is mid-run), or has exited."""
    return process.ended or any(e["pid"] == process.pid for e in read_record(record))


def test_only_the_crashed_workers_restart_recovers_its_run_and_it_runs_once(
    worker: Start, record: Path, postgres_url: str, tmp_path: Path
) -> None:
    stop = str(tmp_path / "stop")
    # w1 counts as dead only after a minute of silence: within this test, nobody adopts its run.
    blocked = worker(
        postgres_url,
        *("--executor-id", "w1", "--dead-after", "60"),
        *("--start", "order-8", "--block", "tool:c2"),
    )
    bystander = worker(postgres_url, "--executor-id", "w2", "--serve-until", stop)
    wait_until(blocked_at(record, "tool:c2"), "w1 to reach tool:c2")
    wait_until(looked_up_order_7(postgres_url, "order-8"), "w1 to checkpoint lookup(7)")
    wait_until(launched_worker(record, bystander.pid), "w2 to launch")

    blocked.kill()
    # Neither w2 (alive all along) nor w3 (launching after the crash) touches w1's run: at
    # launch a worker recovers only the runs of its own executor id, and w1's heartbeat is
    # not yet old enough for them to adopt it.
    latecomer = worker(postgres_url, "--executor-id", "w3", "--serve-until", stop)
    wait_until(launched_worker(record, latecomer.pid), "w3 to launch")
    time.sleep(1.0)
    assert {e["pid"] for e in read_record(record)} == {blocked.pid}

    # w1 comes back under its old id; its launch makes the run runnable again. DBOS hands a
    # recovered run to whichever live worker dequeues it first, exactly one of them.
    restarted = worker(postgres_url, "--executor-id", "w1", "--wait", "order-8").outcome()
    Path(stop).touch()

    assert restarted["final_output"] == FINAL_ANSWER
    assert bystander.outcome()["event"] == latecomer.outcome()["event"] == "served"
    events = read_record(record)
    assert_each_ran_to_completion_once(events, LABELS)
    for label in ("model:0", "guardrail", "tool:c1"):
        assert {e["pid"] for e in events if e["label"] == label} == {blocked.pid}
    finishers = {e["pid"] for e in events if e["label"] in ("model:2", "tool:c3", "model:3")}
    assert len(finishers) == 1
    assert finishers <= {restarted["pid"], bystander.pid, latecomer.pid}
