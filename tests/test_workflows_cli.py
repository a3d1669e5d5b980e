"""`timestep workflows ...`, `timestep approve` and `timestep reject`, run as an operator would:
in a separate process that never launches DBOS, against runs this test's worker started."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from workflow_support import FINAL_ANSWER, Recorder, clerk, parked

from subprocesses import run_python
from timestep.errors import WorkflowCancelledError, WorkflowNotFoundError
from timestep.workflows import (
    AgentWorkflowResult,
    WorkflowSettings,
    get_agent_workflow,
    list_agent_workflows,
    register_agent,
    run_agent_workflow,
    show_agent_workflow,
)


async def timestep(
    *args: str, url: str, home: Path, ok: bool = True
) -> subprocess.CompletedProcess[str]:
    """`timestep ARGS --url URL` in its own process; the event loop (and the worker on it)
    keeps running meanwhile."""
    return await asyncio.to_thread(
        run_python, "-m", "timestep.cli", *args, "--url", url, home=home, ok=ok
    )


def start(agent: Any, workflow_id: str) -> asyncio.Task[AgentWorkflowResult]:
    return asyncio.create_task(
        run_agent_workflow(agent=agent, input_items="Refund 7", workflow_id=workflow_id)
    )


async def test_an_operator_lists_and_inspects_runs_then_approves_one(
    sqlite_engine: WorkflowSettings, timestep_home: Path
) -> None:
    url = sqlite_engine.url
    clerk_agent = register_agent(clerk(Recorder()))
    refunder = register_agent(clerk(Recorder(), approval=True, name="Refunder"))
    finished = await run_agent_workflow(agent=clerk_agent, input_items="Orders?", workflow_id="d-1")
    assert finished.final_output == FINAL_ANSWER
    waiting = start(refunder, "r-1")
    await parked("r-1", url=url)

    listed, table, shown, steps = await asyncio.gather(
        timestep("workflows", "list", "--json", url=url, home=timestep_home),
        timestep("workflows", "list", url=url, home=timestep_home),
        timestep("workflows", "show", "r-1", url=url, home=timestep_home),
        timestep("workflows", "show", "d-1", "--json", url=url, home=timestep_home),
    )

    runs = {run["workflow_id"]: run for run in json.loads(listed.stdout)}
    assert {wid: (r["status"], r["agent"]) for wid, r in runs.items()} == {
        "d-1": ("SUCCESS", "Clerk"),
        "r-1": ("PENDING", "Refunder"),
    }
    assert list(runs) == ["r-1", "d-1"]  # newest first
    assert "d-1" in table.stdout and "SUCCESS" in table.stdout and "Refunder" in table.stdout

    # A parked run shows what it did so far and what it waits for.
    assert "timestep.tool:lookup" in shown.stdout and "timestep.state.interrupted" in shown.stdout
    assert "Waiting for approval" in shown.stdout
    assert "refund" in shown.stdout and '{"order":"7"}' in shown.stdout and "c3" in shown.stdout

    done = json.loads(steps.stdout)
    assert done["status"] == "SUCCESS" and done["pending_approvals"] == []
    assert [step["name"] for step in done["steps"]] == [
        "timestep.input_guardrail:screen",
        "timestep.model",
        "timestep.tool:lookup",
        "timestep.tool:lookup",
        "timestep.model",
        "timestep.tool:notify",
        "timestep.model",
    ]
    tool_outputs = [s["output"] for s in done["steps"] if s["name"] == "timestep.tool:lookup"]
    assert tool_outputs == ["order 7: shipped", "order 8: shipped"]
    final = [s["output"] for s in done["steps"] if s["name"] == "timestep.model"][-1]
    assert FINAL_ANSWER in final

    approved = await timestep("approve", "r-1", url=url, home=timestep_home)
    assert "Approved refund (c3) in workflow r-1" in approved.stdout
    result = await asyncio.wait_for(waiting, 30)
    assert result.final_output == FINAL_ANSWER
    assert result.approvals == [{"call_id": "c3", "tool_name": "refund", "approved": True}]


async def test_an_operator_cancels_resumes_and_rejects_on_postgres(
    postgres_engine: WorkflowSettings, timestep_home: Path
) -> None:
    url = postgres_engine.url
    recorder = Recorder()
    refunder = register_agent(clerk(recorder, approval=True, name="Refunder"))
    first_attempt = start(refunder, "r-2")
    await parked("r-2", url=url)

    cancelled = await timestep("workflows", "cancel", "r-2", url=url, home=timestep_home)
    assert "Cancelled workflow r-2" in cancelled.stdout
    assert [(r.workflow_id, r.status) for r in await list_agent_workflows(url=url)] == [
        ("r-2", "CANCELLED")
    ]
    # The caller still awaiting the parked run is told, though DBOS does not end the wait.
    with pytest.raises(WorkflowCancelledError, match="r-2"):
        await asyncio.wait_for(first_attempt, 20)

    resumed = await timestep("workflows", "resume", "r-2", url=url, home=timestep_home)
    assert "Resumed workflow r-2" in resumed.stdout
    # This test's worker picks the run up again, replays its steps and parks once more.
    handle = await get_agent_workflow("r-2", url=url)
    await handle.wait_for_status("PENDING", timeout_seconds=30)
    await parked("r-2", url=url)

    rejected = await timestep(
        "reject", "r-2", "--call-id", "c3", "--message", "Not today.", url=url, home=timestep_home
    )
    assert "Rejected refund (c3) in workflow r-2" in rejected.stdout
    result = await asyncio.wait_for(handle.get_result(polling_interval_sec=0.05), 30)
    assert result.approvals == [{"call_id": "c3", "tool_name": "refund", "approved": False}]
    details = await show_agent_workflow("r-2", url=url)
    assert details.workflow.status == "SUCCESS" and details.pending_approvals == []
    # The resumed attempt replayed the lookups from their checkpoints instead of calling again.
    assert [s.name for s in details.steps].count("timestep.tool:lookup") == 2
    assert (recorder.starts("tool:c1"), recorder.starts("tool:c2")) == (1, 1)
    assert recorder.starts("tool:c3") == 0  # rejected, never run


async def test_unknown_ids_and_statuses_are_clear_errors(
    sqlite_engine: WorkflowSettings, timestep_home: Path
) -> None:
    url = sqlite_engine.url
    with pytest.raises(WorkflowNotFoundError, match="'nope'"):
        await show_agent_workflow("nope", url=url)

    show, approve, status = await asyncio.gather(
        timestep("workflows", "show", "nope", url=url, home=timestep_home, ok=False),
        timestep("approve", "nope", url=url, home=timestep_home, ok=False),
        timestep("workflows", "list", "--status", "done", url=url, home=timestep_home, ok=False),
    )
    for done in (show, approve, status):
        assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "No workflow 'nope'" in show.stderr and "No workflow 'nope'" in approve.stderr
    assert "Unknown workflow status 'DONE'" in status.stderr
