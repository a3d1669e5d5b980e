"""The README scenario: an agent pauses for approval, a different process approves or rejects
and resumes it, on each built-in backend, streamed and not."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

Run = Callable[..., dict[str, Any]]


@pytest.mark.parametrize("stream", [False, True], ids=["run", "streamed"])
def test_pause_in_one_process_approve_and_resume_in_another(
    ops_process: Run, db_url: str, stream: bool
) -> None:
    session = f"ticket-{uuid.uuid4().hex[:8]}"
    flags = ["--stream"] if stream else []

    paused = ops_process("pause", db_url, session, *flags)
    assert paused["interruptions"] == ["delete_file"]
    assert paused["status"] == "interrupted"
    assert paused["tool_calls"] == []  # nothing ran before a human said yes

    resumed = ops_process("resume", db_url, session, "approve", *flags)
    assert resumed["pending"] == ["delete_file"]
    assert resumed["tool_calls"] == ["/tmp/x"]
    assert resumed["tool_outputs_seen_by_model"] == ["deleted /tmp/x"]
    assert resumed["final_output"] == "Deleted /tmp/x."
    assert resumed["status"] == "completed"
    # One write claims the decision before the tool runs, one saves the result.
    assert resumed["version"] == paused["version"] + 2


def test_reject_in_another_process_tells_the_model_and_never_runs_the_tool(
    ops_process: Run, db_url: str
) -> None:
    session = f"ticket-{uuid.uuid4().hex[:8]}"
    ops_process("pause", db_url, session)

    resumed = ops_process("resume", db_url, session, "reject")

    assert resumed["tool_calls"] == []
    assert resumed["tool_outputs_seen_by_model"] == ["Not allowed by the operator."]
    assert resumed["final_output"] == "I did not delete /tmp/x."
    assert resumed["status"] == "completed"


def test_a_second_resume_of_the_same_pause_is_refused(ops_process: Run, sqlite_url: str) -> None:
    session = "ticket-42"
    ops_process("pause", sqlite_url, session)
    ops_process("resume", sqlite_url, session, "approve")

    # The stored state is now the completed run: nothing is pending, so no tool runs twice.
    again = ops_process("resume", sqlite_url, session, "approve", expect_ok=False)
    assert again["pending"] == [] and again["tool_calls"] == []


def test_resume_of_an_unknown_session_names_it(ops_process: Run, sqlite_url: str) -> None:
    report = ops_process("resume", sqlite_url, "never-saved", "approve", expect_ok=False)
    assert report["returncode"] == 3
    assert report["error"] == "StateNotFoundError"
    assert "never-saved" in report["message"] and "timestep runs list" in report["message"]
