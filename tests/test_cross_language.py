"""Pause in Python, resume in TypeScript, and the reverse: the real JS Agents SDK in Node
(tests/js) against the same PostgreSQL database as Python's RunStateStore.

The personal assistant (tests/interop_assistant.py, tests/js/personal-assistant.mjs) hands a
weather question to a weather agent whose get_weather tool needs approval for Berkeley. Python
steps run in the test process; every JS step is its own ``node tests/js/step.mjs`` process.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from interop_assistant import (
    ASK_BERKELEY,
    FIXTURES,
    HANDOFF,
    QUESTION,
    SUNNY,
    call,
    js_fixture,
    personal_assistant,
    resume,
    say,
    tool_outputs_seen,
)
from js_steps import assistant_step, js_step, require_js_harness
from subprocesses import run_python
from timestep import RunStateStore, StateIntegrityError, StateStatus, run_agent
from timestep.interop import translate
from timestep.interop.fingerprints import js_fingerprint
from timestep.storage import get_backend

REFUSED = [say("I may not check Berkeley's weather.")]
REJECTION = "Not allowed by the operator."
BERKELEY = '{"city":"Berkeley"}'


@pytest.fixture(autouse=True)
def _js_harness() -> None:
    """These tests need Node and tests/js/node_modules; without them they fail, never skip."""
    require_js_harness()


@pytest.fixture
async def database(postgres_url: str) -> str:
    """A fresh PostgreSQL database with Timestep's tables, which JS programs read and write."""
    await get_backend(postgres_url).list(limit=1)  # the first use creates the tables
    return postgres_url


@pytest.fixture
def session() -> str:
    return f"trip-{uuid.uuid4().hex[:8]}"


def _reader(url: str, session: str) -> RunStateStore:
    """A store for a process that only reads the run (no model replies scripted)."""
    assistant, _ = personal_assistant({}, [])
    return RunStateStore(agent=assistant, session_id=session, url=url)


def _history(state_json: dict[str, Any]) -> list[tuple[str, str]]:
    """The run's items as (kind, gist), read from a Python state."""
    shown = []
    for item in state_json["generated_items"]:
        raw = item["raw_item"]
        gist = raw.get("name") or raw.get("output") or raw["content"][0]["text"]
        shown.append((item["type"].removesuffix("_item"), str(gist)))
    return shown


@pytest.mark.parametrize("decision", ["approve", "reject"])
async def test_python_pauses_typescript_decides_and_finishes_python_reads_the_history(
    database: str, session: str, decision: str
) -> None:
    ran_in_python: list[str] = []
    assistant, _ = personal_assistant(
        {"Assistant": [HANDOFF], "Weather": [ASK_BERKELEY]}, ran_in_python
    )
    store = RunStateStore(agent=assistant, session_id=session, url=database)
    paused = await store.save(await run_agent(assistant, QUESTION))
    assert paused.status == StateStatus.INTERRUPTED and paused.portable_sdk == "js"
    assert paused.portable_state is not None and paused.portable_error is None

    approve = decision == "approve"
    js = assistant_step(
        "resume",
        {"Weather": [SUNNY if approve else REFUSED]},
        "--url",
        database,
        "--session",
        session,
        "--decision",
        decision,
    )
    assert js["pending"] == [{"tool": "get_weather", "arguments": BERKELEY}]
    assert js["tool_calls"] == (["Berkeley"] if approve else [])
    assert js["tool_outputs_seen_by_model"] == (
        ["Sunny, 21C in Berkeley"] if approve else [REJECTION]
    )
    assert js["final_output"] == (SUNNY if approve else REFUSED)[0]["say"]
    assert (js["status"], js["version"]) == ("completed", 2)

    reader = _reader(database, session)
    row = await reader.info()
    assert row is not None and (row.sdk, row.status) == ("js", StateStatus.COMPLETED)
    finished = (await reader.load()).to_json()
    assert _history(finished) == [
        ("handoff_call", "transfer_to_weather"),
        ("handoff_output", '{"assistant": "Weather"}'),  # as Python wrote it
        ("tool_call", "get_weather"),
        ("tool_call_output", "Sunny, 21C in Berkeley" if approve else REJECTION),
        ("message_output", js["final_output"]),
    ]
    assert finished["current_agent"] == {"name": "Weather"}
    assert finished["current_turn"] == 3 and finished["max_turns"] == 10
    assert [r["guardrail"]["name"] for r in finished["input_guardrail_results"]] == ["polite"]
    assert [r["guardrail"]["name"] for r in finished["output_guardrail_results"]] == ["no_secrets"]
    assert finished["context"]["usage"]["requests"] == 3
    assert ran_in_python == []


