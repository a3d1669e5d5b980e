"""`timestep demo`: the README scenario end to end, in two OS processes.

Process 1 runs an agent whose ``delete_file`` tool needs approval; the run pauses and its state
is saved. Process 2 (``python -m timestep._demo resume ...``) loads it, approves, resumes and
saves the completed run. With ``OPENAI_API_KEY`` set the agent uses a real OpenAI model
(unless ``--offline``); otherwise an offline scripted model plays the model's part. A key the
API refuses, or an API that cannot be reached, is said in one paragraph, not a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import openai
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


def _online(offline: bool) -> bool:
    return bool(os.environ.get("OPENAI_API_KEY")) and not offline


def _model(phase: str, target: Path, offline: bool) -> str | Model:
    if _online(offline):
        return REAL_MODEL
    from agents.testing import ScriptedModel, assistant_message, function_call

    if phase == "pause":
        return ScriptedModel(
            [[function_call("delete_file", {"path": str(target)}, call_id="call-demo")]]
        )
    return ScriptedModel([[assistant_message(f"Done: I deleted {target}.")]])


async def _pause(url: str | None, session_id: str, target: Path, offline: bool) -> RunStateStore:
    agent = build_agent(target.parent, _model("pause", target, offline))
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


async def _resume(url: str | None, session_id: str, target: Path, offline: bool) -> None:
    agent = build_agent(target.parent, _model("resume", target, offline))
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


async def run_demo(url: str | None = None, *, offline: bool = False) -> int:
    """Run both phases; the second in a fresh Python process. Returns an exit code."""
    if _online(offline):
        console.print(f"Using OpenAI model {REAL_MODEL} (OPENAI_API_KEY is set).")
    elif offline:
        console.print("Offline: the scripted model plays the model's part.")
    else:
        console.print(
            "OPENAI_API_KEY is not set: using the offline scripted model in its place. "
            "Set the key to run the same demo against a real model."
        )
    workdir = Path(tempfile.mkdtemp(prefix="timestep-demo-"))
    try:
        return await _both_phases(url, workdir, offline)
    except openai.APIError as error:
        console.print(_api_trouble(error), soft_wrap=True)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def _both_phases(url: str | None, workdir: Path, offline: bool) -> int:
    target = workdir / "old-report.txt"
    target.write_text("obsolete\n")
    session_id = f"demo-{uuid.uuid4().hex[:8]}"
    try:
        store = await _pause(url, session_id, target, offline)
    finally:
        await close_backends()
    command = [sys.executable, "-m", "timestep._demo", "resume", session_id, str(target)]
    if url:
        command += ["--url", url]
    if offline:
        command.append("--offline")
    second = await asyncio.create_subprocess_exec(*command)
    if await second.wait() != 0:
        return second.returncode or 1
    console.print(
        f"[bold]3.[/] {target.name} exists: {target.exists()}. "
        f"See it with `timestep runs show {session_id}` (database: {redact_url(store.url)})."
    )
    return 0 if not target.exists() else 1


def _api_trouble(error: openai.APIError) -> str:
    """One paragraph on why the OpenAI API call failed, and what to do instead."""
    if isinstance(error, openai.APIStatusError):
        what = f"The OpenAI API answered HTTP {error.status_code}"
        if error.status_code in (401, 403):
            what += " (the key in OPENAI_API_KEY is not accepted)"
    elif isinstance(error, openai.APIConnectionError):
        what = "The OpenAI API could not be reached"
    else:
        what = "The OpenAI API call failed"
    return (
        f"[red]{what}.[/] Check OPENAI_API_KEY (and OPENAI_BASE_URL, if set), or run "
        "`timestep demo --offline` to use the scripted model instead; nothing else is needed "
        "for the demo."
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point of the second demo process."""
    parser = argparse.ArgumentParser(prog="python -m timestep._demo")
    parser.add_argument("phase", choices=["resume"])
    parser.add_argument("session_id")
    parser.add_argument("target", type=Path)
    parser.add_argument("--url")
    parser.add_argument("--offline", action="store_true")
    args = parser.parse_args(argv)

    async def resume() -> int:
        try:
            await _resume(args.url, args.session_id, args.target, args.offline)
            return 0
        except openai.APIError as error:
            console.print(_api_trouble(error), soft_wrap=True)
            return 1
        finally:
            await close_backends()

    raise SystemExit(asyncio.run(resume()))


if __name__ == "__main__":
    main()
