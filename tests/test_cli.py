"""The `timestep` command as a user runs it: demo, runs list, runs show."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from scenario import paused_run
from subprocesses import run_python
from timestep import RunStateStore


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