@pytest.mark.parametrize("decision", ["approve", "reject"])
async def test_typescript_pauses_python_decides_and_finishes(
    database: str, session: str, decision: str
) -> None:
    js = assistant_step(
        "pause",
        {"Assistant": [HANDOFF], "Weather": [ASK_BERKELEY]},
        "--url",
        database,
        "--session",
        session,
    )
    assert js["interruptions"] == [{"tool": "get_weather", "arguments": BERKELEY}]
    assert (js["status"], js["version"], js["tool_calls"]) == ("interrupted", 1, [])

    approve = decision == "approve"
    ran: list[str] = []
    assistant, weather_model = personal_assistant({"Weather": [SUNNY if approve else REFUSED]}, ran)
    store = RunStateStore(agent=assistant, session_id=session, url=database)
    state = await store.load()
    pending = state.get_interruptions()
    assert [(i.tool_name, i.arguments) for i in pending] == [("get_weather", BERKELEY)]
    for item in pending:
        state.approve(item) if approve else state.reject(item, rejection_message=REJECTION)
    result = await run_agent(assistant, state)

    assert result.final_output == (SUNNY if approve else REFUSED)[0]["say"]
    assert ran == (["Berkeley"] if approve else [])
    assert tool_outputs_seen(weather_model) == (
        ["Sunny, 21C in Berkeley"] if approve else [REJECTION]
    )
    assert [r.guardrail.get_name() for r in result.output_guardrail_results] == ["no_secrets"]
    stored = await store.save(result)
    # Version 2 is the claim of the decision, written before the tool ran.
    assert (stored.sdk, stored.status, stored.version) == ("python", StateStatus.COMPLETED, 3)


async def test_a_second_approval_ping_pongs_python_typescript_python(
    database: str, session: str
) -> None:
    first = [call("get_weather", {"city": "Berkeley"}, "call-berk")]
    again = [call("get_weather", {"city": "Berkeley"}, "call-berk-2")]
    ran_in_python: list[str] = []
    assistant, _ = personal_assistant({"Assistant": [HANDOFF], "Weather": [first]}, ran_in_python)
    await RunStateStore(agent=assistant, session_id=session, url=database).save(
        await run_agent(assistant, QUESTION)
    )

    js = assistant_step("resume", {"Weather": [again]}, "--url", database, "--session", session)
    assert js["tool_calls"] == ["Berkeley"]
    assert js["interruptions"] == [{"tool": "get_weather", "arguments": BERKELEY}]
    assert (js["status"], js["version"]) == ("interrupted", 2)

    assistant, weather_model = personal_assistant({"Weather": [SUNNY]}, ran_in_python)
    store = RunStateStore(agent=assistant, session_id=session, url=database)
    state = await store.load()
    pending = state.get_interruptions()
    assert [i.call_id for i in pending] == ["call-berk-2"]
    state.approve(pending[0])
    result = await run_agent(assistant, state)
    assert result.final_output == SUNNY[0]["say"]
    assert ran_in_python == ["Berkeley"]  # only the second call; the first ran in Node
    assert tool_outputs_seen(weather_model) == ["Sunny, 21C in Berkeley"] * 2
    assert (await store.save(result)).version == 4  # 3: the claim of the decision


@pytest.mark.parametrize("paused_in", ["python", "typescript"])
async def test_a_tool_that_ran_before_the_pause_never_runs_again(
    database: str, session: str, paused_in: str
) -> None:
    both = [
        call("get_weather", {"city": "Oakland"}, "call-oak"),
        call("get_weather", {"city": "Berkeley"}, "call-berk"),
    ]
    seen = ["Sunny, 21C in Oakland", "Sunny, 21C in Berkeley"]
    if paused_in == "python":
        ran: list[str] = []
        assistant, _ = personal_assistant({"Assistant": [HANDOFF], "Weather": [both]}, ran)
        await RunStateStore(agent=assistant, session_id=session, url=database).save(
            await run_agent(assistant, QUESTION)
        )
        assert ran == ["Oakland"]
        js = assistant_step("resume", {"Weather": [SUNNY]}, "--url", database, "--session", session)
        assert js["tool_calls"] == ["Berkeley"]
        assert js["tool_outputs_seen_by_model"] == seen
        return
    js = assistant_step(
        "pause",
        {"Assistant": [HANDOFF], "Weather": [both]},
        "--url",
        database,
        "--session",
        session,
    )
    assert js["tool_calls"] == ["Oakland"]
    ran = []
    assistant, weather_model = personal_assistant({"Weather": [SUNNY]}, ran)
    state = await RunStateStore(agent=assistant, session_id=session, url=database).load()
    for item in state.get_interruptions():
        state.approve(item)
    result = await run_agent(assistant, state)
    assert ran == ["Berkeley"]
    assert tool_outputs_seen(weather_model) == seen
    assert result.final_output == SUNNY[0]["say"]


