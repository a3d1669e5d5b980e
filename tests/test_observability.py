"""What did this run do, and what did it cost? Answered from the Timestep database, offline.

TIMESTEP_TRACING=db on a real SQLite file and a real PostgreSQL database; scripted models with
known token counts, so stored usage and cost are asserted exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from agents import (
    Agent,
    GuardrailFunctionOutput,
    InputGuardrailTripwireTriggered,
    RunContextWrapper,
    RunHooks,
    Runner,
    TracingProcessor,
    add_trace_processor,
    input_guardrail,
)
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call
from observability_support import ops_tools, stored, tokens, usage_rows

from timestep import RunStateStore, TimestepSession, run_agent
from timestep.observability import (
    active_processor,
    approve,
    flush_tracing,
    reject,
    summarize_usage,
    timeline,
)
from timestep.observability.install import _reset_for_tests
from timestep.testing import ScriptedModelProvider


@pytest.fixture
def tracing_db(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """TIMESTEP_TRACING=db into this test's database; the SDK's processors restored after."""
    monkeypatch.setenv("TIMESTEP_TRACING", "db")
    monkeypatch.setenv("TIMESTEP_DB_URL", db_url)
    monkeypatch.delenv("TIMESTEP_TRACE_PAYLOADS", raising=False)
    yield db_url
    _reset_for_tests()


def ask_to_delete(path: str = "/tmp/x", call_id: str = "call-1") -> list[Any]:
    return [function_call("delete_file", {"path": path}, call_id=call_id)]


async def test_a_paused_and_resumed_run_is_recorded_step_by_step_with_exact_cost(
    tracing_db: str, scripted_provider: ScriptedModelProvider
) -> None:
    ran: list[str] = []
    scripted_provider.script(
        "gpt-4.1-mini",
        [
            ModelStep(output=ask_to_delete(), usage=tokens(1000, 50, cached=200, reasoning=10)),
            ModelStep(output=[assistant_message("Deleted /tmp/x.")], usage=tokens(1200, 30)),
        ],
    )
    agent = Agent(name="Ops", model="scripted/gpt-4.1-mini", tools=ops_tools(ran))
    store = RunStateStore(agent=agent, session_id="ticket-42", url=tracing_db)

    paused = await run_agent(agent, "clean up /tmp/x")
    await store.save(paused)
    state = await store.load()
    approve(state, state.get_interruptions()[0], by="alice@example.com")
    finished = await run_agent(agent, state)
    run = await store.save(finished)
    assert finished.final_output == "Deleted /tmp/x." and ran == ["/tmp/x"]
    assert flush_tracing()

    # gpt-4.1-mini: $0.40 input, $0.10 cached input, $1.60 output per 1M tokens.
    # (800 * 0.40 + 200 * 0.10 + 50 * 1.60) / 1M = $0.00042; (1200 * 0.40 + 30 * 1.60) / 1M.
    assert await usage_rows(tracing_db) == [
        ("Ops", "gpt-4.1-mini", "scripted", 1000, 200, 50, 10, 1050, 420_000, "run"),
        ("Ops", "gpt-4.1-mini", "scripted", 1200, 0, 30, 0, 1230, 528_000, "run"),
    ]
    [by_model] = await summarize_usage(tracing_db, by="model")
    assert (by_model.key, by_model.calls, by_model.total_tokens) == ("gpt-4.1-mini", 2, 2280)
    assert by_model.cost_usd == Decimal("0.000948") and by_model.unpriced_calls == 0

    steps = await timeline(tracing_db, run.id)
    assert [(s.kind, s.agent, s.title) for s in steps] == [
        ("run", "Ops", f"trace {steps[0].trace_id} (Agent workflow)"),
        ("agent", "Ops", "Ops started"),
        ("model", "Ops", "gpt-4.1-mini (scripted)"),
        ("approval", "Ops", 'delete_file({"path":"/tmp/x"}) waits for approval'),
        ("approval", "Ops", "delete_file approved by alice@example.com"),
        ("agent", "Ops", "Ops started"),
        ("tool", "Ops", 'delete_file({"path":"/tmp/x"})'),
        ("model", "Ops", "gpt-4.1-mini (scripted)"),
    ]
    model_calls = [s for s in steps if s.kind == "model"]
    assert model_calls[0].detail == "1000 in (200 cached) / 50 out (10 reasoning), $0.00042"
    assert model_calls[1].data["cost_usd"] == "0.000528"
    assert steps[6].detail == "-> deleted /tmp/x"
    assert steps[4].at is not None and steps[3].at is not None and steps[4].at > steps[3].at
    # The session id finds the same run's steps.
    assert [s.title for s in await timeline(tracing_db, "ticket-42")] == [s.title for s in steps]


async def test_a_streamed_run_is_recorded_like_a_plain_one(
    tracing_db: str, scripted_provider: ScriptedModelProvider
) -> None:
    scripted_provider.script(
        "gpt-4.1",
        [
            ModelStep(
                output=[function_call("look", {"path": "/etc/motd"}, call_id="c1")],
                usage=tokens(300, 20),
            ),
            ModelStep(output=[assistant_message("It is 3 bytes.")], usage=tokens(400, 10)),
        ],
    )
    agent = Agent(name="Reader", model="scripted/gpt-4.1", tools=ops_tools())
    session = TimestepSession("user-7", url=tracing_db)

    result = await run_agent(agent, "how big is /etc/motd?", session=session, stream=True)
    assert result.final_output == "It is 3 bytes."
    assert flush_tracing()

    # gpt-4.1: $2.00 input, $8.00 output per 1M tokens.
    assert await usage_rows(tracing_db) == [
        ("Reader", "gpt-4.1", "scripted", 300, 0, 20, 0, 320, 760_000, "run"),
        ("Reader", "gpt-4.1", "scripted", 400, 0, 10, 0, 410, 880_000, "run"),
    ]
    [trace] = await stored(tracing_db, "traces")
    assert (trace["session_id"], trace["agent_name"]) == ("user-7", "Reader")
    kinds = sorted(row["span_type"] for row in await stored(tracing_db, "spans"))
    assert kinds == ["agent", "function"]  # task and turn spans only frame them
    [by_session] = await summarize_usage(tracing_db, by="session")
    assert (by_session.key, by_session.cost_usd) == ("user-7", Decimal("0.00164"))
    tools = [s for s in await timeline(tracing_db, "user-7") if s.kind == "tool"]
    assert [(t.title, t.detail) for t in tools] == [
        ('look({"path":"/etc/motd"})', "-> /etc/motd is 3 bytes")
    ]


async def test_handoffs_guardrail_trips_and_rejections_are_in_the_timeline(
    tracing_db: str,
) -> None:
    @input_guardrail
    def no_passwords(
        context: RunContextWrapper[Any], agent: Agent[Any], text: Any
    ) -> GuardrailFunctionOutput:
        return GuardrailFunctionOutput(output_info=None, tripwire_triggered="password" in str(text))

    billing = Agent(name="Billing", model=ScriptedModel([[assistant_message("Refunded.")]]))
    triage = Agent(
        name="Triage",
        model=ScriptedModel([[function_call("transfer_to_billing", {}, call_id="h1")]]),
        handoffs=[billing],
        input_guardrails=[no_passwords],
    )
    assert (await run_agent(triage, "refund order 7")).final_output == "Refunded."
    guarded = Agent(
        name="Guarded",
        model=ScriptedModel([[assistant_message("never")]]),
        input_guardrails=[no_passwords],
    )
    with pytest.raises(InputGuardrailTripwireTriggered):
        await run_agent(guarded, "my password is hunter2")
    ops = Agent(
        name="Ops",
        model=ScriptedModel([ask_to_delete(), [assistant_message("Left it.")]]),
        tools=ops_tools(),
    )
    paused = await run_agent(ops, "clean up")
    state = paused.to_state()
    reject(state, state.get_interruptions()[0], by="bob", rejection_message="Not today.")
    assert (await run_agent(ops, state)).final_output == "Left it."
    assert flush_tracing()

    titles = []
    for trace in await stored(tracing_db, "traces"):
        titles += [(s.kind, s.title) for s in await timeline(tracing_db, trace["trace_id"])]
    assert ("handoff", "handoff Triage -> Billing") in titles
    assert ("guardrail", "guardrail no_passwords passed") in titles
    assert ("guardrail", "guardrail no_passwords TRIPPED") in titles
    assert ("error", "Guardrail tripwire triggered") in titles
    assert ("approval", "delete_file rejected by bob") in titles
    assert not any(kind == "tool" and "delete_file" in title for kind, title in titles)
    # Scripted model instances have no name: their calls are counted, their cost unknown.
    priced = {row[1]: row[8] for row in await usage_rows(tracing_db)}
    assert priced == {None: None}


async def test_a_model_without_a_price_costs_nothing_made_up(
    tracing_db: str, scripted_provider: ScriptedModelProvider
) -> None:
    scripted_provider.script(
        "my-local-llama", [ModelStep(output=[assistant_message("hi")], usage=tokens(10, 5))]
    )
    await run_agent(Agent(name="Local", model="scripted/my-local-llama"), "hi")
    assert flush_tracing()

    assert await usage_rows(tracing_db) == [
        ("Local", "my-local-llama", "scripted", 10, 0, 5, 0, 15, None, "run")
    ]
    [group] = await summarize_usage(tracing_db, by="agent")
    assert (group.key, group.cost_usd, group.unpriced_calls) == ("Local", None, 1)
    [trace] = await stored(tracing_db, "traces")
    [step] = [s for s in await timeline(tracing_db, trace["trace_id"]) if s.kind == "model"]
    assert step.detail == "10 in (0 cached) / 5 out (0 reasoning), ?"


async def test_the_callers_own_hooks_still_see_every_callback(tracing_db: str) -> None:
    seen: list[str] = []

    class Audit(RunHooks[Any]):
        async def on_agent_start(self, context: Any, agent: Agent[Any]) -> None:
            seen.append(f"agent {agent.name}")

        async def on_llm_end(self, context: Any, agent: Agent[Any], response: Any) -> None:
            seen.append(f"llm {response.usage.output_tokens}")

        async def on_tool_end(self, context: Any, agent: Any, tool: Any, result: str) -> None:
            seen.append(f"tool {result}")

    model = ScriptedModel(
        [
            ModelStep(
                output=[function_call("look", {"path": "/a"}, call_id="c1")], usage=tokens(9, 3)
            ),
            ModelStep(output=[assistant_message("ok")], usage=tokens(9, 4)),
        ]
    )
    agent = Agent(name="Audited", model=model, tools=ops_tools())
    await run_agent(agent, "look at /a", hooks=Audit(), stream=True)
    assert flush_tracing()

    assert seen == ["agent Audited", "llm 3", "tool /a is 3 bytes", "llm 4"]
    assert [row[7] for row in await usage_rows(tracing_db)] == [12, 13]


async def test_one_processor_per_process_and_nothing_recorded_when_off(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIMESTEP_DB_URL", db_url)
    await run_agent(Agent(name="Quiet", model=ScriptedModel([[assistant_message("a")]])), "hi")
    assert active_processor() is None
    assert await stored(db_url, "spans") == [] and await usage_rows(db_url) == []

    monkeypatch.setenv("TIMESTEP_TRACING", "db")
    try:
        processors = set()
        for reply in ("b", "c", "d"):
            agent = Agent(name="Busy", model=ScriptedModel([[assistant_message(reply)]]))
            await run_agent(agent, "hi")
            processors.add(id(active_processor()))
        assert len(processors) == 1
        assert flush_tracing()
        assert len(await stored(db_url, "traces")) == 3
    finally:
        _reset_for_tests()


async def test_db_mode_keeps_traces_on_the_machine_and_all_adds_to_the_sdks(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Collector(TracingProcessor):
        """Stands in for any exporter already installed, such as the SDK's own."""

        def __init__(self) -> None:
            self.spans: list[str] = []

        def on_trace_start(self, trace: Any) -> None: ...
        def on_trace_end(self, trace: Any) -> None: ...
        def on_span_start(self, span: Any) -> None: ...
        def on_span_end(self, span: Any) -> None:
            self.spans.append(span.span_data.type)

        def shutdown(self) -> None: ...
        def force_flush(self) -> None: ...

    exporter = Collector()
    add_trace_processor(exporter)
    monkeypatch.setenv("TIMESTEP_DB_URL", sqlite_url)
    try:
        monkeypatch.setenv("TIMESTEP_TRACING", "all")
        await run_agent(Agent(name="A", model=ScriptedModel([[assistant_message("x")]])), "hi")
        assert "agent" in exporter.spans
        exported = len(exporter.spans)

        monkeypatch.setenv("TIMESTEP_TRACING", "db")
        await run_agent(Agent(name="B", model=ScriptedModel([[assistant_message("y")]])), "hi")
        assert len(exporter.spans) == exported  # replaced: nothing else sees the run
        assert flush_tracing()
        agents = sorted(
            r["name"] for r in await stored(sqlite_url, "spans") if r["span_type"] == "agent"
        )
        assert agents == ["A", "B"]
    finally:
        _reset_for_tests()


