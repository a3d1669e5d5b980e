"""One phase of the README scenario, run as its own OS process by the tests.

    python ops_process.py pause  URL SESSION [--stream]
    python ops_process.py resume URL SESSION approve|reject [--stream]
                                 [--ledger FILE] [--together DIR COUNT]

Prints one JSON line describing what happened. The model is scripted (offline); each phase
scripts only the replies that phase needs, so a repeated model or tool call would fail loudly.
``--ledger`` appends a line to FILE each time the tool really runs, so a test can count
executions across processes. ``--together`` makes COUNT resuming processes race: each loads
the paused run, then waits until all COUNT have loaded it before deciding.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

from agents import Agent, function_tool

from timestep import RunStateStore, TimestepError, run_agent
from timestep.storage import close_backends
from timestep.testing import ScriptedModel, assistant_message, function_call


def build_agent(script: list[object], calls: list[str], ledger: Path | None = None) -> Agent[None]:
    @function_tool(needs_approval=True)
    def delete_file(path: str) -> str:
        """Delete a file."""
        calls.append(path)
        if ledger is not None:
            with ledger.open("a") as log:
                log.write(f"{path}\n")
        return f"deleted {path}"

    return Agent(
        name="Ops", instructions="Clean up.", model=ScriptedModel(script), tools=[delete_file]
    )


async def main(phase: str, url: str, session: str, rest: list[str]) -> dict[str, object]:
    stream = "--stream" in rest
    calls: list[str] = []
    if phase == "pause":
        agent = build_agent(
            [[function_call("delete_file", {"path": "/tmp/x"}, call_id="call-1")]], calls
        )
        store = RunStateStore(agent=agent, session_id=session, url=url)
        result = await run_agent(agent, "clean up /tmp/x", session=None, stream=stream)
        stored = await store.save(result.to_state())
        return {
            "interruptions": [i.tool_name for i in result.interruptions],
            "status": stored.status.value,
            "version": stored.version,
            "tool_calls": calls,
        }
    decision = rest[0]
    reply = "Deleted /tmp/x." if decision == "approve" else "I did not delete /tmp/x."
    ledger = Path(rest[rest.index("--ledger") + 1]) if "--ledger" in rest else None
    agent = build_agent([[assistant_message(reply)]], calls, ledger)
    store = RunStateStore(agent=agent, session_id=session, url=url)
    state = await store.load()
    if "--together" in rest:
        where = rest.index("--together")
        await _wait_for_each_other(Path(rest[where + 1]), int(rest[where + 2]))
    pending = state.get_interruptions()
    for item in pending:
        if decision == "approve":
            state.approve(item)
        else:
            state.reject(item, rejection_message="Not allowed by the operator.")
    result = await run_agent(agent, state, session=None, stream=stream)
    stored = await store.save(result)
    sent_to_model = agent.model.last_call.input if isinstance(agent.model, ScriptedModel) else None
    outputs = [
        item.get("output")
        for item in (sent_to_model if isinstance(sent_to_model, list) else [])
        if isinstance(item, dict) and item.get("type") == "function_call_output"
    ]
    return {
        "pending": [i.tool_name for i in pending],
        "final_output": result.final_output,
        "interruptions": len(result.interruptions),
        "status": stored.status.value,
        "version": stored.version,
        "tool_calls": calls,
        "tool_outputs_seen_by_model": outputs,
    }


async def _wait_for_each_other(barrier: Path, count: int) -> None:
    """Say this process has loaded the run, then wait (at most 60 s) until ``count`` have."""
    (barrier / f"loaded-{os.getpid()}").touch()
    deadline = time.monotonic() + 60
    while len(list(barrier.glob("loaded-*"))) < count:
        if time.monotonic() > deadline:
            raise SystemExit("the other deciders never loaded the run")
        await asyncio.sleep(0.01)


async def entry() -> None:
    phase, url, session, *rest = sys.argv[1:]
    try:
        report = await main(phase, url, session, rest)
    except TimestepError as error:
        report = {"error": type(error).__name__, "message": str(error)}
        print(json.dumps(report))
        raise SystemExit(3) from None
    finally:
        await close_backends()
    print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(entry())
