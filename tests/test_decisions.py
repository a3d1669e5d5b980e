"""Two people decide on one paused run at once: the first decision wins, the tool runs once.

The README's pattern (load, approve or reject, ``run_agent``, save) run by several OS processes
that all loaded the paused run before any of them decided, as two supervisors clicking on one
approvals page do. Decisions on a state loaded from a ``RunStateStore`` are claimed on the row
(compare-and-set on its version) before any tool runs; the loser gets
``DecisionConflictError`` and nothing of its own executes.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from agents import Agent

from scenario import ask_to_delete, ops_agent, paused_run, say
from timestep import (
    DecisionConflictError,
    RunStateStore,
    StateConflictError,
    StateStatus,
    run_agent,
)

Run = Callable[..., dict[str, Any]]


async def paused_ops(
    url: str, *replies: list[object], session_id: str = "t"
) -> tuple[Agent[None], RunStateStore, list[str]]:
    """The ops agent paused on ``delete_file`` and saved; ``replies`` script what follows.
    Returns the agent, the store that saved the pause, and the tool's executions."""
    calls: list[str] = []
    agent = ops_agent(ask_to_delete(), *replies, calls=calls)
    store = RunStateStore(agent=agent, session_id=session_id, url=url)
    await store.save(await run_agent(agent, "clean up /tmp/x"))
    return agent, store, calls


def race(ops_process: Run, url: str, session: str, decisions: list[str], tmp: Path) -> Any:
    """Resume ``session`` in one process per decision, all having loaded it before any
    decides; returns the reports and the tool executions (one line each in the ledger)."""
    barrier, ledger = tmp / "barrier", tmp / "ledger.txt"
    barrier.mkdir()
    ledger.touch()
    flags = ("--ledger", str(ledger), "--together", str(barrier), str(len(decisions)))
    with ThreadPoolExecutor(len(decisions)) as pool:
        reports = list(
            pool.map(
                lambda decision: ops_process(
                    "resume", url, session, decision, *flags, expect_ok=False
                ),
                decisions,
            )
        )
    return reports, ledger.read_text().splitlines()


@pytest.mark.parametrize("decisions", [["approve", "approve"], ["approve", "reject"]])
def test_racing_deciders_run_the_tool_at_most_once_and_the_first_decision_stands(
    ops_process: Run, db_url: str, tmp_path: Path, decisions: list[str]
) -> None:
    ops_process("pause", db_url, "ticket-42")

    reports, executions = race(ops_process, db_url, "ticket-42", decisions, tmp_path)

    assert len(executions) <= 1, f"the tool ran {len(executions)} times: {reports}"
    winners = [r for r in reports if r["returncode"] == 0]
    losers = [r for r in reports if r["returncode"] != 0]
    assert len(winners) == 1 and len(losers) == 1, reports
    winner, loser = winners[0], losers[0]
    # The loser was stopped before anything of its own ran, by a decision conflict (not by a
    # version conflict at save time, after its tool had already run).
    assert loser["error"] == "DecisionConflictError", loser
    assert loser["returncode"] == 3
    won_with = decisions[reports.index(winner)]
    assert executions == (["/tmp/x"] if won_with == "approve" else [])
    assert winner["status"] == "completed"
    # The loser is told what the winner decided, on which call, and when.
    expected = "approved" if won_with == "approve" else "rejected"
    assert f"already {expected}" in loser["message"] and "call-1" in loser["message"]
    assert " at 20" in loser["message"]  # an ISO timestamp


async def test_a_single_decider_keeps_the_three_steps(db_url: str) -> None:
    agent, store, calls = await paused_ops(db_url, say("Deleted."), session_id="ticket-7")

    state = await store.load()
    for item in state.get_interruptions():
        state.approve(item)
    result = await run_agent(agent, state)
    stored = await store.save(result)

    assert calls == ["/tmp/x"] and stored.status == StateStatus.COMPLETED
    # load (1), the claim (2), the save of the result (3): no extra call by the user.
    assert stored.version == 3


