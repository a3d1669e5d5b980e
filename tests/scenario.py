"""The ops agent of the README, built in-process for tests that need no second process."""

from __future__ import annotations

from agents import Agent, RunResult, RunResultStreaming, function_tool

from timestep import run_agent
from timestep.testing import ScriptedModel, assistant_message, function_call


def ops_agent(*replies: object, name: str = "Ops", calls: list[str] | None = None) -> Agent[None]:
    """An agent whose ``delete_file`` tool needs approval; ``replies`` script its model."""
    ran = calls if calls is not None else []

    @function_tool(needs_approval=True)
    def delete_file(path: str) -> str:
        """Delete a file."""
        ran.append(path)
        return f"deleted {path}"

    return Agent(name=name, model=ScriptedModel(list(replies)), tools=[delete_file])


def ask_to_delete(path: str = "/tmp/x", call_id: str = "call-1") -> list[object]:
    return [function_call("delete_file", {"path": path}, call_id=call_id)]


def say(text: str) -> list[object]:
    return [assistant_message(text)]


async def paused_run(
    agent_name: str = "Ops", *, stream: bool = False
) -> tuple[Agent[None], RunResult | RunResultStreaming]:
    """Run an ops agent until it pauses on ``delete_file``."""
    agent = ops_agent(ask_to_delete(), say("done"), name=agent_name)
    result = await run_agent(agent, "clean up /tmp/x", stream=stream)
    assert result.interruptions
    return agent, result
