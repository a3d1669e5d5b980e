"""`timestep demo`: the README scenario end to end, in two OS processes.

Process 1 runs an agent whose ``delete_file`` tool needs approval; the run pauses and its state
is saved. Process 2 (``python -m timestep._demo resume ...``) loads it, approves, resumes and
saves the completed run. With ``OPENAI_API_KEY`` set the agent uses a real OpenAI model;
otherwise an offline scripted model plays the model's part.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from agents import Agent, Model, function_tool
from rich.console import Console

from .config import redact_url
from .run import run_agent
from .state import RunStateStore
from .storage import close_backends

__all__ = ["main", "run_demo"]

REAL_MODEL = "gpt-4.1-mini"
# Wide enough for full run ids when output goes to a pipe or file.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def build_agent(workdir: Path, model: str | Model) -> Agent[Any]:
    """The demo agent: it may delete files inside ``workdir`` once a human approves."""

    @function_tool(needs_approval=True)
    def delete_file(path: str) -> str:
        """Delete the file at ``path``."""
        target = Path(path).resolve()
        if workdir.resolve() not in target.parents:
            return f"Refused: {path} is outside the demo folder."
        target.unlink(missing_ok=True)
        return f"deleted {path}"

    return Agent(
        name="Ops",
        instructions="You clean up files. Use delete_file for every file the user names.",
        model=model,
        tools=[delete_file],
    )


def _model(phase: str, target: Path) -> str | Model:
    if os.environ.get("OPENAI_API_KEY"):
        return REAL_MODEL
    from agents.testing import ScriptedModel, assistant_message, function_call

    if phase == "pause":
        return ScriptedModel(
            [[function_call("delete_file", {"path": str(target)}, call_id="call-demo")]]
        )
    return ScriptedModel([[assistant_message(f"Done: I deleted {target}.")]])


async def _pause(url: str | None, session_id: str, target: Path) -> RunStateStore:
    agent = build_agent(target.parent, _model("pause", target))
    store = RunStateStore(agent=agent, session_id=session_id, url=url)
    console.print(f"[bold]1. Process {os.getpid()}[/] asks the agent: clean up {target}")
    result = await run_agent(agent, f"Please delete {target}.")
    if not result.interruptions:
        raise SystemExit(f"The model answered without asking to delete: {result.final_output}")
    for item in result.interruptions:
        console.print(f"   paused: [yellow]{item.tool_name}[/]({item.arguments}) needs approval")
    stored = await store.save(result)
    console.print(
        f"   saved run [cyan]{stored.id}[/] (status {stored.status.value}, version "
        f"{stored.version}) to {redact_url(store.url)}"
    )
    return store


async def _resume(url: str | None, session_id: str, target: Path) -> None:
    agent = build_agent(target.parent, _model("resume", target))
    store = RunStateStore(agent=agent, session_id=session_id, url=url)
    console.print(f"[bold]2. Process {os.getpid()}[/] loads session {session_id}")
    state = await store.load()
    for item in state.get_interruptions():
        console.print(f"   approving [yellow]{item.tool_name}[/]({item.arguments})")
        state.approve(item)
    result = await run_agent(agent, state)
    stored = await store.save(result)
    console.print(f"   agent: [green]{result.final_output}[/]")
    console.print(
        f"   saved run {stored.id} (status {stored.status.value}, version {stored.version})"
    )


async def run_demo(url: str | None = None) -> int:
    """Run both phases; the second in a fresh Python process. Returns an exit code."""
    if os.environ.get("OPENAI_API_KEY"):
        console.print(f"Using OpenAI model {REAL_MODEL} (OPENAI_API_KEY is set).")
    else:
        console.print(
            "OPENAI_API_KEY is not set: using the offline scripted model in its place. "
            "Set the key to run the same demo against a real model."
        )
    workdir = Path(tempfile.mkdtemp(prefix="timestep-demo-"))
    target = workdir / "old-report.txt"
    target.write_text("obsolete\n")
    session_id = f"demo-{uuid.uuid4().hex[:8]}"
    try:
        store = await _pause(url, session_id, target)
    finally:
        await close_backends()
    command = [sys.executable, "-m", "timestep._demo", "resume", session_id, str(target)]
    if url:
        command += ["--url", url]
    second = await asyncio.create_subprocess_exec(*command)
    if await second.wait() != 0:
        return second.returncode or 1
    console.print(
        f"[bold]3.[/] {target.name} exists: {target.exists()}. "
        f"See it with `timestep runs show {session_id}` (database: {redact_url(store.url)})."
    )
    return 0 if not target.exists() else 1


def main(argv: list[str] | None = None) -> None:
    """Entry point of the second demo process."""
    parser = argparse.ArgumentParser(prog="python -m timestep._demo")
    parser.add_argument("phase", choices=["resume"])
    parser.add_argument("session_id")
    parser.add_argument("target", type=Path)
    parser.add_argument("--url")
    args = parser.parse_args(argv)

    async def resume() -> None:
        try:
            await _resume(args.url, args.session_id, args.target)
        finally:
            await close_backends()

    asyncio.run(resume())


if __name__ == "__main__":
    main()
