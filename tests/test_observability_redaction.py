"""What reaches the database: payloads as TIMESTEP_TRACE_PAYLOADS allows, and never a key.

The first test runs the SDK's real Responses model against a fake API on 127.0.0.1, so the
model spans carry the conversation exactly as they would in production.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from agents import Agent, function_tool
from agents.models.openai_responses import OpenAIResponsesModel
from agents.testing import ScriptedModel, assistant_message, function_call
from observability_support import fake_responses_api, ops_tools, response_body, stored
from openai import AsyncOpenAI

from timestep import run_agent
from timestep.observability import Redactor, approve, flush_tracing
from timestep.observability.install import _reset_for_tests
from timestep.observability.redaction import PAYLOAD_LIMIT, REDACTED

SECRETS = ("SECRET-INPUT", "SECRET-ARG", "SECRET-PATH", "SECRET-REPLY")


@pytest.fixture
def tracing_sqlite(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("TIMESTEP_TRACING", "db")
    monkeypatch.setenv("TIMESTEP_DB_URL", sqlite_url)
    yield sqlite_url
    _reset_for_tests()


def _call(name: str, arguments: dict[str, str], call_id: str) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": f"fc_{call_id}",
        "call_id": call_id,
        "name": name,
        "arguments": json.dumps(arguments),
        "status": "completed",
    }


def _replies() -> list[dict[str, Any]]:
    usage = {
        "input_tokens": 50,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 55,
    }
    look = response_body("", usage, "gpt-4.1")
    look["output"] = [_call("look", {"path": "SECRET-ARG"}, "call_1")]
    delete = response_body("", usage, "gpt-4.1")
    delete["output"] = [_call("delete_file", {"path": "SECRET-PATH"}, "call_2")]
    return [look, delete, response_body("SECRET-REPLY done", usage, "gpt-4.1")]


async def _run_with_a_real_model(url: str) -> list[dict[str, Any]]:
    with fake_responses_api(_replies()) as (base_url, _requests):
        client = AsyncOpenAI(base_url=base_url, api_key="sk-fake-key-0123456789")
        model = OpenAIResponsesModel(model="gpt-4.1", openai_client=client)
        agent = Agent(name="Ops", model=model, tools=ops_tools())
        paused = await run_agent(agent, "SECRET-INPUT: tidy up")
        state = paused.to_state()
        approve(state, state.get_interruptions()[0], by="alice")
        finished = await run_agent(agent, state)
    assert finished.final_output == "SECRET-REPLY done"
    assert flush_tracing()
    return [
        *await stored(url, "spans"),
        *await stored(url, "traces"),
        *await stored(url, "model_usage"),
    ]


async def test_payloads_off_keeps_no_input_or_output_text_in_any_row(
    tracing_sqlite: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIMESTEP_TRACE_PAYLOADS", "off")
    rows = await _run_with_a_real_model(tracing_sqlite)

    kinds = {row.get("span_type") for row in rows}
    assert {"agent", "response", "function", "approval"} <= kinds
    stored_text = repr(rows)
    assert [secret for secret in SECRETS if secret in stored_text] == []
    assert "sk-fake-key-0123456789" not in stored_text
    # The shape of the run is still there: which tools ran, who approved, what it cost.
    names = {(row.get("span_type"), row.get("name")) for row in rows}
    assert ("function", "look") in names and ("approval", "delete_file") in names
    assert '"by":"alice"' in stored_text and sum(r.get("input_tokens", 0) for r in rows) == 150


async def test_full_payloads_keep_the_text_that_off_drops(
    tracing_sqlite: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIMESTEP_TRACE_PAYLOADS", "full")
    stored_text = repr(await _run_with_a_real_model(tracing_sqlite))

    assert [secret for secret in SECRETS if secret not in stored_text] == []
    assert "sk-fake-key-0123456789" not in stored_text


async def test_api_keys_and_bearer_tokens_are_scrubbed_even_in_full_mode(
    tracing_sqlite: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIMESTEP_TRACE_PAYLOADS", "full")
    monkeypatch.setenv("FIRECRAWL_API_KEY", "fc-0a1b2c3d4e5f6a7b")

    @function_tool
    def debug_headers(service: str) -> str:
        """Show the headers sent to a service."""
        return (
            f"{service}: Authorization: Bearer eyJhbGciOi.payload.sig "
            "key=sk-proj-AbCdEfGhIjKlMnOp123 firecrawl=fc-0a1b2c3d4e5f6a7b"
        )

    agent = Agent(
        name="Debug",
        model=ScriptedModel(
            [
                [function_call("debug_headers", {"service": "search"}, call_id="c1")],
                [assistant_message("done")],
            ]
        ),
        tools=[debug_headers],
    )
    await run_agent(agent, "what do we send?")
    assert flush_tracing()

    [tool] = [r for r in await stored(tracing_sqlite, "spans") if r["span_type"] == "function"]
    output = json.loads(tool["data"])["output"]
    assert output == (
        f"search: Authorization: Bearer {REDACTED} key={REDACTED} firecrawl={REDACTED}"
    )


async def test_truncated_payloads_keep_the_first_2000_characters(
    tracing_sqlite: str,
) -> None:
    @function_tool
    def read_log(name: str) -> str:
        """Read a log file."""
        return "x" * 5000

    agent = Agent(
        name="Reader",
        model=ScriptedModel(
            [[function_call("read_log", {"name": "app"}, call_id="c1")], [assistant_message("ok")]]
        ),
        tools=[read_log],
    )
    await run_agent(agent, "read the log")
    assert flush_tracing()

    [tool] = [r for r in await stored(tracing_sqlite, "spans") if r["span_type"] == "function"]
    data = json.loads(tool["data"])
    assert data["input"] == '{"name":"app"}'
    assert data["output"] == "x" * PAYLOAD_LIMIT + "... [truncated 3000 chars]"


def test_the_redactor_scrubs_keys_in_nested_payloads_and_leaves_ordinary_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "env-openai-key-value-42")
    redactor = Redactor("full")
    assert redactor.payload(
        {"headers": ["bearer abcdefgh12345678"], "note": "env-openai-key-value-42 here"}
    ) == {"headers": [f"bearer {REDACTED}"], "note": f"{REDACTED} here"}
    # Short or ordinary words are not secrets: "sk-" needs 8+ key characters, "Bearer" a token.
    assert redactor.scrub("ask-me, task-1, the bearer of news") == (
        "ask-me, task-1, the bearer of news"
    )
    assert Redactor("off").payload("anything") is None
    assert Redactor("truncated", limit=5).payload({"a": "bcdefgh"}) == (
        '{"a":... [truncated 10 chars]'
    )
