"""The observability commands as a user runs them: usage, traces list/export, gc, timelines.

The commands are called through the parser ``add_commands`` builds (what ``timestep`` wires in)
and their output is checked for content. Data comes from real recorded runs.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sqlite3
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, function_tool
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call
from observability_support import ops_tools, stored, tokens
from rich.console import Console

from subprocesses import run_python
from timestep import ConfigurationError, RunStateStore, TimestepSession, run_agent
from timestep.errors import TraceNotFoundError
from timestep.observability import approve, collect_garbage, flush_tracing, timeline
from timestep.observability.cli import add_commands, render_timeline
from timestep.observability.install import _reset_for_tests
from timestep.testing import ScriptedModelProvider


@dataclass
class Recorded:
    url: str
    finished_run: str  # Ops: paused, approved by alice, finished (session ticket-42)
    paused_run: str  # Ops: still waiting for approval (session ticket-43)


@pytest.fixture
def recorded(
    db_url: str, monkeypatch: pytest.MonkeyPatch, scripted_provider: ScriptedModelProvider
) -> Iterator[str]:
    monkeypatch.setenv("TIMESTEP_TRACING", "db")
    monkeypatch.setenv("TIMESTEP_DB_URL", db_url)
    yield db_url
    _reset_for_tests()


async def record_runs(url: str, provider: ScriptedModelProvider) -> Recorded:
    provider.script(
        "gpt-4.1-mini",
        [
            ModelStep(
                output=[function_call("delete_file", {"path": "/tmp/x"}, call_id="call-1")],
                usage=tokens(1000, 50, cached=200, reasoning=10),
            ),
            ModelStep(output=[assistant_message("Deleted.")], usage=tokens(1200, 30)),
            ModelStep(
                output=[function_call("delete_file", {"path": "/srv"}, call_id="call-9")],
                usage=tokens(100, 10),
            ),
        ],
    )
    provider.script(
        "my-local-llama", [ModelStep(output=[assistant_message("Hi!")], usage=tokens(10, 5))]
    )
    ops = Agent(name="Ops", model="scripted/gpt-4.1-mini", tools=ops_tools())
    store = RunStateStore(agent=ops, session_id="ticket-42", url=url)
    paused = await run_agent(ops, "clean up /tmp/x", session=TimestepSession("ticket-42"))
    await store.save(paused)
    state = await store.load()
    approve(state, state.get_interruptions()[0], by="alice")
    finished = await store.save(await run_agent(ops, state, session=TimestepSession("ticket-42")))
    other = RunStateStore(agent=ops, session_id="ticket-43", url=url)
    waiting = await other.save(
        await run_agent(ops, "clean up /srv", session=TimestepSession("ticket-43"))
    )
    writer = Agent(name="Writer", model="scripted/my-local-llama")
    await run_agent(writer, "say hi", session=TimestepSession("user-7"))
    assert flush_tracing()
    return Recorded(url=url, finished_run=finished.id, paused_run=waiting.id)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="timestep")
    add_commands(parser.add_subparsers())
    return parser.parse_args(argv)


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    args = parse(*argv)
    assert await args.handler(args) == 0
    return capsys.readouterr().out


async def test_usage_summarises_tokens_and_cost_by_agent_model_session_and_day(
    recorded: str, scripted_provider: ScriptedModelProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = await record_runs(recorded, scripted_provider)

    table = await cli(capsys, "usage", "--by", "agent", "--url", runs.url)
    ops = next(line for line in table.splitlines() if "│ Ops" in line)
    # 3 calls: 1000+1200+100 in (200 cached), 50+30+10 out (10 reasoning).
    assert re.findall(r"[\d,$.?+]+(?: \+ \?)?", ops) == [
        "3", "2,300", "200", "90", "10", "2,390", "$0.001004"
    ]  # fmt: skip
    writer = next(line for line in table.splitlines() if "│ Writer" in line)
    assert writer.rstrip(" │").endswith("?")
    total = next(line for line in table.splitlines() if "TOTAL" in line)
    assert "2,405" in total and "$0.001004 + ?" in total
    assert "? = 1 call(s) of models without a price; add them under [prices]" in table

    by_model = json.loads(await cli(capsys, "usage", "--by", "model", "--json", "--url", runs.url))
    groups = by_model["groups"]
    assert [(g["key"], g["calls"], g["total_tokens"], g["cost_usd"]) for g in groups] == [
        ("gpt-4.1-mini", 3, 2390, "0.001004"),
        ("my-local-llama", 1, 15, None),
    ]  # fmt: skip
    assert by_model["total"]["cost_usd"] == "0.001004"
    assert by_model["total"]["unpriced_calls"] == 1

    by_session = json.loads(await cli(capsys, "usage", "--by", "session", "--json"))
    assert {g["key"]: g["calls"] for g in by_session["groups"]} == {
        "ticket-42": 2,
        "ticket-43": 1,
        "user-7": 1,
    }
    by_day = json.loads(await cli(capsys, "usage", "--json", "--since", "1h"))
    assert [g["key"] for g in by_day["groups"]] == [datetime.now(UTC).strftime("%Y-%m-%d")]
    only_writer = json.loads(await cli(capsys, "usage", "--json", "--agent", "Writer"))
    assert only_writer["total"]["calls"] == 1


async def test_runs_show_timeline_and_otel_export_of_a_run(
    recorded: str,
    scripted_provider: ScriptedModelProvider,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    runs = await record_runs(recorded, scripted_provider)

    screen = io.StringIO()
    render_timeline(Console(file=screen, width=220), await timeline(runs.url, runs.finished_run))
    shown = screen.getvalue()
    for expected in (
        "Ops started",
        "gpt-4.1-mini (scripted)",
        "1000 in (200 cached) / 50 out (10 reasoning), $0.00042",
        'delete_file({"path":"/tmp/x"}) waits for approval',
        "delete_file approved by alice",
        "-> deleted /tmp/x",
    ):
        assert expected in shown

    out = tmp_path / "trace.json"
    printed = await cli(capsys, "traces", "export", runs.finished_run, "-o", str(out))
    document = json.loads(out.read_text())
    spans = document["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert f"Wrote {len(spans)} spans of {runs.finished_run} to {out}." in printed
    names = sorted(span["name"] for span in spans)
    assert names.count("chat gpt-4.1-mini") == 2 and names.count("invoke_agent Ops") == 2
    assert "execute_tool delete_file" in names and "approval delete_file" in names
    ids = {span["spanId"] for span in spans}
    assert all(re.fullmatch(r"[0-9a-f]{32}", span["traceId"]) for span in spans)
    assert all(re.fullmatch(r"[0-9a-f]{16}", span["spanId"]) for span in spans)
    assert all(span.get("parentSpanId", next(iter(ids))) in ids for span in spans)
    assert all(int(s["endTimeUnixNano"]) >= int(s["startTimeUnixNano"]) > 0 for s in spans)
    first_call = next(s for s in spans if s["name"] == "chat gpt-4.1-mini")
    attributes = {a["key"]: a["value"] for a in first_call["attributes"]}
    assert attributes["gen_ai.usage.input_tokens"] == {"intValue": "1000"}
    assert attributes["timestep.cost_usd"] == {"stringValue": "0.00042"}
    assert attributes["session.id"] == {"stringValue": "ticket-42"}

    listing = json.loads(await cli(capsys, "traces", "list", "--json", "--session", "ticket-42"))
    assert [(t["session_id"], t["model_calls"], t["cost_usd"]) for t in listing] == [
        ("ticket-42", 2, "0.000948")
    ]
    with pytest.raises(TraceNotFoundError, match="No recorded trace for 'nope'"):
        await cli(capsys, "traces", "export", "nope")


async def test_gc_removes_old_traces_and_completed_runs_but_never_a_waiting_one(
    recorded: str, scripted_provider: ScriptedModelProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = await record_runs(recorded, scripted_provider)
    nothing_old = await cli(capsys, "gc", "--older-than", "30d", "--dry-run")
    assert "Would delete 0 trace(s), 0 span(s), 0 model call record(s) and 0 completed" in (
        nothing_old
    )
    before = {name: len(await stored(runs.url, name)) for name in ("traces", "model_usage")}
    paused_before = await timeline(runs.url, runs.paused_run)

    later = datetime.now(UTC) + timedelta(days=31)
    would = await collect_garbage(runs.url, older_than="30d", now=later, dry_run=True)
    done = await collect_garbage(runs.url, older_than=timedelta(days=30), now=later)

    assert (would.traces, would.run_states) == (done.traces, done.run_states)
    assert done.run_states == 1  # ticket-42's finished run; ticket-43 still waits
    assert done.traces == before["traces"] - 1
    assert done.model_usage == before["model_usage"] - 1
    kept_traces = await stored(runs.url, "traces")
    assert [t["session_id"] for t in kept_traces] == ["ticket-43"]
    assert await timeline(runs.url, runs.paused_run) == paused_before
    assert await timeline(runs.url, runs.finished_run) == []


async def test_the_timeline_shows_brackets_in_data_as_they_are(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIMESTEP_TRACING", "db")
    monkeypatch.setenv("TIMESTEP_DB_URL", sqlite_url)

    @function_tool
    def touch(paths: list[str]) -> str:
        """Touch files."""
        return f"touched {paths}"

    try:
        agent = Agent(
            name="Ops",
            model=ScriptedModel(
                [
                    [function_call("touch", {"paths": ["[bold]a[/bold]", "b"]}, call_id="c1")],
                    [assistant_message("ok")],
                ]
            ),
            tools=[touch],
        )
        await run_agent(agent, "touch them", session=TimestepSession("ticket-7"))
        assert flush_tracing()
    finally:
        _reset_for_tests()

    screen = io.StringIO()
    render_timeline(Console(file=screen, width=220), await timeline(sqlite_url, "ticket-7"))
    shown = screen.getvalue()
    assert 'touch({"paths":["[bold]a[/bold]","b"]})' in shown
    assert "-> touched ['[bold]a[/bold]', 'b']" in shown


@pytest.mark.parametrize("age", ["30x", "thirty days", "0d", "-3d", ""])
async def test_gc_refuses_an_age_it_cannot_read(
    age: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigurationError, match=r"e\.g\. --older-than 30d, 12h or 90m"):
        await cli(capsys, "gc", f"--older-than={age}")


async def test_usage_of_an_empty_database_says_how_to_record(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = await cli(capsys, "usage", "--url", sqlite_url)
    assert "No model usage recorded" in out and "TIMESTEP_TRACING=db" in out
    assert "No traces recorded" in await cli(capsys, "traces", "list", "--url", sqlite_url)
    screen = io.StringIO()
    render_timeline(Console(file=screen), await timeline(sqlite_url, "ticket-1"))
    assert "nothing was recorded for this run" in screen.getvalue()


def test_a_process_that_exits_without_flushing_still_writes_its_traces(
    timestep_home: Path, tmp_path: Path
) -> None:
    script = tmp_path / "one_run.py"
    script.write_text(
        textwrap.dedent(
            """
            import asyncio, os
            os.environ["TIMESTEP_TRACING"] = "db"
            from agents import Agent
            from agents.testing import ScriptedModel, assistant_message
            from timestep import run_agent

            agent = Agent(name="Brief", model=ScriptedModel([[assistant_message("bye")]]))
            print(asyncio.run(run_agent(agent, "hi")).final_output)
            """
        )
    )
    done = run_python(str(script), home=timestep_home)
    assert done.stdout.strip() == "bye"
    with sqlite3.connect(timestep_home / "timestep.db") as db:
        rows: list[Any] = db.execute(
            "SELECT span_type, name FROM timestep_spans WHERE span_type = 'agent'"
        ).fetchall()
        usage = db.execute("SELECT agent_name, total_tokens FROM timestep_model_usage").fetchall()
    assert rows == [("agent", "Brief")] and usage == [("Brief", 0)]
