"""The `timestep` command as a user runs it: demo, runs list, runs show."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from scenario import ask_to_delete, ops_agent, paused_run
from subprocesses import run_python
from timestep import RunStateStore, TimestepSession, aclose, flush_tracing, run_agent
from timestep.observability.install import _reset_for_tests


def timestep(*args: str, home: Path, ok: bool = True) -> subprocess.CompletedProcess[str]:
    return run_python("-m", "timestep.cli", *args, home=home, ok=ok)


def test_demo_pauses_saves_and_resumes_in_a_second_process(timestep_home: Path) -> None:
    demo = timestep("demo", home=timestep_home)
    out = demo.stdout
    assert "OPENAI_API_KEY is not set" in out
    assert "needs approval" in out and "approving delete_file" in out
    first_pid = out.split("1. Process ")[1].split()[0]
    second_pid = out.split("2. Process ")[1].split()[0]
    assert first_pid != second_pid
    assert "old-report.txt exists: False" in out

    runs = json.loads(timestep("runs", "list", "--json", home=timestep_home).stdout)
    assert [(r["agent"], r["status"], r["version"]) for r in runs] == [("Ops", "completed", 3)]
    assert (timestep_home / "timestep.db").is_file()

    shown = timestep("runs", "show", runs[0]["session"], home=timestep_home).stdout
    assert "completed" in shown and "delete_file" in shown and "Done: I deleted" in shown


async def test_runs_list_shows_what_is_waiting_for_approval(timestep_home: Path) -> None:
    agent, result = await paused_run()
    stored = await RunStateStore(agent=agent, session_id="ticket-42").save(result)

    listing = timestep("runs", "list", "--status", "interrupted", home=timestep_home).stdout
    assert stored.id in listing and "ticket-42" in listing
    assert 'delete_file({"path":"/tmp/x"})' in listing

    shown = json.loads(timestep("runs", "show", stored.id, "--json", home=timestep_home).stdout)
    assert shown["status"] == "interrupted"
    assert shown["waiting_for"][0]["tool_name"] == "delete_file"
    assert ["user", "clean up /tmp/x"] in shown["items"]

    none = timestep("runs", "list", "--status", "completed", home=timestep_home).stdout
    assert "No stored runs" in none


def test_unknown_run_and_bad_url_are_clear_errors(timestep_home: Path) -> None:
    missing = timestep("runs", "show", "nope", home=timestep_home, ok=False)
    assert missing.returncode == 2 and "No run with id or session 'nope'" in missing.stderr
    assert "Traceback" not in missing.stderr

    bad = timestep("runs", "list", "--url", "mysql://x/y", home=timestep_home, ok=False)
    assert bad.returncode == 2 and "Known schemes" in bad.stderr


HOSTILE_TEXT = "conceal\x1b[8m erase\x1b[2K title\x1b]0;pwned\x07 c1\x9b31m cr\r rtl\u202eexe.txt"
"""Conversation text that would hide, erase or retitle an operator's terminal if printed raw."""


def _raw_controls(text: str) -> list[str]:
    allowed = {"\n"}
    return [
        repr(ch)
        for ch in text
        if ch not in allowed and (ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0 or ch == "\u202e")
    ]


async def test_stored_text_reaches_the_terminal_with_its_control_characters_escaped(
    timestep_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIMESTEP_TRACING", "db")
    calls: list[str] = []
    agent = ops_agent(ask_to_delete(HOSTILE_TEXT, "call\x1b[2K-1"), calls=calls)
    try:
        result = await run_agent(agent, HOSTILE_TEXT, session=TimestepSession("ticket-9"))
        stored = await RunStateStore(agent=agent, session_id="ticket-9").save(result)
        assert flush_tracing()
    finally:
        _reset_for_tests()
        await aclose()

    for command in (
        ("runs", "list"),
        ("runs", "show", stored.id),
        ("runs", "show", "ticket-9"),
        ("traces", "list"),
    ):
        out = timestep(*command, home=timestep_home).stdout
        assert _raw_controls(out) == [], (command, out)
    shown = timestep("runs", "show", stored.id, home=timestep_home).stdout
    # Shown, as escapes, rather than dropped: the operator sees exactly what is stored.
    assert "call\\x1b[2K-1" in shown and "c1\\x9b31m" in shown and "\\u202eexe" in shown
