"""Durable agent runs on DBOS: the user's scenario first, then configuration and bad input.

Real DBOS on a real SQLite file or PostgreSQL database per test; scripted models.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from agents import (
    Agent,
    GuardrailFunctionOutput,
    RunContextWrapper,
    SQLiteSession,
    handoff,
    output_guardrail,
)
from agents.testing import ScriptedModel, assistant_message, function_call
from dbos import DBOS
from pydantic import BaseModel
from workflow_support import FINAL_ANSWER, Recorder, clerk

from timestep import RunStateStore
from timestep.errors import (
    AgentNotRegisteredError,
    SessionNotDurableError,
    WorkflowConfigurationError,
    WorkflowNotLaunchedError,
    WorkflowRunError,
)
from timestep.workflows import (
    DEFAULT_APPLICATION_VERSION,
    WorkflowSettings,
    configure_dbos,
    dbos_settings,
    default_executor_id,
    ensure_dbos_launched,
    get_agent_workflow,
    get_registered_agent,
    queue_agent_workflow,
    register_agent,
    register_session_factory,
    run_agent_workflow,
    shutdown_dbos,
    system_database_url,
)


async def test_a_durable_run_checkpoints_every_model_and_tool_call_and_keeps_the_session(
    engine: WorkflowSettings, tmp_path: Path
) -> None:
    recorder = Recorder()
    assistant = register_agent(clerk(recorder))
    session = SQLiteSession("customer-1", tmp_path / "chat.db")

    result = await run_agent_workflow(
        agent=assistant,
        input_items="Where are orders 7 and 8?",
        session=session,
        workflow_id="order-7",
    )

    assert result.final_output == FINAL_ANSWER
    assert result.workflow_id == "order-7" and result.last_agent == "Clerk"
    assert result.session_id == "customer-1"
    # Each model call, tool call and guardrail check is one checkpointed step, in order.
    steps = [s["function_name"] for s in await DBOS.list_workflow_steps_async("order-7")]
    assert steps.count("timestep.model") == 3
    assert steps.count("timestep.tool:lookup") == 2 and steps.count("timestep.tool:notify") == 1
    assert steps.count("timestep.input_guardrail:screen") == 1
    assert steps[0] == "timestep.session.load" and steps[-1] == "timestep.session.save"
    # The session holds the run's items once. The run never paused, so no run state was
    # stored: its outcome is the workflow's result.
    assert await session.get_items() == result.new_items
    assert result.new_items[0] == {"content": "Where are orders 7 and 8?", "role": "user"}
    stored = await RunStateStore(agent=assistant, session_id="order-7", url=engine.url).info()
    assert stored is None


async def test_the_same_workflow_id_returns_the_same_run_without_calling_anything_again(
    engine: WorkflowSettings,
) -> None:
    recorder = Recorder()
    assistant = register_agent(clerk(recorder))

    first = await run_agent_workflow(agent=assistant, input_items="hi", workflow_id="once")
    calls = len(recorder.events)
    again = await run_agent_workflow(agent=assistant, input_items="other", workflow_id="once")

    assert again == first
    assert len(recorder.events) == calls
    handle = await get_agent_workflow("once")
    assert await handle.get_status() == "SUCCESS"
    assert (await handle.get_result()).final_output == FINAL_ANSWER


async def test_the_session_history_is_the_next_runs_context(
    sqlite_engine: WorkflowSettings, tmp_path: Path
) -> None:
    model = ScriptedModel([[assistant_message("Hello Ada.")], [assistant_message("Ada.")]])
    assistant = register_agent(Agent(name="Greeter", model=model))
    session = SQLiteSession("ada", tmp_path / "chat.db")

    await run_agent_workflow(agent=assistant, input_items="I am Ada.", session=session)
    second = await run_agent_workflow(agent=assistant, input_items="Who am I?", session=session)

    assert second.final_output == "Ada."
    sent = model.last_call.input if model.last_call else []
    assert [i.get("content") for i in sent if isinstance(i, dict) and i.get("role") == "user"] == [
        "I am Ada.",
        "Who am I?",
    ]
    assert len(await session.get_items()) == 4


async def test_a_timestep_session_keeps_the_history_next_to_the_workflows(
    engine: WorkflowSettings,
) -> None:
    from timestep.sessions import TimestepSession

    assistant = register_agent(clerk(Recorder()))
    session = TimestepSession("customer-2", url=engine.url)

    # Queued, so it runs on DBOS's own event loop rather than the caller's.
    handle = await queue_agent_workflow(agent=assistant, input_items="Orders?", session=session)
    result = await handle.get_result(polling_interval_sec=0.1)

    assert result.session_id == "customer-2"
    assert await session.get_items() == result.new_items


class Verdict(BaseModel):
    order: str
    shipped: bool


async def test_a_structured_output_comes_back_as_its_type(sqlite_engine: WorkflowSettings) -> None:
    reply = assistant_message('{"order": "7", "shipped": true}')
    assistant = register_agent(
        Agent(name="Checker", model=ScriptedModel([[reply]]), output_type=Verdict)
    )

    result = await run_agent_workflow(agent=assistant, input_items="7?", workflow_id="v-7")

    assert result.final_output == Verdict(order="7", shipped=True)
    stored = await (await get_agent_workflow("v-7")).get_result()
    assert stored.final_output == Verdict(order="7", shipped=True)


async def test_handoffs_and_guardrails_keep_working(sqlite_engine: WorkflowSettings) -> None:
    @output_guardrail
    async def polite(
        context: RunContextWrapper[Any], agent: Agent[Any], output: Any
    ) -> GuardrailFunctionOutput:
        return GuardrailFunctionOutput(output_info=None, tripwire_triggered="rude" in str(output))

    billing = Agent(
        name="Billing",
        model=ScriptedModel([[assistant_message("Refund issued.")]]),
        output_guardrails=[polite],
    )
    shipping = Agent(name="Shipping", model=ScriptedModel([]))
    triage = register_agent(
        Agent(
            name="Triage",
            model=ScriptedModel([[function_call("transfer_to_billing", {}, call_id="h1")]]),
            handoffs=[handoff(billing), shipping],
        )
    )
    shipping.handoffs = [triage]  # a cycle in the graph is fine

    result = await run_agent_workflow(agent=triage, input_items="I want a refund")

    assert result.final_output == "Refund issued." and result.last_agent == "Billing"
    steps = [s["function_name"] for s in await DBOS.list_workflow_steps_async(result.workflow_id)]
    assert "timestep.output_guardrail:polite" in steps


async def test_a_tripped_guardrail_fails_the_workflow_with_a_storable_error(
    sqlite_engine: WorkflowSettings,
) -> None:
    assistant = register_agent(clerk(Recorder()))

    with pytest.raises(WorkflowRunError) as raised:
        await run_agent_workflow(agent=assistant, input_items="forbidden", workflow_id="tripped")

    assert raised.value.error_type == "InputGuardrailTripwireTriggered"
    # Any process reading the stored outcome sees the same error.
    handle = await get_agent_workflow("tripped")
    assert await handle.get_status() == "ERROR"
    with pytest.raises(WorkflowRunError, match="InputGuardrailTripwireTriggered"):
        await handle.get_result()


async def test_a_custom_session_type_works_once_its_factory_is_registered(
    sqlite_engine: WorkflowSettings, tmp_path: Path
) -> None:
    class TicketSession(SQLiteSession):
        pass

    def open_ticket(session_id: str) -> TicketSession:
        return TicketSession(session_id, tmp_path / "tickets.db")

    assistant = register_agent(Agent(name="A", model=ScriptedModel([[assistant_message("ok")]])))
    with pytest.raises(SessionNotDurableError, match="register_session_factory"):
        await run_agent_workflow(agent=assistant, input_items="hi", session=open_ticket("t-1"))

    register_session_factory(TicketSession, open_ticket)
    await run_agent_workflow(agent=assistant, input_items="hi", session=open_ticket("t-1"))

    assert len(await open_ticket("t-1").get_items()) == 2


async def test_a_custom_session_taking_an_idempotency_key_is_written_once_per_run_step(
    sqlite_engine: WorkflowSettings, tmp_path: Path
) -> None:
    keys: list[str | None] = []

    class KeyedTicketSession(SQLiteSession):
        async def add_items(self, items: list[Any], *, idempotency_key: str | None = None) -> None:
            keys.append(idempotency_key)  # a real one would store it with the items
            await super().add_items(items)

    def open_ticket(session_id: str) -> KeyedTicketSession:
        return KeyedTicketSession(session_id, tmp_path / "tickets.db")

    register_session_factory(KeyedTicketSession, open_ticket)
    assistant = register_agent(Agent(name="A", model=ScriptedModel([[assistant_message("ok")]])))
    await run_agent_workflow(
        agent=assistant, input_items="hi", session=open_ticket("t-2"), workflow_id="ticket-2"
    )

    steps = await DBOS.list_workflow_steps_async("ticket-2")
    save = next(s for s in steps if s["function_name"] == "timestep.session.save")
    assert keys == [f"workflow:ticket-2:step:{save['function_id']}"]


# -- configuration ---------------------------------------------------------------------------


def test_dbos_lives_in_the_database_timestep_resolves(timestep_home: Path) -> None:
    try:
        settings = configure_dbos()
        ensure_dbos_launched()
        assert settings.url == f"sqlite+aiosqlite:///{timestep_home / 'timestep.db'}"
        assert settings.system_database_url == f"sqlite:///{timestep_home / 'timestep.db'}"
        assert settings.application_version == DEFAULT_APPLICATION_VERSION
        # No id configured: one of this process's own, so replicas never share one.
        assert settings.executor_id == default_executor_id()
        assert re.fullmatch(r".+-[0-9a-f]{8}", settings.executor_id)
        with sqlite3.connect(timestep_home / "timestep.db") as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert "workflow_status" in tables
    finally:
        shutdown_dbos()


def test_configure_and_launch_are_safe_to_repeat(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIMESTEP_EXECUTOR_ID", "worker-3")
    try:
        first = configure_dbos(sqlite_url)
        assert configure_dbos(sqlite_url) is first and first.executor_id == "worker-3"
        # Before launch, other settings simply replace the first ones.
        second = configure_dbos(sqlite_url, executor_id="worker-4")
        assert dbos_settings() is second
        assert ensure_dbos_launched() is second and ensure_dbos_launched() is second
        assert DBOS.executor_id == "worker-4"
        assert DBOS.application_version == DEFAULT_APPLICATION_VERSION
        with pytest.raises(WorkflowConfigurationError, match="shutdown_dbos"):
            configure_dbos(sqlite_url, executor_id="worker-5")
    finally:
        shutdown_dbos()
        shutdown_dbos()
    assert dbos_settings() is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://app:pw@db:5432/agents", "postgresql://app:pw@db:5432/agents"),
        ("postgresql+asyncpg://app@db/agents", "postgresql://app@db/agents"),
        ("sqlite+aiosqlite:////var/data/t.db", "sqlite:////var/data/t.db"),
    ],
)
def test_the_system_database_url_is_timesteps_url_with_dbos_drivers(
    url: str, expected: str
) -> None:
    assert system_database_url(url) == expected


def test_a_relative_sqlite_path_becomes_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert system_database_url("sqlite:///./t.db") == f"sqlite:///{tmp_path}/t.db"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite:///:memory:", "in memory"),
        ("mysql://db/agents", "PostgreSQL or SQLite"),
        ("not a url", "not a database URL"),
    ],
)
def test_databases_workflows_cannot_use_are_refused(url: str, message: str) -> None:
    with pytest.raises(WorkflowConfigurationError, match=message):
        system_database_url(url)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "Bad Name"}, "3-256 characters"),
        ({"executor_id": " "}, "executor_id"),
        ({"log_levl": "INFO"}, "DBOSConfig keys"),
        ({"system_database_url": "sqlite:///x"}, "url="),
        ({"heartbeat_interval": 0}, "heartbeat_interval=0 is not a positive number"),
        ({"dead_after": 6, "heartbeat_interval": 5}, "at least twice heartbeat_interval"),
    ],
)
def test_bad_configuration_names_the_problem(
    sqlite_url: str, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(WorkflowConfigurationError, match=message):
        configure_dbos(sqlite_url, **kwargs)
    assert dbos_settings() is None


def test_a_bad_heartbeat_setting_in_the_environment_names_the_variable(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIMESTEP_WORKER_DEAD_AFTER", "soon")
    with pytest.raises(WorkflowConfigurationError, match="TIMESTEP_WORKER_DEAD_AFTER='soon'"):
        configure_dbos(sqlite_url)
    assert dbos_settings() is None


def test_an_unreachable_database_fails_the_launch_clearly(timestep_home: Path) -> None:
    from timestep.errors import StorageUnavailableError

    configure_dbos("postgresql://postgres@127.0.0.1:1/nowhere?connect_timeout=1")
    with pytest.raises(StorageUnavailableError, match="Cannot launch durable workflows"):
        ensure_dbos_launched()
    assert dbos_settings() is None


# -- bad input -------------------------------------------------------------------------------


async def test_running_before_launch_says_to_launch(sqlite_url: str) -> None:
    assistant = register_agent(Agent(name="A", model=ScriptedModel([])))
    with pytest.raises(WorkflowNotLaunchedError, match="ensure_dbos_launched"):
        await run_agent_workflow(agent=assistant, input_items="hi")


async def test_an_unregistered_agent_is_refused_by_name(sqlite_engine: WorkflowSettings) -> None:
    stranger = Agent(name="Stranger", model=ScriptedModel([]))
    with pytest.raises(AgentNotRegisteredError, match="register_agent"):
        await run_agent_workflow(agent=stranger, input_items="hi")

    register_agent(Agent(name="Stranger", model=ScriptedModel([])))
    with pytest.raises(AgentNotRegisteredError, match="different agent named 'Stranger'"):
        await run_agent_workflow(agent=stranger, input_items="hi")

    with pytest.raises(AgentNotRegisteredError, match=r"register_agent\(agent\).*registered: "):
        get_registered_agent("Ghost", workflow_id="w-1")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"session": SQLiteSession("s")}, SessionNotDurableError, "in memory"),
        ({"input_items": 42}, WorkflowConfigurationError, "input_items"),
        ({"max_turns": 0}, WorkflowConfigurationError, "max_turns"),
        ({"approval_timeout": -1}, WorkflowConfigurationError, "approval_timeout"),
        ({"context": threading.Lock()}, WorkflowConfigurationError, "picklable"),
        ({"workflow_id": ""}, WorkflowConfigurationError, "workflow_id"),
    ],
)
async def test_bad_run_arguments_name_the_problem_and_start_nothing(
    sqlite_engine: WorkflowSettings, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    assistant = register_agent(Agent(name="A", model=ScriptedModel([])))
    arguments: dict[str, Any] = {"agent": assistant, "input_items": "hi", **kwargs}

    with pytest.raises(error, match=message):
        await run_agent_workflow(**arguments)

    assert await DBOS.list_workflows_async() == []


async def test_a_conversations_session_without_a_factory_is_not_durable(
    sqlite_engine: WorkflowSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agents.memory import OpenAIConversationsSession

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-used")  # the client is built, not called
    agent = register_agent(Agent(name="Clerk", model="gpt-4.1"))
    session = OpenAIConversationsSession()  # its id exists only after its first API call
    with pytest.raises(SessionNotDurableError, match="register_session_factory"):
        await run_agent_workflow(agent=agent, input_items="hi", session=session)
