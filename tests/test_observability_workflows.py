"""A durable workflow run is traced too, and its trace is linked to its workflow id.

Durable runs apply ``TIMESTEP_TRACING`` in the worker as ``run_agent`` does: ``db`` records
their spans, model usage and approval decisions (with who decided) in the Timestep database.
Real DBOS on a real SQLite file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from workflow_support import FINAL_ANSWER, Recorder, clerk, launched, parked

from timestep.observability import configure_tracing, flush_tracing, summarize_usage, timeline
from timestep.observability.install import _reset_for_tests
from timestep.workflows import (
    WorkflowSettings,
    approve_workflow,
    register_agent,
    run_agent_workflow,
)


@pytest.fixture
def engine(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[WorkflowSettings]:
    monkeypatch.setenv("TIMESTEP_TRACING", "all")
    monkeypatch.setenv("TIMESTEP_DB_URL", sqlite_url)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with launched(sqlite_url) as settings:
        yield settings
    _reset_for_tests()


async def test_a_durable_run_is_traced_and_found_by_its_workflow_id(
    engine: WorkflowSettings,
) -> None:
    configure_tracing()
    assistant = register_agent(clerk(Recorder()))

    result = await run_agent_workflow(
        agent=assistant, input_items="Where are orders 7 and 8?", workflow_id="order-7"
    )
    assert result.final_output == FINAL_ANSWER
    assert flush_tracing()

    steps = await timeline(engine.url, "order-7")
    [run] = [s for s in steps if s.kind == "run"]
    assert run.data["workflow_id"] == "order-7" and run.data["session_id"] == "order-7"
    assert [s.title for s in steps if s.kind == "guardrail"] == ["guardrail screen passed"]
    # The two lookups run concurrently: either may start first.
    assert sorted((s.title, s.detail) for s in steps if s.kind == "tool") == [
        ('lookup({"order":"7"})', "-> order 7: shipped"),
        ('lookup({"order":"8"})', "-> order 8: shipped"),
        ('notify({"text":"7 and 8 shipped"})', "-> sent"),
    ]
    assert [s.title for s in steps if s.kind == "agent"] == ["Clerk started"]


@pytest.fixture
def db_tracing_engine(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[WorkflowSettings]:
    monkeypatch.setenv("TIMESTEP_TRACING", "db")
    monkeypatch.setenv("TIMESTEP_DB_URL", sqlite_url)
    with launched(sqlite_url) as settings:
        yield settings
    _reset_for_tests()


async def test_in_db_mode_a_durable_run_records_its_usage_and_who_approved(
    db_tracing_engine: WorkflowSettings,
) -> None:
    # No configure_tracing() here: the worker applies TIMESTEP_TRACING itself.
    assistant = register_agent(clerk(Recorder(), approval=True))
    running = asyncio.create_task(
        run_agent_workflow(agent=assistant, input_items="Refund 7", workflow_id="o-7")
    )
    await parked("o-7")
    await approve_workflow("o-7", by="ana@example.com")
    assert (await running).final_output == FINAL_ANSWER
    assert flush_tracing()

    steps = await timeline(db_tracing_engine.url, "o-7")
    approvals = [s.title for s in steps if s.kind == "approval"]
    assert approvals == [
        'refund({"order":"7"}) waits for approval',
        "refund approved by ana@example.com",
    ]
    assert len([s for s in steps if s.kind == "model"]) == 3
    [total] = await summarize_usage(db_tracing_engine.url, by="agent", workflow="o-7")
    assert (total.key, total.calls) == ("Clerk", 3)
