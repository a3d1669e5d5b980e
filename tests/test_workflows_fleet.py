"""A fleet of workers of one program on one database, with no executor id configured.

Every worker is an OS process of its own (tests/workflow_process.py) that records each model
call, tool call and guardrail check, with its pid, in a shared file, so a test counts exactly
what ran where. Workers here heartbeat every 0.2 s and count as dead after 3 s of silence
(``TIMESTEP_WORKER_HEARTBEAT`` / ``TIMESTEP_WORKER_DEAD_AFTER``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fleet_load import run_fleet
from pg_cluster import ClusterUnavailable, PrivateCluster
from sqlalchemy import func, insert, select
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

from timestep.cli import main
from timestep.storage.schema import workers
from timestep.workflows import WorkflowSettings, list_workers
from timestep.workflows.fleet import Fleet, worker_status

Start = Callable[..., Worker]
LABELS = ["model:0", "guardrail", "tool:c1", "tool:c2", "model:2", "tool:c3", "model:3"]


def starts_by_pid(events: list[dict[str, Any]], label: str) -> list[int]:
    return [e["pid"] for e in events if e["label"] == label and e["phase"] == "start"]


def of_run(events: list[dict[str, Any]], workflow_id: str) -> list[dict[str, Any]]:
    return [e for e in events if e.get("workflow") == workflow_id]


def finished(record: Path, workflow_id: str) -> bool:
    return count(of_run(read_record(record), workflow_id), "model:3", "end") == 1


def assert_each_ran_to_completion_once(events: list[dict[str, Any]]) -> None:
    for label in LABELS:
        assert count(events, label, "end") == 1, (label, events)


@pytest.mark.parametrize("db", ["postgres", "sqlite"])
def test_a_second_replica_with_default_config_leaves_the_first_ones_run_alone(
    worker: Start, record: Path, tmp_path: Path, db: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue(f"{db}_url")
    stop = str(tmp_path / "stop")
    first = worker(url, "--start", "order-1", "--block", "tool:c2")
    wait_until(blocked_at(record, "tool:c2"), "the first worker to reach tool:c2")
    wait_until(looked_up_order_7(url, "order-1"), "the first worker to checkpoint lookup(7)")

    second = worker(url, "--serve-until", stop)
    wait_until(launched_worker(record, second.pid), "the second worker to launch")
    # Long enough for a wrongly recovered run to be dequeued and replayed past tool:c2.
    time.sleep(2.0)
    events = read_record(record)
    assert starts_by_pid(events, "tool:c2") == [first.pid], events
    assert {e["pid"] for e in events} == {first.pid}

    # The first replica crashes and is restarted in the same place (a new process, a new
    # id): its run comes back once its old heartbeat is stale, and nothing done runs again.
    first.kill()
    restarted = worker(url, "--wait", "order-1").outcome()
    Path(stop).touch()

    assert restarted["final_output"] == FINAL_ANSWER
    assert second.outcome()["event"] == "served"
    events = read_record(record)
    assert_each_ran_to_completion_once(events)
    for label in ("model:0", "guardrail", "tool:c1"):
        assert starts_by_pid(events, label) == [first.pid], label
    # Only the call in flight at the kill ran again, in one live worker.
    assert starts_by_pid(events, "tool:c2")[0] == first.pid
    assert count(events, "tool:c2", "start") == 2
    finishers = {e["pid"] for e in events if e["label"] in ("tool:c2", "model:2", "model:3")}
    assert len(finishers - {first.pid}) == 1


def test_a_worker_that_dies_for_good_has_its_run_finished_by_a_live_one_exactly_once(
    worker: Start, record: Path, postgres_url: str, tmp_path: Path
) -> None:
    stop = str(tmp_path / "stop")
    # Ids given explicitly, one each (what a fleet needed before); default ids behave the
    # same (see the fleet under load below).
    doomed = worker(postgres_url, "--executor-id", "w1", "--start", "order-1", "--block", "tool:c2")
    # A live worker busy with a slow run of its own (longer than dead_after), and an idle one:
    # both look for dead workers on every beat, and compete for the doomed one's run.
    busy = worker(
        postgres_url,
        *("--executor-id", "w2", "--start", "order-2", "--delay", "0.6"),
        *("--linger", "--serve-until", stop),
    )
    idle = worker(postgres_url, "--executor-id", "w3", "--serve-until", stop)
    wait_until(blocked_at(record, "tool:c2"), "the doomed worker to reach tool:c2")
    wait_until(looked_up_order_7(postgres_url, "order-1"), "it to checkpoint lookup(7)")
    wait_until(launched_worker(record, idle.pid), "the idle worker to launch")
    wait_until(launched_worker(record, busy.pid), "the busy worker to launch")
    assert {e["pid"] for e in of_run(read_record(record), "order-1")} == {doomed.pid}

    doomed.kill()  # and it never comes back
    for run in ("order-1", "order-2"):
        wait_until(functools.partial(finished, record, run), f"{run} to finish")
    Path(stop).touch()
    own = busy.outcome()
    assert idle.outcome()["event"] == "served"

    assert own["final_output"] == FINAL_ANSWER
    events = read_record(record)
    # The busy worker's own run was never adopted: all of it ran there, once.
    mine = of_run(events, "order-2")
    assert_each_ran_to_completion_once(mine)
    assert {e["pid"] for e in mine} == {busy.pid}
    assert len(mine) == 2 * len(LABELS)
    # The dead worker's run: what it finished ran once, the call it died in ran again, once,
    # and everything after it ran in exactly one live worker.
    adopted = of_run(events, "order-1")
    assert_each_ran_to_completion_once(adopted)
    for label in ("model:0", "guardrail", "tool:c1"):
        assert starts_by_pid(adopted, label) == [doomed.pid], label
    assert starts_by_pid(adopted, "tool:c2")[0] == doomed.pid
    assert count(adopted, "tool:c2", "start") == 2
    adopters = {e["pid"] for e in adopted} - {doomed.pid}
    assert len(adopters) == 1 and adopters <= {busy.pid, idle.pid}


def test_an_operator_sees_the_fleet_and_cannot_resume_a_run_its_live_worker_is_running(
    worker: Start, record: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    def timestep(*args: str) -> tuple[int, str, str]:
        """The `timestep` command, as an operator types it (run here: it launches nothing)."""
        with pytest.raises(SystemExit) as exited:
            main([*args, "--url", postgres_url])
        out, err = capsys.readouterr()
        return int(exited.value.code or 0), out, err

    owner = worker(postgres_url, "--start", "order-1", "--block", "tool:c2")
    wait_until(blocked_at(record, "tool:c2"), "the worker to reach tool:c2")
    wait_until(looked_up_order_7(postgres_url, "order-1"), "it to checkpoint lookup(7)")

    code, out, _ = timestep("workers", "--json")
    listed = json.loads(out)
    assert [(w["pid"], w["alive"], w["runs"]) for w in listed] == [(owner.pid, True, 1)]
    code, _, err = timestep("workflows", "resume", "order-1")
    assert code == 2
    assert "live worker" in err and "--force" in err
    assert count(read_record(record), "tool:c2", "start") == 1

    # Once its worker is dead (and no live worker has adopted the run yet), resuming is fine.
    executor_id = listed[0]["executor_id"]
    owner.kill()
    wait_until(lambda: not is_alive(executor_id, postgres_url), "the killed worker to be dead")
    code, out, _ = timestep("workers")
    assert executor_id in out and "dead, runs not yet adopted" in out
    code, out, err = timestep("workflows", "resume", "order-1")
    assert code == 0, err
    finisher = worker(postgres_url, "--wait", "order-1").outcome()
    assert finisher["final_output"] == FINAL_ANSWER
    events = read_record(record)
    assert_each_ran_to_completion_once(events)
    assert count(events, "tool:c2", "start") == 2


def is_alive(executor_id: str, url: str) -> bool:
    status = asyncio.run(worker_status(executor_id, url=url))
    return status is not None and status.alive


def test_competing_adopters_claim_a_dead_worker_once_and_never_a_live_one(
    engine: WorkflowSettings,
) -> None:
    adopters = [Fleet(dataclasses.replace(engine, executor_id=f"adopter-{i}")) for i in range(4)]
    for fleet in adopters:
        fleet.join()
        # As if each had been heartbeating for a long time already: a worker that just joined
        # judges nobody for one dead_after (the outage test below shows why).
        fleet._watching_since = 0
    with adopters[0].engine.begin() as conn:
        now = conn.execute(select(func.max(workers.c.last_heartbeat))).scalar_one()
        for name, heartbeat, dead_after in (
            ("dead-1", 0, 30_000),
            ("dead-2", now - 60_000, 30_000),
            ("alive-1", now, 30_000),
        ):
            conn.execute(
                insert(workers).values(
                    executor_id=name,
                    app_name=engine.name,
                    app_version=engine.application_version,
                    host="elsewhere",
                    pid=1,
                    started_at=0,
                    last_heartbeat=heartbeat,
                    dead_after_ms=dead_after,
                )
            )
    start = threading.Barrier(len(adopters))

    def adopt(fleet: Fleet) -> list[str]:
        start.wait()
        return fleet.adopt()

    try:
        with ThreadPoolExecutor(len(adopters)) as pool:
            claims = [name for found in pool.map(adopt, adopters) for name in found]
    finally:
        for fleet in adopters:
            fleet.stop()

    assert sorted(claims) == ["dead-1", "dead-2"]
    left = asyncio.run(list_workers(url=engine.url))
    assert "alive-1" in {w.executor_id for w in left if w.alive}
    assert not {"dead-1", "dead-2"} & {w.executor_id for w in left}


def test_a_fleet_under_load_loses_nothing_when_one_worker_dies_for_good(
    postgres_url: str, tmp_path: Path, timestep_home: Path
) -> None:
    # The run bench/faults.py prints, smaller: three default-configured workers share a queue.
    result = run_fleet(
        postgres_url,
        tmp_path,
        runs=6,
        delay=0.2,
        env={
            "TIMESTEP_HOME": str(timestep_home),
            "TIMESTEP_WORKER_HEARTBEAT": "0.2",
            "TIMESTEP_WORKER_DEAD_AFTER": "3",
        },
        timeout=90,
    )

    assert result.statuses["SUCCESS"] == 6, result.figures()
    assert result.lost == result.left_pending == result.tools_completed_twice == 0
    assert result.held_by_victim >= 1
    assert len(result.adoption_seconds) == result.held_by_victim


@pytest.mark.postgres
def test_a_database_outage_longer_than_dead_after_gets_no_live_workers_run_adopted(
    worker: Start, record: Path, tmp_path: Path
) -> None:
    try:
        cluster = PrivateCluster.create()
    except ClusterUnavailable as error:
        if os.environ.get("TIMESTEP_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"TIMESTEP_REQUIRE_POSTGRES=1 but no private server can start: {error}")
        pytest.skip(f"cannot start a private PostgreSQL server: {error}")
    try:
        url = cluster.url("postgres")
        stop = str(tmp_path / "stop")
        # The busy worker beats seldom: after the outage the idle one looks around first.
        busy = worker(url, "--start", "order-1", "--delay", "0.5", "--heartbeat", "1.4")
        idle = worker(url, "--serve-until", stop)
        wait_until(launched_worker(record, idle.pid), "the idle worker to launch")
        wait_until(lambda: count(read_record(record), "tool:c1", "start") == 1, "the first tool")

        # Nobody can heartbeat while the database is down; once it is back, every heartbeat
        # is older than dead_after (3 s). The idle worker must not take that for a death.
        cluster.stop()
        time.sleep(4.5)
        cluster.start()
        outcome = busy.outcome()
        Path(stop).touch()
        assert idle.outcome()["event"] == "served"
    finally:
        cluster.destroy()

    assert outcome["final_output"] == FINAL_ANSWER
    events = read_record(record)
    assert_each_ran_to_completion_once(events)
    assert {e["pid"] for e in events} == {busy.pid}
