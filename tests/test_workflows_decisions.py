"""Approval decisions are durable and final: the first one wins, a different later one is
refused with who decided what and when, and the same one again is simply acknowledged.

Then: a durable run never overwrites a plain paused run that happens to share its id.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from workflow_support import FINAL_ANSWER, Recorder, Worker, clerk, parked

from subprocesses import run_python
from timestep import (
    DecisionConflictError,
    RunStateStore,
    StateConflictError,
    TimestepError,
    run_agent,
)
from timestep.errors import WorkflowConfigurationError
from timestep.workflows import (
    WorkflowSettings,
    approve_workflow,
    queue_agent_workflow,
    register_agent,
    run_agent_workflow,
)


async def test_a_later_different_decision_is_refused_and_names_the_first(
    engine: WorkflowSettings,
) -> None:
    recorder = Recorder()
    assistant = register_agent(clerk(recorder, approval=True))
    running = asyncio.create_task(
        run_agent_workflow(agent=assistant, input_items="Refund 7", workflow_id="d-1")
    )
    await parked("d-1")

    assert await approve_workflow("d-1", approve=True, by="ana") == ["c3"]
    with pytest.raises(DecisionConflictError) as refused:
        await approve_workflow("d-1", approve=False, rejection_message="No.", by="bob")

    conflict = refused.value
    assert isinstance(conflict, StateConflictError) and isinstance(conflict, TimestepError)
    assert (conflict.call_id, conflict.decision, conflict.decided_by) == ("c3", "approved", "ana")
    assert conflict.decided_at is not None
    assert "approved by ana" in str(conflict) and "d-1" in str(conflict)
    result = await asyncio.wait_for(running, 30)
    assert result.approvals == [{"call_id": "c3", "tool_name": "refund", "approved": True}]
    assert result.final_output == FINAL_ANSWER
    assert recorder.starts("tool:c3") == 1


async def test_the_same_decision_twice_is_acknowledged_and_runs_once(
    sqlite_engine: WorkflowSettings,
) -> None:
    recorder = Recorder()
    assistant = register_agent(clerk(recorder, approval=True))
    running = asyncio.create_task(
        run_agent_workflow(agent=assistant, input_items="Refund 7", workflow_id="d-2")
    )
    await parked("d-2")

    first, again = await asyncio.gather(
        approve_workflow("d-2", approve=False, rejection_message="No.", by="ana"),
        approve_workflow("d-2", approve=False, rejection_message="Still no.", by="bob"),
    )

    assert first == again == ["c3"]
    result = await asyncio.wait_for(running, 30)
    assert result.approvals == [{"call_id": "c3", "tool_name": "refund", "approved": False}]
    outputs = [i["output"] for i in result.new_items if i.get("type") == "function_call_output"]
    assert outputs[-1] in {"No.", "Still no."}
    assert recorder.starts("tool:c3") == 0


@pytest.mark.parametrize("rounds", [3])
async def test_two_processes_deciding_at_once_agree_on_one_winner(
    engine: WorkflowSettings, timestep_home: Path, rounds: int
) -> None:
    env = {**os.environ, "TIMESTEP_HOME": str(timestep_home)}
    recorder = Recorder()
    assistant = register_agent(clerk(recorder, approval=True))
    approvals_won = 0
    for round_ in range(rounds):
        workflow_id = f"race-{round_}"
        running = asyncio.create_task(
            run_agent_workflow(agent=assistant, input_items="Refund 7", workflow_id=workflow_id)
        )
        await parked(workflow_id)
        deciders = [
            Worker("approve", engine.url, workflow_id, "approve", "--by", "ana", env=env),
            Worker("approve", engine.url, workflow_id, "reject", "--by", "bob", env=env),
        ]
        outcomes = await asyncio.gather(*(asyncio.to_thread(d.outcome) for d in deciders))

        decided = [o for o in outcomes if o["event"] == "decided"]
        refused = [o for o in outcomes if o["event"] == "error"]
        assert len(decided) == 1 and len(refused) == 1, outcomes
        assert refused[0]["error"] == "DecisionConflictError"
        winner = "approved" if decided[0]["decision"] == "approve" else "rejected"
        assert f"{winner} by {decided[0]['by']}" in refused[0]["message"]
        result = await asyncio.wait_for(running, 30)
        assert result.approvals[0]["approved"] is (winner == "approved")
        approvals_won += winner == "approved"
    # The refund ran once for each run whose approval won, and never for the others.
    assert recorder.starts("tool:c3") == approvals_won


async def test_the_cli_refuses_a_conflicting_decision_and_says_who_decided(
    sqlite_engine: WorkflowSettings, timestep_home: Path
) -> None:
    url = sqlite_engine.url
    assistant = register_agent(clerk(Recorder(), approval=True))
    running = asyncio.create_task(
        run_agent_workflow(agent=assistant, input_items="Refund 7", workflow_id="d-3")
    )
    await parked("d-3", url=url)

    rejected = await asyncio.to_thread(
        run_python,
        "-m",
        "timestep.cli",
        "reject",
        "d-3",
        "--by",
        "ana",
        "--url",
        url,
        home=timestep_home,
    )
    again = await asyncio.to_thread(
        run_python,
        "-m",
        "timestep.cli",
        "reject",
        "d-3",
        "--by",
        "ana",
        "--url",
        url,
        home=timestep_home,
    )
    approved = await asyncio.to_thread(
        run_python,
        "-m",
        "timestep.cli",
        "approve",
        "d-3",
        "--by",
        "bob",
        "--url",
        url,
        home=timestep_home,
        ok=False,
    )

    assert "Rejected refund (c3) in workflow d-3" in rejected.stdout
    assert again.returncode == 0
    assert approved.returncode != 0
    assert "rejected by ana at" in approved.stderr and "c3" in approved.stderr
    result = await asyncio.wait_for(running, 30)
    assert result.approvals[0]["approved"] is False


async def test_a_timeout_is_a_decision_too_for_a_queued_run(
    sqlite_engine: WorkflowSettings,
) -> None:
    recorder = Recorder()
    assistant = register_agent(clerk(recorder, approval=True))
    handle = await queue_agent_workflow(
        agent=assistant, input_items="Refund 7", workflow_id="d-4", approval_timeout=0.5
    )

    result = await asyncio.wait_for(handle.get_result(polling_interval_sec=0.1), 30)

    assert result.workflow_id == "d-4"
    assert result.approvals == [{"call_id": "c3", "tool_name": "refund", "approved": False}]
    with pytest.raises(DecisionConflictError, match="rejected by timeout") as late:
        await approve_workflow("d-4", by="ana")
    assert late.value.decided_by == "timeout"
    assert recorder.starts("tool:c3") == 0


# -- with TIMESTEP_STATE_KEY, a decision needs the key ---------------------------------------

STATE_KEY = "k" * 40


def without_key(home: Path) -> dict[str, str]:
    """The environment of a process with database access and no TIMESTEP_STATE_KEY."""
    env = {key: value for key, value in os.environ.items() if key != "TIMESTEP_STATE_KEY"}
    return {**env, "TIMESTEP_HOME": str(home)}


async def test_with_a_key_a_decision_forged_without_it_is_refused_and_logged(
    engine: WorkflowSettings,
    timestep_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("TIMESTEP_STATE_KEY", STATE_KEY)  # the worker's (this process's) key
    recorder = Recorder()
    assistant = register_agent(clerk(recorder, approval=True))
    running = asyncio.create_task(
        run_agent_workflow(agent=assistant, input_items="Refund 7", workflow_id="s-1")
    )
    await parked("s-1")
    mallory = without_key(timestep_home)

    with caplog.at_level("WARNING", logger="timestep"):
        # A bare DBOS message on the approval topic, then a row in the decisions table.
        for how in ("message", "row"):
            forged = Worker("forge", engine.url, "s-1", "c3", how, env=mallory).outcome()
            assert forged == {"event": "forged", "how": how}
        refusals = ("no valid decision is stored", "Refused the stored decision")
        await _until(lambda: all(r in caplog.text for r in refusals) or running.done())
        assert not running.done() and recorder.starts("tool:c3") == 0  # still parked
        # approve_workflow without the key says why it cannot decide, and records nothing.
        keyless = Worker("approve", engine.url, "s-1", "approve", "--by", "eve", env=mallory)
        outcome = keyless.outcome()

    assert outcome["error"] == "StateIntegrityError", outcome
    assert "TIMESTEP_STATE_KEY" in outcome["message"] and "s-1" in outcome["message"]
    refusals = [r for r in caplog.records if r.name == "timestep" and r.levelname == "WARNING"]
    assert refusals and all("s-1" in r.getMessage() for r in refusals)
    assert any("c3" in r.getMessage() and "mallory" in r.getMessage() for r in refusals)
    assert STATE_KEY not in caplog.text
    assert not running.done() and recorder.starts("tool:c3") == 0  # still parked

    # A key holder's decision replaces the forged row and resumes the run.
    assert await approve_workflow("s-1", approve=True, by="ana") == ["c3"]
    result = await asyncio.wait_for(running, 30)
    assert result.approvals == [{"call_id": "c3", "tool_name": "refund", "approved": True}]
    assert result.final_output == FINAL_ANSWER and recorder.starts("tool:c3") == 1
    with pytest.raises(DecisionConflictError, match="approved by ana"):
        await approve_workflow("s-1", approve=False, by="bob")


async def test_without_a_key_a_decision_from_any_process_is_applied_as_before(
    sqlite_engine: WorkflowSettings, timestep_home: Path
) -> None:
    # No key: whoever can write the database decides (docs/security.md says so).
    recorder = Recorder()
    assistant = register_agent(clerk(recorder, approval=True))
    running = asyncio.create_task(
        run_agent_workflow(agent=assistant, input_items="Refund 7", workflow_id="s-2")
    )
    await parked("s-2")

    env = without_key(timestep_home)
    assert Worker("forge", sqlite_engine.url, "s-2", "c3", "row", env=env).outcome()["how"]

    result = await asyncio.wait_for(running, 30)
    assert result.approvals == [{"call_id": "c3", "tool_name": "refund", "approved": True}]
    assert recorder.starts("tool:c3") == 1


async def _until(done: Callable[[], bool]) -> None:
    async with asyncio.timeout(30):
        while True:
            if done():
                return
            await asyncio.sleep(0.05)


# -- a durable run and a plain paused run of the same agent ---------------------------------


async def test_a_durable_run_never_overwrites_a_plain_paused_run_with_its_id(
    engine: WorkflowSettings,
) -> None:
    recorder = Recorder()
    assistant = register_agent(clerk(recorder, approval=True))
    # A plain (non-durable) paused run of the same agent, session "X", saved by the core API.
    plain = RunStateStore(agent=assistant, session_id="X", url=engine.url)
    paused = await run_agent(assistant, "Refund 7")
    assert paused.interruptions
    saved = await plain.save(paused.to_state())
    calls_before = recorder.starts("model:0")

    with pytest.raises(WorkflowConfigurationError, match="'X'") as refused:
        await asyncio.wait_for(
            run_agent_workflow(agent=assistant, input_items="Refund 7", workflow_id="X"), 30
        )

    assert "RunStateStore" in str(refused.value)
    with pytest.raises(WorkflowConfigurationError, match="'X'"):
        await queue_agent_workflow(agent=assistant, input_items="Refund 7", workflow_id="X")
    assert recorder.starts("model:0") == calls_before  # refused before any model call
    kept = await plain.info()
    assert kept is not None and kept.version == saved.version and kept.id == saved.id