async def test_a_decision_saved_in_one_language_is_honoured_in_the_other(
    database: str, session: str
) -> None:
    # TypeScript pauses and rejects, saving without resuming; Python resumes as decided.
    replies = {"Assistant": [HANDOFF], "Weather": [ASK_BERKELEY]}
    assistant_step("pause", replies, "--url", database, "--session", session)
    decided = assistant_step(
        "decide", {}, "--url", database, "--session", session, "--decision", "reject"
    )
    assert (decided["status"], decided["version"]) == ("interrupted", 2)
    ran: list[str] = []
    assistant, weather_model = personal_assistant({"Weather": [REFUSED]}, ran)
    store = RunStateStore(agent=assistant, session_id=session, url=database)
    result = await run_agent(assistant, await store.load())
    assert (ran, tool_outputs_seen(weather_model)) == ([], [REJECTION])

    # Python pauses and approves, saving without resuming; TypeScript resumes as decided.
    again = f"{session}-2"
    assistant, _ = personal_assistant(replies, ran)
    store = RunStateStore(agent=assistant, session_id=again, url=database)
    await store.save(await run_agent(assistant, QUESTION))
    state = await store.load()
    state.approve(state.get_interruptions()[0])
    await store.save(state)
    js = assistant_step(
        "resume", {"Weather": [SUNNY]}, "--url", database, "--session", again, "--decision", "none"
    )
    assert (js["tool_calls"], js["final_output"], js["version"]) == (
        ["Berkeley"],
        SUNNY[0]["say"],
        3,
    )
    assert result.final_output == REFUSED[0]["say"]


async def test_round_trip_through_the_js_sdk_resumes_like_the_original(tmp_path: Path) -> None:
    """py -> js -> (JS SDK fromString/toString) -> py resumes exactly like the original."""
    scenarios = {
        "one call": [ASK_BERKELEY],
        "one ran first": [
            [
                call("get_weather", {"city": "Oakland"}, "call-oak"),
                call("get_weather", {"city": "Berkeley"}, "call-berk"),
            ]
        ],
        "unicode call id": [[call("get_weather", {"city": "Berkeley"}, "call-ü-1")]],
    }
    originals = {}
    for name, weather in scenarios.items():
        assistant, _ = personal_assistant({"Assistant": [HANDOFF], "Weather": weather}, [])
        originals[name] = (await run_agent(assistant, QUESTION)).to_state().to_json()
    sent, received = tmp_path / "states.json", tmp_path / "back.json"
    sent.write_text(
        json.dumps([translate(s, source="python", target="js") for s in originals.values()])
    )
    assert js_step("step.mjs", "reserialize", "--file", str(sent), "--out", str(received)) == {
        "states": len(scenarios),
        "returncode": 0,
    }
    rewritten = json.loads(received.read_text())

    for (name, original), js_state in zip(originals.items(), rewritten, strict=True):
        back = translate(js_state, source="js", target="python")
        assert await resume(original) == await resume(back), name


async def test_the_js_fixtures_are_what_the_pinned_js_sdk_writes(
    database: str, session: str
) -> None:
    """tests/fixtures/js_*.json feed the Node-free tests; they must match the pinned SDK.

    After upgrading @openai/agents, refresh them with TIMESTEP_UPDATE_FIXTURES=1.
    """
    oakland_then_berkeley = [
        call("get_weather", {"city": "Oakland"}, "call-oak"),
        call("get_weather", {"city": "Berkeley"}, "call-berk"),
    ]
    steps = [
        (
            "js_paused_after_oakland",
            "pause",
            {"Assistant": [HANDOFF], "Weather": [oakland_then_berkeley]},
        ),
        ("js_finished_after_reject", "resume", {"Weather": [SUNNY]}),
    ]
    for name, phase, replies in steps:
        assistant_step(
            phase, replies, "--url", database, "--session", session, "--decision", "reject"
        )
        row = await get_backend(database).load("Assistant", session)
        assert row is not None
        written = json.loads(row.state)
        if os.environ.get("TIMESTEP_UPDATE_FIXTURES") == "1":
            (FIXTURES / f"{name}.json").write_text(json.dumps(written, indent=1) + "\n")
        assert written == js_fixture(name), f"{name}: rerun with TIMESTEP_UPDATE_FIXTURES=1"