async def test_the_result_of_a_claimed_run_saves_with_any_store_of_that_run(
    db_url: str,
) -> None:
    # The store that saved the pause was not the one that loaded it: the result still saves.
    agent, pausing_store, calls = await paused_ops(db_url, say("Deleted."))
    state = await RunStateStore(agent=agent, session_id="t", url=db_url).load()
    state.approve(state.get_interruptions()[0])
    result = await run_agent(agent, state)
    assert (await pausing_store.save(result)).status == StateStatus.COMPLETED
    assert calls == ["/tmp/x"]


async def test_a_decider_who_loads_after_the_claim_is_refused_with_the_winners_decision(
    db_url: str,
) -> None:
    agent, _, calls = await paused_ops(db_url, say("Deleted."))
    first = await RunStateStore(agent=agent, session_id="t", url=db_url).load()
    first.reject(first.get_interruptions()[0], rejection_message="No.")
    await run_agent(agent, first)  # its process dies before saving the result

    late = RunStateStore(agent=agent, session_id="t", url=db_url)
    state = await late.load()
    row = await late.info()
    assert row is not None and row.status == StateStatus.RESUMING
    assert row.interruptions[0]["decision"] == "rejected"
    for item in state.get_interruptions():
        state.approve(item)
    with pytest.raises(DecisionConflictError) as refused:
        await run_agent(agent, state)
    assert refused.value.call_id == "call-1" and refused.value.decision == "rejected"
    assert refused.value.decided_at is not None
    assert "already rejected" in str(refused.value) and "overwrite=True" in str(refused.value)
    assert calls == []


async def test_the_same_loaded_state_runs_its_decisions_once(db_url: str) -> None:
    agent, store, calls = await paused_ops(db_url, say("Deleted."), say("Deleted again."))
    state = await store.load()
    state.approve(state.get_interruptions()[0])
    await run_agent(agent, state)

    with pytest.raises(DecisionConflictError):
        await run_agent(agent, state)
    assert calls == ["/tmp/x"]


async def test_decisions_saved_by_one_process_are_run_by_another(db_url: str) -> None:
    # A web handler records the decision and saves; a worker loads and runs it later.
    agent, store, calls = await paused_ops(db_url, say("Deleted."))
    state = await store.load()
    state.approve(state.get_interruptions()[0])
    await store.save(state)

    worker = RunStateStore(agent=agent, session_id="t", url=db_url)
    resumed = await run_agent(agent, await worker.load())
    assert (await worker.save(resumed)).status == StateStatus.COMPLETED
    assert calls == ["/tmp/x"]


async def test_an_undecided_resume_claims_nothing(db_url: str) -> None:
    agent, result = await paused_run()
    store = RunStateStore(agent=agent, session_id="t", url=db_url)
    await store.save(result)
    again = await run_agent(agent, await store.load())
    assert again.interruptions and (await store.info()).status == StateStatus.INTERRUPTED  # type: ignore[union-attr]


async def test_an_operator_can_release_a_claim_whose_process_died(db_url: str) -> None:
    agent, store, calls = await paused_ops(db_url, say("Deleted."), say("Deleted."))
    state = await store.load()
    state.approve(state.get_interruptions()[0])
    await run_agent(agent, state)  # the claim lands and the tool runs; the process dies

    # The row stays claimed until someone who checked the tool's effect says otherwise.
    operator = RunStateStore(agent=agent, session_id="t", url=db_url)
    with pytest.raises(DecisionConflictError):
        await run_agent(agent, await operator.load())
    await operator.save(await operator.load(), status="interrupted", overwrite=True)
    result = await run_agent(agent, await operator.load())
    assert result.final_output == "Deleted." and calls == ["/tmp/x", "/tmp/x"]


async def test_racing_claims_in_one_process_on_the_file_form(tmp_path: Path) -> None:
    calls: list[str] = []
    agent = ops_agent(ask_to_delete(), say("Deleted."), say("Deleted."), calls=calls)
    path = tmp_path / "state.json"
    await RunStateStore(path, agent).save(await run_agent(agent, "clean up /tmp/x"))
    first, second = RunStateStore(path, agent), RunStateStore(path, agent)
    a, b = await first.load(), await second.load()
    a.approve(a.get_interruptions()[0])
    b.reject(b.get_interruptions()[0])

    await run_agent(agent, a)
    with pytest.raises(DecisionConflictError) as refused:
        await run_agent(agent, b)
    assert isinstance(refused.value, StateConflictError)
    assert refused.value.decision == "approved" and calls == ["/tmp/x"]
