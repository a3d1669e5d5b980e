"""Identifiers are checked before anything happens, the same way on SQLite and PostgreSQL.

A workflow id, queue name, de-duplication id, session id or agent name that a database column
cannot hold (too long, a NUL byte, a lone surrogate) is refused with a ``TimestepError`` that
names it, before any model call or write, rather than failing later (when the run parks) or
only on one backend.
"""

from __future__ import annotations

from typing import Any

import pytest
from agents import Agent
from agents.testing import ScriptedModel
from dbos import DBOS

from scenario import paused_run
from timestep import (
    AgentDefinitionError,
    ConfigurationError,
    RunStateStore,
    save_agent,
)
from timestep.errors import WorkflowConfigurationError
from timestep.workflows import (
    WorkflowSettings,
    queue_agent_workflow,
    register_agent,
    register_agent_queue,
    run_agent_workflow,
)

BAD = {
    "too long": "w" * 300,
    "NUL": "order\x007",
    "lone surrogate": "order-\ud800",
}
"""Text no identifier column of either backend takes as given."""


@pytest.mark.parametrize("problem", list(BAD))
async def test_a_workflow_id_the_database_cannot_hold_is_refused_before_the_model_is_called(
    engine: WorkflowSettings, problem: str
) -> None:
    agent = register_agent(Agent(name="A", model=ScriptedModel([])))  # any call would fail
    with pytest.raises(WorkflowConfigurationError, match="workflow_id"):
        await run_agent_workflow(agent=agent, input_items="hi", workflow_id=BAD[problem])
    with pytest.raises(WorkflowConfigurationError, match="workflow_id"):
        await queue_agent_workflow(agent=agent, input_items="hi", workflow_id=BAD[problem])
    assert await DBOS.list_workflows_async() == []


@pytest.mark.parametrize("problem", list(BAD))
@pytest.mark.parametrize("field", ["queue", "deduplication_id"])
async def test_a_queue_name_or_deduplication_id_the_database_cannot_hold_is_refused(
    engine: WorkflowSettings, problem: str, field: str
) -> None:
    agent = register_agent(Agent(name="A", model=ScriptedModel([])))
    arguments: dict[str, Any] = {"agent": agent, "input_items": "hi", field: BAD[problem]}
    with pytest.raises(WorkflowConfigurationError, match=field):
        await queue_agent_workflow(**arguments)
    if field == "queue":
        with pytest.raises(WorkflowConfigurationError, match="queue"):
            await register_agent_queue(BAD[problem], concurrency=1)
    assert await DBOS.list_workflows_async() == []


@pytest.mark.parametrize("problem", list(BAD))
async def test_an_agent_name_the_database_cannot_hold_is_refused_on_every_backend(
    db_url: str, problem: str
) -> None:
    agent, _ = await paused_run()
    agent.name = BAD[problem]
    with pytest.raises(ConfigurationError, match="agent name"):
        RunStateStore(agent=agent, session_id="t", url=db_url)
    with pytest.raises(AgentDefinitionError, match="agent name"):
        await save_agent(Agent(name=BAD[problem], model="gpt-4.1"), url=db_url)
    with pytest.raises(WorkflowConfigurationError, match="agent name"):
        register_agent(Agent(name=BAD[problem], model="gpt-4.1"))