def test_timestep_computes_the_js_sdks_own_fingerprints() -> None:
    arguments = [
        "{}",
        BERKELEY,
        '{"n": 1.50, "m": -0.0, "big": 12345678901234567890, "e": 1e-7, "neg": -12.300e+2}',
        '{"z": [1, {"b": true, "a": null}], "s": "\\u0000openai-agents-json:x"}',
        '{"é": 1, "e": 2, "Z": 3, "\\ud83d\\ude00": 4}',
        '{"lone": "\\ud83d", "\\udfff": 1, "\\uffff": 2}',
        "not json",
        '{"a": 1} trailing',
    ]
    tool = '["bare","get_weather"]'
    theirs = js_step("fingerprints.mjs", json.dumps([tool, arguments]))["fingerprints"]
    ours = [js_fingerprint(tool, {"type": "function_call", "arguments": a}) for a in arguments]
    assert ours == theirs


async def test_cli_exports_a_python_run_for_typescript_and_imports_its_result(
    database: str, session: str, tmp_path: Path, timestep_home: Path
) -> None:
    def timestep(*args: str) -> subprocess.CompletedProcess[str]:
        return run_python("-m", "timestep.cli", *args, "--url", database, home=timestep_home)

    assistant, _ = personal_assistant({"Assistant": [HANDOFF], "Weather": [ASK_BERKELEY]}, [])
    await RunStateStore(agent=assistant, session_id=session, url=database).save(
        await run_agent(assistant, QUESTION)
    )
    exported, finished = tmp_path / "for-js.json", tmp_path / "finished-in-js.json"
    wrote = timestep("state", "export", session, "--to", "js", "-o", str(exported)).stderr
    assert "Wrote the js state" in wrote

    js = assistant_step(
        "resume", {"Weather": [SUNNY]}, "--file", str(exported), "--out", str(finished)
    )
    assert (js["tool_calls"], js["final_output"]) == (["Berkeley"], SUNNY[0]["say"])

    imported = timestep("state", "import", str(finished), "--session", f"{session}-js").stdout
    assert "Imported the js state (schema 1.22) as agent 'Assistant'" in imported
    assert "completed" in imported
    history = _history((await _reader(database, f"{session}-js").load()).to_json())
    assert history[-2:] == [
        ("tool_call_output", "Sunny, 21C in Berkeley"),
        ("message_output", SUNNY[0]["say"]),
    ]

    shown = json.loads(timestep("runs", "show", f"{session}-js", "--json").stdout)
    assert (shown["sdk"], shown["status"]) == ("js", "completed")
    assert shown["items"][-2:] == [
        ["tool_call_output", "Sunny, 21C in Berkeley"],
        ["message_output", SUNNY[0]["say"]],
    ]

    as_python = json.loads(timestep("state", "export", f"{session}-js", "--to", "python").stdout)
    assert as_python["$schemaVersion"] == "1.21"
    assert as_python["current_agent"] == {"name": "Weather"}


async def test_with_a_signing_key_each_language_verifies_what_the_other_signed(
    database: str, session: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # TIMESTEP_STATE_KEY reaches the Node processes through the environment.
    monkeypatch.setenv("TIMESTEP_STATE_KEY", "s" * 40)
    assistant, _ = personal_assistant({"Assistant": [HANDOFF], "Weather": [ASK_BERKELEY]}, [])
    store = RunStateStore(agent=assistant, session_id=session, url=database)
    await store.save(await run_agent(assistant, QUESTION))

    js = assistant_step("resume", {"Weather": [SUNNY]}, "--url", database, "--session", session)
    assert (js["status"], js["tool_calls"]) == ("completed", ["Berkeley"])
    reader = _reader(database, session)
    row = await reader.info()
    assert row is not None and row.sdk == "js" and row.signature
    await reader.load()  # Python verifies the JS writer's signature

    # An edit to the JS row is caught in Python; one to a Python row is caught in Node.
    async with get_backend(database).transaction() as conn:  # type: ignore[attr-defined]
        await conn.execute(text("UPDATE timestep_run_states SET state = replace(state, 'S', 's')"))
    with pytest.raises(StateIntegrityError):
        await reader.load()

    other = f"{session}-2"
    assistant, _ = personal_assistant({"Assistant": [HANDOFF], "Weather": [ASK_BERKELEY]}, [])
    paused = RunStateStore(agent=assistant, session_id=other, url=database)
    await paused.save(await run_agent(assistant, QUESTION))
    async with get_backend(database).transaction() as conn:  # type: ignore[attr-defined]
        await conn.execute(
            text(
                "UPDATE timestep_run_states SET portable_state = "
                "replace(portable_state, 'Berkeley', 'Oakland') WHERE session_id = :session"
            ),
            {"session": other},
        )
    refused = assistant_step(
        "resume", {"Weather": [SUNNY]}, "--url", database, "--session", other, ok=False
    )
    assert refused["returncode"] == 3 and "StateIntegrityError" in refused["message"]
