"""Approvals inside durable runs: park, decide from anywhere, resume; then the edge cases."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest
from dbos import DBOS
from workflow_support import FINAL_ANSWER, Recorder, Worker, clerk, parked

from timestep import RunStateStore
from timestep.errors import (
    ApprovalNotPendingError,
    DecisionConflictError,
    WorkflowConfigurationError,
    WorkflowNotFoundError,
)
from timestep.workflows import (
    AgentWorkflowHandle,
    AgentWorkflowResult,
    WorkflowSettings,
    approve_workflow,
    pending_approvals,
    register_agent,
    run_agent_workflow,
)


def start(run: Coroutine[Any, Any, AgentWorkflowResult]) -> asyncio.Task[AgentWorkflowResult]:
    """Run ``run`` in the background (it parks until a decision arrives)."""
    return asyncio.create_task(run)


async def test_a_run_parks_on_approval_and_resumes_when_approved(
    engine: WorkflowSettings,
) -> None:
    recorder = Recorder()
    assistant = register_agent(clerk(recorder, approval=True))
    running = start(run_agent_workflow(agent=assistant, input_items="Refund 7", workflow_id="o-7"))

    pending = await parked("o-7")
    assert [(p.call_id, p.tool_name, p.arguments) for p in pending] == [
        ("c3", "refund", '{"order":"7"}')
    ]
    # The paused run is an ordinary stored run state, as the core README describes.
    stored = await RunStateStore(agent=assistant, session_id="o-7", url=engine.url).info()
    assert stored is not None and stored.status.value == "interrupted"
    assert recorder.starts("tool:c3") == 0

    assert await approve_workflow("o-7", approve=True) == ["c3"]
    result = await running

    assert result.final_output == FINAL_ANSWER
    assert result.approvals == [{"call_id": "c3", "tool_name": "refund", "approved": True}]
    assert recorder.starts("tool:c3") == 1
    assert recorder.starts("model:0") == 1 and recorder.starts("model:2") == 1
    assert await pending_approvals("o-7") == []


async def test_a_rejection_reaches_the_model_and_the_tool_never_runs(
    sqlite_engine: WorkflowSettings,
) -> None:
    recorder = Recorder()
    assistant = register_agent(clerk(recorder, approval=True))
    running = start(run_agent_workflow(agent=assistant, input_items="Refund 7", workflow_id="o-8"))
    await parked("o-8")

    await approve_workflow("o-8", approve=False, rejection_message="Refunds need a manager.")
    result = await running

    assert recorder.starts("tool:c3") == 0
    outputs = [i for i in result.new_items if i.get("type") == "function_call_output"]
    assert outputs[-1] == {
        "call_id": "c3",
        "output": "Refunds need a manager.",
        "type": "function_call_output",
    }


async def test_each_interruption_can_be_decided_on_its_own(
    sqlite_engine: WorkflowSettings,
) -> None:
    recorder = Recorder()
    assistant = register_agent(clerk(recorder, approval=True, two_approvals=True))
    running = start(run_agent_workflow(agent=assistant, input_items="Refund", workflow_id="o-9"))
    assert {p.call_id for p in await parked("o-9", count=2)} == {"c3", "c4"}

    await approve_workflow("o-9", approve=True, call_id="c4")
    await asyncio.sleep(0.3)
    assert not running.done()  # still waiting for c3
    await approve_workflow("o-9", approve=False, call_id="c3")
    with pytest.raises(DecisionConflictError, match="c3"):  # too late: first decision wins
        await approve_workflow("o-9", approve=True, call_id="c3")
    result = await running

    assert sorted((a["call_id"], a["approved"]) for a in result.approvals) == [
        ("c3", False),
        ("c4", True),
    ]
    assert recorder.starts("tool:c4") == 1 and recorder.starts("tool:c3") == 0


async def test_an_approval_timeout_rejects_what_was_not_decided(
    sqlite_engine: WorkflowSettings,
) -> None:
    recorder = Recorder()
    assistant = register_agent(clerk(recorder, approval=True))

    result = await run_agent_workflow(
        agent=assistant, input_items="Refund 7", workflow_id="o-10", approval_timeout=0.5
    )

    assert result.approvals == [{"call_id": "c3", "tool_name": "refund", "approved": False}]
    outputs = [i["output"] for i in result.new_items if i.get("type") == "function_call_output"]
    assert outputs[-1] == "No approval decision arrived within 0.5 seconds."
    assert recorder.starts("tool:c3") == 0


async def test_a_decision_from_another_process_resumes_the_run(
    sqlite_engine: WorkflowSettings, sqlite_url: str, timestep_home: Path
) -> None:
    recorder = Recorder()
    assistant = register_agent(clerk(recorder, approval=True))
    running = start(run_agent_workflow(agent=assistant, input_items="Refund 7", workflow_id="o-11"))
    await parked("o-11")

    env = {**os.environ, "TIMESTEP_HOME": str(timestep_home)}
    approver = Worker("approve", sqlite_url, "o-11", "approve", env=env)
    decided = await asyncio.to_thread(approver.outcome)
    result = await running

    assert decided["call_ids"] == ["c3"] and decided["pid"] != os.getpid()
    assert result.final_output == FINAL_ANSWER
    assert recorder.starts("tool:c3") == 1


# -- edge cases ------------------------------------------------------------------------------


async def test_deciding_what_is_not_pending_is_refused_with_what_is(
    sqlite_engine: WorkflowSettings,
) -> None:
    assistant = register_agent(clerk(Recorder(), approval=True))
    running = start(run_agent_workflow(agent=assistant, input_items="Refund 7", workflow_id="o-12"))
    await parked("o-12")

    with pytest.raises(WorkflowNotFoundError, match="no-such-run"):
        await approve_workflow("no-such-run")
    with pytest.raises(ApprovalNotPendingError, match=r"waits for: c3 \(refund\)"):
        await approve_workflow("o-12", call_id="c9")
    with pytest.raises(WorkflowConfigurationError, match="approve=False"):
        await approve_workflow("o-12", approve=True, rejection_message="no")

    await approve_workflow("o-12")
    await running
    # After the run: the same decision again is acknowledged, a different one refused.
    assert await approve_workflow("o-12") == ["c3"]
    with pytest.raises(DecisionConflictError, match="already approved"):
        await approve_workflow("o-12", approve=False)


async def test_a_run_that_never_asked_is_not_waiting(sqlite_engine: WorkflowSettings) -> None:
    assistant = register_agent(clerk(Recorder()))
    handle = AgentWorkflowHandle("plain")
    await run_agent_workflow(agent=assistant, input_items="hi", workflow_id="plain")
    assert await handle.get_status() == "SUCCESS"

    with pytest.raises(ApprovalNotPendingError):
        await approve_workflow("plain")
    assert [s["function_name"] for s in await DBOS.list_workflow_steps_async("plain")].count(
        "DBOS.recv"
    ) == 0