async def test_tracing_never_breaks_a_run_when_the_database_is_down(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TIMESTEP_TRACING", "db")
    monkeypatch.setenv("TIMESTEP_DB_URL", "postgresql://postgres@127.0.0.1:1/nowhere")
    try:
        agent = Agent(name="Ops", model=ScriptedModel([[assistant_message("still works")]]))
        assert (await run_agent(agent, "hi")).final_output == "still works"
        assert flush_tracing()
        processor = active_processor()
        assert processor is not None and processor.failed_batches >= 1
        assert "Cannot reach the database" in str(processor.last_error)
        assert "Timestep tracing could not write" in caplog.text
    finally:
        _reset_for_tests()


async def test_usage_of_runs_outside_run_agent_comes_from_the_sdks_model_spans(
    tracing_db: str,
) -> None:
    from agents import RunConfig
    from agents.models.openai_responses import OpenAIResponsesModel
    from observability_support import fake_responses_api, response_body
    from openai import AsyncOpenAI

    from timestep.observability import configure_tracing

    reply = response_body(
        "Hello.",
        {
            "input_tokens": 500,
            "input_tokens_details": {"cached_tokens": 100},
            "output_tokens": 40,
            "output_tokens_details": {"reasoning_tokens": 8},
            "total_tokens": 540,
        },
        model="gpt-4.1-2025-04-14",
    )
    configure_tracing()  # what a process using Runner.run directly does once
    with fake_responses_api([reply]) as (base_url, requests):
        client = AsyncOpenAI(base_url=base_url, api_key="sk-test-not-a-real-key-123")
        model = OpenAIResponsesModel(model="gpt-4.1", openai_client=client)
        result = await Runner.run(
            Agent(name="Greeter", model=model), "say hello", run_config=RunConfig()
        )
    assert result.final_output == "Hello." and len(requests) == 1
    assert flush_tracing()

    # A dated snapshot costs what gpt-4.1 costs: (400 * 2.00 + 100 * 0.50 + 40 * 8.00) / 1M.
    assert await usage_rows(tracing_db) == [
        ("Greeter", "gpt-4.1-2025-04-14", "openai", 500, 100, 40, 8, 540, 1_170_000, "span")
    ]
    spans = await stored(tracing_db, "spans")
    assert "sk-test-not-a-real-key-123" not in repr(spans)


async def test_an_agent_run_as_a_tool_is_costed_once_under_its_own_name(tracing_db: str) -> None:
    # The nested run has no run_agent hooks: its call is costed from the SDK's span, while the
    # outer agent's calls are costed by the hooks only (their spans add nothing).
    from agents.models.openai_responses import OpenAIResponsesModel
    from observability_support import fake_responses_api, response_body
    from openai import AsyncOpenAI

    def usage(tokens_in: int, tokens_out: int) -> dict[str, Any]:
        return {
            "input_tokens": tokens_in,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": tokens_out,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": tokens_in + tokens_out,
        }

    ask = response_body("", usage(100, 10), model="gpt-4.1")
    ask["output"] = [
        {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "call_1",
            "name": "translate",
            "arguments": '{"input": "hola"}',
            "status": "completed",
        }
    ]
    replies = [
        ask,
        response_body("hello", usage(20, 2), model="gpt-4.1-mini"),
        response_body("It means hello.", usage(130, 5), model="gpt-4.1"),
    ]
    with fake_responses_api(replies) as (base_url, requests):
        client = AsyncOpenAI(base_url=base_url, api_key="sk-test-not-a-real-key-123")
        translator = Agent(
            name="Translator",
            model=OpenAIResponsesModel(model="gpt-4.1-mini", openai_client=client),
        )
        lead = Agent(
            name="Lead",
            model=OpenAIResponsesModel(model="gpt-4.1", openai_client=client),
            tools=[translator.as_tool("translate", "Translate to English.")],
        )
        result = await run_agent(lead, "What does hola mean?")
    assert result.final_output == "It means hello." and len(requests) == 3
    assert flush_tracing()

    rows = await usage_rows(tracing_db)
    assert sorted((r[0], r[3], r[5], r[9]) for r in rows) == [
        ("Lead", 100, 10, "run"),
        ("Lead", 130, 5, "run"),
        ("Translator", 20, 2, "span"),
    ]
