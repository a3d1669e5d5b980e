"""Queued and scheduled durable runs: priority, de-duplication, limits, cron; then bad input."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from agents import Agent, Model, ModelResponse
from agents.testing import ScriptedModel, assistant_message
from dbos import DBOS
from workflow_support import FINAL_ANSWER, Recorder, clerk, parked

from timestep.errors import (
    DuplicateWorkflowError,
    QueueNotFoundError,
    WorkflowCancelledError,
    WorkflowConfigurationError,
    WorkflowNotFoundError,
    WorkflowNotLaunchedError,
)
from timestep.workflows import (
    AgentWorkflowHandle,
    WorkflowSettings,
    approve_workflow,
    cancel_agent_workflow,
    create_scheduled_agent_workflow,
    delete_scheduled_agent_workflow,
    list_agent_workflows,
    list_scheduled_agent_workflows,
    queue_agent_workflow,
    register_agent,
    register_agent_queue,
    run_agent_workflow,
    show_agent_workflow,
    trigger_scheduled_agent_workflow,
)
from timestep.workflows.durable import build_request
from timestep.workflows.schedules import _scheduled_agent_workflow


class EchoModel(Model):
    """Answers with the user's text; records when each call starts and ends.

    A call on the text ``"hold"`` waits until :attr:`gate` opens, to keep a queue busy.
    """

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.calls: list[tuple[str, str, float]] = []
        self.gate = threading.Event()

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        items = args[1] if len(args) > 1 else kwargs["input"]
        text = str(items[-1]["content"]) if isinstance(items, list) else str(items)
        self.calls.append((text, "start", time.monotonic()))
        if text == "hold":
            await asyncio.to_thread(self.gate.wait, 30)
        await asyncio.sleep(self.seconds)
        self.calls.append((text, "end", time.monotonic()))
        return await ScriptedModel([[assistant_message(text)]]).get_response(*args, **kwargs)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def started(self) -> list[str]:
        return [text for text, phase, _ in self.calls if phase == "start"]

    def times(self, phase: str) -> list[float]:
        return sorted(at for _, p, at in self.calls if p == phase)


async def results(*handles: AgentWorkflowHandle) -> list[Any]:
    return [(await h.get_result(polling_interval_sec=0.1)).final_output for h in handles]


async def test_queued_runs_start_by_priority(engine: WorkflowSettings) -> None:
    model = EchoModel()
    assistant = register_agent(Agent(name="Echo", model=model))
    await register_agent_queue("ordered", worker_concurrency=1, polling_interval_sec=0.05)
    busy = await queue_agent_workflow(agent=assistant, input_items="hold", queue="ordered")
    await busy.wait_for_status("PENDING")

    handles = [
        await queue_agent_workflow(
            agent=assistant, input_items=f"p{priority}", queue="ordered", priority=priority
        )
        for priority in (3, 1, 2)
    ]
    model.gate.set()

    assert await results(busy, *handles) == ["hold", "p3", "p1", "p2"]
    assert model.started() == ["hold", "p1", "p2", "p3"]


async def test_a_deduplication_id_admits_one_run_at_a_time(
    sqlite_engine: WorkflowSettings,
) -> None:
    model = EchoModel()
    assistant = register_agent(Agent(name="Echo", model=model))
    first = await queue_agent_workflow(
        agent=assistant, input_items="hold", deduplication_id="user-42"
    )

    with pytest.raises(DuplicateWorkflowError, match="user-42"):
        await queue_agent_workflow(agent=assistant, input_items="x", deduplication_id="user-42")
    same = await queue_agent_workflow(
        agent=assistant, input_items="x", deduplication_id="user-42", return_existing=True
    )
    assert same.workflow_id == first.workflow_id

    model.gate.set()
    await first.get_result(polling_interval_sec=0.1)
    later = await queue_agent_workflow(agent=assistant, input_items="y", deduplication_id="user-42")
    assert later.workflow_id != first.workflow_id
    assert await results(later) == ["y"]


async def test_a_rate_limited_queue_spaces_out_starts(postgres_engine: WorkflowSettings) -> None:
    # PostgreSQL only: on SQLite, DBOS keeps queue times in whole seconds, so its limiter
    # windows are only accurate to a second there.
    model = EchoModel()
    assistant = register_agent(Agent(name="Echo", model=model))
    await register_agent_queue("limited", rate_limit=(2, 1.0), polling_interval_sec=0.05)

    handles = [
        await queue_agent_workflow(agent=assistant, input_items=f"r{i}", queue="limited")
        for i in range(4)
    ]
    await results(*handles)

    # DBOS's own record of when each run left the queue: at most two in any one second.
    runs = await DBOS.list_workflows_async(queue_name="limited")
    starts = sorted(run.dequeued_at for run in runs if run.dequeued_at is not None)
    assert len(starts) == 4
    assert all(later - earlier >= 990 for earlier, later in zip(starts, starts[2:], strict=False))


async def test_concurrency_caps_how_many_run_at_once(sqlite_engine: WorkflowSettings) -> None:
    model = EchoModel(seconds=0.3)
    assistant = register_agent(Agent(name="Echo", model=model))
    await register_agent_queue("pair", concurrency=2, polling_interval_sec=0.05)

    handles = [
        await queue_agent_workflow(agent=assistant, input_items=f"c{i}", queue="pair")
        for i in range(5)
    ]
    await results(*handles)

    events = sorted((at, +1 if phase == "start" else -1) for _, phase, at in model.calls)
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    assert peak == 2


async def test_a_delayed_run_waits_its_delay(sqlite_engine: WorkflowSettings) -> None:
    model = EchoModel()
    assistant = register_agent(Agent(name="Echo", model=model))
    queued_at = time.monotonic()

    handle = await queue_agent_workflow(agent=assistant, input_items="later", delay_seconds=1.0)

    assert await handle.get_status() == "DELAYED"
    assert await results(handle) == ["later"]
    assert model.times("start")[0] - queued_at >= 1.0


async def test_a_cron_schedule_runs_the_agent_on_every_tick_until_deleted(
    engine: WorkflowSettings,
) -> None:
    model = EchoModel()
    assistant = register_agent(Agent(name="Digest", model=model))

    await create_scheduled_agent_workflow(
        crontab="* * * * * *", agent=assistant, input_items="digest", name="digest"
    )
    # Creating it again (as every start-up does) replaces it rather than failing.
    await create_scheduled_agent_workflow(
        crontab="* * * * * *", agent=assistant, input_items="digest", name="digest"
    )

    schedules = await list_scheduled_agent_workflows()
    assert [(s.name, s.crontab, s.agent, s.status) for s in schedules] == [
        ("digest", "* * * * * *", "Digest", "ACTIVE")
    ]
    async with asyncio.timeout(20):
        while True:
            if len(model.times("end")) >= 2:
                break
            await asyncio.sleep(0.1)
    ticks = await DBOS.list_workflows_async(workflow_id_prefix="sched-digest-")
    assert len(ticks) >= 2

    await delete_scheduled_agent_workflow("digest")
    assert await list_scheduled_agent_workflows() == []
    settled = len(model.times("start"))
    await asyncio.sleep(1.5)
    assert len(model.times("start")) <= settled + 1  # at most the tick already fired


async def test_a_schedule_can_be_run_now_besides_its_ticks(sqlite_engine: WorkflowSettings) -> None:
    model = EchoModel()
    assistant = register_agent(Agent(name="Digest", model=model))
    await create_scheduled_agent_workflow(
        crontab="0 0 1 1 *", agent=assistant, input_items="new year", name="yearly"
    )

    handle = await trigger_scheduled_agent_workflow("yearly")

    assert handle.workflow_id.startswith("sched-yearly-")
    assert await results(handle) == ["new year"]


async def test_deleting_a_schedule_cancels_its_waiting_ticks_and_late_ticks_do_nothing(
    engine: WorkflowSettings,
) -> None:
    model = EchoModel()
    echo = register_agent(Agent(name="Echo", model=model))
    await register_agent_queue("busy", concurrency=1, polling_interval_sec=0.05)
    holder = await queue_agent_workflow(agent=echo, input_items="hold", queue="busy")
    await create_scheduled_agent_workflow(
        crontab="0 0 1 1 *", agent=echo, input_items="tick", name="yearly", queue="busy"
    )
    waiting = await trigger_scheduled_agent_workflow("yearly")  # behind "hold" in the queue

    await delete_scheduled_agent_workflow("yearly")
    model.gate.set()
    assert await results(holder) == ["hold"]
    assert await waiting.get_status() == "CANCELLED"

    # A scheduler thread elsewhere fired once more before it noticed the deletion.
    late = await DBOS.start_workflow_async(
        _scheduled_agent_workflow,
        datetime.now(UTC),
        build_request(echo, "tick", None, max_turns=None, context=None, approval_timeout=None)
        | {"schedule": "yearly"},
    )
    assert (await late.get_result())["skipped"] == "yearly"
    assert model.started() == ["hold"]  # no tick ever ran the agent


# -- parked runs ------------------------------------------------------------------------------


async def test_runs_parked_on_approval_leave_their_queue_slot_to_others(
    engine: WorkflowSettings,
) -> None:
    recorder = Recorder()
    refunder = register_agent(clerk(recorder, approval=True))
    echo = register_agent(Agent(name="Echo", model=EchoModel()))
    await register_agent_queue("one", concurrency=1, polling_interval_sec=0.05)

    waiting = [
        await queue_agent_workflow(
            agent=refunder, input_items="Refund 7", queue="one", workflow_id=f"q-{i}"
        )
        for i in (1, 2)
    ]
    for handle in waiting:
        await parked(handle.workflow_id)  # both parked: neither holds the single slot
    quick = await queue_agent_workflow(agent=echo, input_items="no approval needed", queue="one")

    assert await asyncio.wait_for(results(quick), 30) == ["no approval needed"]
    assert await waiting[0].get_status() == "PENDING"  # still parked, as far as callers see
    shown = await show_agent_workflow("q-1")
    assert [p.call_id for p in shown.pending_approvals] == ["c3"]
    parked_now = {r.workflow_id for r in await list_agent_workflows(status="PENDING")}
    assert parked_now == {"q-1/approval-1", "q-2/approval-1"}
    for handle in waiting:
        assert await approve_workflow(handle.workflow_id, by="ana") == ["c3"]
    finished = [await asyncio.wait_for(h.get_result(polling_interval_sec=0.1), 30) for h in waiting]

    assert [r.final_output for r in finished] == [FINAL_ANSWER, FINAL_ANSWER]
    assert [r.workflow_id for r in finished] == ["q-1", "q-2"]
    assert all(
        r.approvals == [{"call_id": "c3", "tool_name": "refund", "approved": True}]
        for r in finished
    )
    # Every step ran once: two runs, each two lookups, one refund, three model calls.
    assert recorder.starts("tool:c3") == 2 and recorder.starts("model:0") == 2
    assert recorder.starts("model:2") == 2 and recorder.starts("model:3") == 2
    assert await waiting[1].get_status() == "SUCCESS"


async def test_a_caller_awaiting_a_cancelled_run_is_told_at_once(
    engine: WorkflowSettings,
) -> None:
    refunder = register_agent(clerk(Recorder(), approval=True))
    direct = asyncio.create_task(
        run_agent_workflow(agent=refunder, input_items="Refund 7", workflow_id="c-1")
    )
    queued = await queue_agent_workflow(agent=refunder, input_items="Refund 7", workflow_id="c-2")
    await parked("c-1")
    await parked("c-2")

    assert await cancel_agent_workflow("c-1") == "CANCELLED"
    assert await cancel_agent_workflow("c-2") == "CANCELLED"

    with pytest.raises(WorkflowCancelledError, match="c-1") as cancelled:
        await asyncio.wait_for(direct, 20)
    assert cancelled.value.workflow_id == "c-1"
    with pytest.raises(WorkflowCancelledError, match="c-2"):
        await asyncio.wait_for(queued.get_result(polling_interval_sec=0.1), 20)


# -- bad input -------------------------------------------------------------------------------


async def test_queues_and_schedules_refuse_bad_input_by_name(
    sqlite_engine: WorkflowSettings,
) -> None:
    assistant = register_agent(Agent(name="Echo", model=EchoModel()))

    with pytest.raises(QueueNotFoundError, match=r"register_agent_queue\('nowhere'"):
        await queue_agent_workflow(agent=assistant, input_items="x", queue="nowhere")
    for priority in (0, 2**31, True):
        with pytest.raises(WorkflowConfigurationError, match="priority"):
            await queue_agent_workflow(agent=assistant, input_items="x", priority=priority)
    with pytest.raises(WorkflowConfigurationError, match="deduplication_id"):
        await queue_agent_workflow(agent=assistant, input_items="x", return_existing=True)
    with pytest.raises(WorkflowConfigurationError, match="rate_limit"):
        await register_agent_queue("q", rate_limit=(0, 1.0))
    with pytest.raises(WorkflowConfigurationError, match="concurrency"):
        await register_agent_queue("q", concurrency=0)
    with pytest.raises(WorkflowConfigurationError, match="cron"):
        await create_scheduled_agent_workflow(
            crontab="every day", agent=assistant, input_items="x", name="bad"
        )
    with pytest.raises(WorkflowConfigurationError, match="IANA"):
        await create_scheduled_agent_workflow(
            crontab="0 * * * *", agent=assistant, input_items="x", name="bad", timezone="Mars/Base"
        )
    with pytest.raises(WorkflowNotFoundError, match="no schedule 'ghost'"):
        await trigger_scheduled_agent_workflow("ghost")
    assert await DBOS.list_workflows_async() == []


async def test_queueing_needs_a_launched_engine() -> None:
    assistant = register_agent(Agent(name="Echo", model=EchoModel()))
    with pytest.raises(WorkflowNotLaunchedError, match="ensure_dbos_launched"):
        await queue_agent_workflow(agent=assistant, input_items="x")
