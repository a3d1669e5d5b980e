"""Agents by name, so a workflow recovered after a restart finds the agent it was running.

A DBOS workflow only keeps serializable arguments; an ``Agent`` (tools are closures, models
hold clients) is not one. The workflow therefore records the agent's *name*, and every process
that may run or recover workflows registers its agents at start-up, before
:func:`~timestep.workflows.ensure_dbos_launched`.

Example::

    assistant = register_agent(Agent(name="Assistant", instructions="..."))
    configure_dbos()
    ensure_dbos_launched()
"""

from __future__ import annotations

import threading
from typing import Any, TypeVar

from agents import Agent

from ..errors import AgentNotRegisteredError, WorkflowConfigurationError
from ..identifiers import check_identifier

__all__ = ["get_registered_agent", "register_agent", "registered_agents", "unregister_agent"]

A = TypeVar("A", bound=Agent[Any])

_lock = threading.Lock()
_agents: dict[str, Agent[Any]] = {}


def register_agent(agent: A) -> A:
    """Make ``agent`` findable by its name in this process, replacing any agent of that name.

    Returns the agent, so it can wrap the definition::

        assistant = register_agent(Agent(name="Assistant", model="gpt-4.1"))

    Agents reached through its handoffs need no registration of their own.

    Raises:
        WorkflowConfigurationError: ``agent`` is not an ``Agent`` or has no name.
    """
    if not isinstance(agent, Agent):
        raise WorkflowConfigurationError(
            f"register_agent takes an agents.Agent, not {type(agent).__name__}."
        )
    # Workflows find agents by name, and store it with every run.
    check_identifier(agent.name, "The agent name", WorkflowConfigurationError)
    with _lock:
        _agents[agent.name] = agent
    return agent


def unregister_agent(name: str) -> bool:
    """Forget the agent registered as ``name``; ``True`` if there was one.

    Example::

        unregister_agent("Assistant")
    """
    with _lock:
        return _agents.pop(name, None) is not None


def registered_agents() -> dict[str, Agent[Any]]:
    """A snapshot of the registry, name to agent.

    Example::

        assert "Assistant" in registered_agents()
    """
    with _lock:
        return dict(_agents)


def get_registered_agent(name: str, *, workflow_id: str | None = None) -> Agent[Any]:
    """The agent registered as ``name``.

    Example::

        assistant = get_registered_agent("Assistant")

    Raises:
        AgentNotRegisteredError: nothing is registered under that name in this process.
    """
    with _lock:
        agent = _agents.get(name)
        known = sorted(_agents)
    if agent is None:
        where = f" for workflow {workflow_id!r}" if workflow_id else ""
        raise AgentNotRegisteredError(
            f"No agent named {name!r} is registered in this process{where}. Call "
            f"register_agent(agent) for it at start-up, before ensure_dbos_launched(), in every "
            f"process that runs workflows (registered: {', '.join(known) or 'none'}).",
            workflow_id=workflow_id,
        )
    return agent


def check_registered(agent: Agent[Any]) -> str:
    """The name a workflow will use for ``agent``, after checking the registry holds *it*.

    Example::

        name = check_registered(assistant)      # "Assistant"

    Raises:
        AgentNotRegisteredError: ``agent`` is not registered, or another agent has its name.
    """
    if not isinstance(agent, Agent):
        raise WorkflowConfigurationError(
            f"agent must be an agents.Agent, not {type(agent).__name__}."
        )
    with _lock:
        registered = _agents.get(agent.name)
    if registered is agent:
        return agent.name
    if registered is None:
        raise AgentNotRegisteredError(
            f"Agent {agent.name!r} is not registered. Call register_agent(agent) at start-up "
            "(before ensure_dbos_launched()) so a worker that restarts can find it by name."
        )
    raise AgentNotRegisteredError(
        f"A different agent named {agent.name!r} is registered. Workflows find agents by name: "
        "register this one with register_agent(agent), or pass the registered one."
    )
