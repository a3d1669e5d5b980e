"""The `timestep` command as a user runs it: demo, runs list, runs show."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from scenario import ask_to_delete, ops_agent, paused_run
from subprocesses import run_python
from timestep import RunStateStore, TimestepSession, aclose, flush_tracing, run_agent
from timestep.observability.install import _reset_for_tests


def timestep(*args: str, home: Path, ok: bool = True) -> subprocess.CompletedProcess[str]:
    return run_python("-m", "timestep.cli", *args, home=home, ok=ok)


def test_demo_pauses_saves_and_resumes_in_a_second_process(
    timestep_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))  # where the demo makes its folder
    demo = timestep("demo", home=timestep_home)
    out = demo.stdout
    assert "OPENAI_API_KEY is not set" in out
    assert "needs approval" in out and "approving delete_file" in out
    first_pid = out.split("1. Process ")[1].split()[0]
    second_pid = out.split("2. Process ")[1].split()[0]
    assert first_pid != second_pid
    assert "old-report.txt exists: False" in out
    assert list(scratch.iterdir()) == []  # the demo's folder is gone with it

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


def test_the_demo_with_an_unusable_key_says_so_in_a_paragraph(
    timestep_home: Path, tmp_path: Path
) -> None:
    class Refusing(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = (
                b'{"error": {"message": "Incorrect API key provided.", "code": "invalid_api_key"}}'
            )
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        **os.environ,
        "TIMESTEP_HOME": str(timestep_home),
        "OPENAI_API_KEY": "sk-revoked-long-ago",
        "OPENAI_BASE_URL": f"http://127.0.0.1:{server.server_address[1]}/v1",
    }
    try:
        done = subprocess.run(
            [sys.executable, "-m", "timestep.cli", "demo"],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 1
    assert "Traceback" not in done.stderr + done.stdout
    said = done.stdout + done.stderr
    assert "401" in said and "OPENAI_API_KEY" in said and "timestep demo --offline" in said
    assert "sk-revoked" not in said
    assert len(said.strip().splitlines()) <= 6

    offline = timestep("demo", "--offline", home=timestep_home)
    assert "old-report.txt exists: False" in offline.stdout
