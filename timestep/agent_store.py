"""Stored agents: save an agent graph to the database, rebuild it in any other process.

What is stored is a definition: static instructions, the model name and settings, and the names
of tools, guardrails, the output type and MCP servers. Functions are never pickled; on load each
name is resolved through :data:`timestep.registry` (``registry.add(...)`` or a plugin's
``register_tools`` / ``register_guardrails``). Handoffs are stored as references to other stored
agents, so a graph with cycles round-trips.

Example::

    await save_agent(assistant)                  # the assistant and every agent it hands off to

    # another process, after registry.add(get_weather) or with the plugin installed
    assistant = await load_agent("Assistant")
    result = await run_agent(assistant, "What's the weather in Berkeley?")

Saving the same agent again stores a new version only when its definition changed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agents import Agent, ModelSettings, handoff
from agents.handoffs import Handoff
from sqlalchemy import insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from .errors import AgentDefinitionError, UnknownAgentError
from .identifiers import check_identifier
from .observability.redaction import contains_secret, is_credential_name
from .registry import Registry, registry
from .storage import SQLStateBackend, get_backend
from .storage.schema import agent_versions, agents

__all__ = ["FORMAT", "StoredAgent", "delete_agent", "list_agents", "load_agent", "save_agent"]

FORMAT = "timestep.agent/1"
_BEHAVIOURS = {"run_llm_again", "stop_on_first_tool"}
_FIELDS = {
    "name",
    "instructions",
    "handoff_description",
    "prompt",
    "model",
    "model_settings",
    "output_type",
    "tools",
    "input_guardrails",
    "output_guardrails",
    "mcp_servers",
    "mcp_config",
    "handoffs",
    "tool_use_behavior",
    "reset_tool_choice",
}


@dataclass(frozen=True)
class StoredAgent:
    """A stored agent definition and its bookkeeping."""

    id: str
    name: str
    version: int
    definition: dict[str, Any]
    created_at: datetime
    updated_at: datetime


async def save_agent(agent: Agent[Any], *, url: str | None = None) -> StoredAgent:
    """Store ``agent`` and every agent reachable through its handoffs, in one transaction.

    Tools, guardrails, output types and MCP servers not yet in :data:`timestep.registry` are
    added to it, so this process can load what it saved; another process must register them
    too (the error on load says which).

    Raises:
        AgentDefinitionError: a field cannot be stored by name (callable instructions, a
            ``Model`` object instead of a model name, hooks, handoff callbacks), or the model
            settings hold a credential (an ``Authorization`` header, an ``api_key``, ...).
    """
    graph = _walk(agent)
    for name in graph:
        check_identifier(name, "The agent name", AgentDefinitionError)
    definitions = {name: _define(member, registry) for name, member in graph.items()}
    now = datetime.now(UTC)
    async with _backend(url).transaction() as conn:
        stored = {name: await _upsert(conn, d, now) for name, d in definitions.items()}
    return stored[agent.name]


async def load_agent(
    name_or_id: str, *, url: str | None = None, version: int | None = None
) -> Agent[Any]:
    """Rebuild a stored agent, with its handoffs, from its name or id.

    ``version`` picks an older definition of the named agent (handoff targets are always at
    their latest version).

    Raises:
        UnknownAgentError: nothing is stored under that name or id.
        UnregisteredNameError: a tool, guardrail, output type or MCP server it names is not
            registered here (the subclass says which kind).
        AgentDefinitionError: the stored definition is damaged.
    """
    async with _backend(url).transaction() as conn:
        root = await _fetch(conn, name_or_id, version)
        definitions = {root["name"]: root}
        pending = [root]
        while pending:
            for target in _handoff_targets(pending.pop()):
                if target not in definitions:
                    definitions[target] = await _fetch(conn, target, None, referrer=root["name"])
                    pending.append(definitions[target])
    built = {name: _build(definition) for name, definition in definitions.items()}
    for name, definition in definitions.items():
        built[name].handoffs = [_build_handoff(h, built) for h in definition["handoffs"]]
    return built[root["name"]]


async def list_agents(*, url: str | None = None) -> list[StoredAgent]:
    """Every stored agent at its latest version, by name."""
    async with _backend(url).transaction() as conn:
        rows = (await conn.execute(select(agents).order_by(agents.c.name))).all()
    return [_stored(row._mapping, json.loads(row.definition)) for row in rows]


async def delete_agent(name: str, *, url: str | None = None) -> bool:
    """Delete a stored agent and its history; ``True`` if it existed."""
    async with _backend(url).transaction() as conn:
        result = await conn.execute(agents.delete().where(agents.c.name == name))
    return bool(result.rowcount)


def _backend(url: str | None) -> SQLStateBackend:
    backend = get_backend(url)
    if not isinstance(backend, SQLStateBackend):
        raise AgentDefinitionError(
            f"Stored agents live in PostgreSQL or SQLite; {backend!r} cannot hold them. "
            "Pass a postgresql:// or sqlite:/// URL."
        )
    return backend


def _walk(root: Agent[Any]) -> dict[str, Agent[Any]]:
    found: dict[str, Agent[Any]] = {}
    stack = [root]
    while stack:
        agent = stack.pop()
        previous = found.get(agent.name)
        if previous is not None:
            if previous is not agent:
                raise AgentDefinitionError(
                    f"Two different agents are named {agent.name!r} in this graph; stored "
                    "agents are found by name, so give each a unique name.",
                    agent=agent.name,
                )
            continue
        found[agent.name] = agent
        for item in agent.handoffs:
            target = _handoff_agent(item, agent.name)
            if target is not None:
                stack.append(target)
    return found


def _handoff_agent(item: Agent[Any] | Handoff[Any, Any], owner: str) -> Agent[Any] | None:
    if isinstance(item, Agent):
        return item
    target = item._agent_ref() if item._agent_ref is not None else None
    if target is None:
        raise AgentDefinitionError(
            f"Agent {owner!r} hands off to {item.agent_name!r}, which no longer exists in this "
            "process; keep a reference to the target agent while saving.",
            agent=owner,
        )
    return target if isinstance(target, Agent) else None


def _define(agent: Agent[Any], names: Registry) -> dict[str, Any]:
    """The storable definition of one agent (handoffs by name)."""

    def refuse(field: str, why: str) -> AgentDefinitionError:
        return AgentDefinitionError(
            f"Agent {agent.name!r} cannot be stored: {field} {why}.", agent=agent.name
        )

    if agent.instructions is not None and not isinstance(agent.instructions, str):
        raise refuse("instructions", "are a function; store static text instead")
    if agent.model is not None and not isinstance(agent.model, str):
        raise refuse(
            "model", "is a Model object; use a model name (e.g. 'gpt-4.1' or 'ollama/llama3')"
        )
    if agent.hooks is not None:
        raise refuse("hooks", "cannot be stored; attach them after load_agent()")
    if agent.prompt is not None and not isinstance(agent.prompt, dict):
        raise refuse("prompt", "is dynamic; store a static prompt mapping instead")
    behaviour = agent.tool_use_behavior
    if not (behaviour in _BEHAVIOURS or isinstance(behaviour, dict)):
        raise refuse("tool_use_behavior", "is a function; use a string or StopAtTools")

    def named(kind: str, value: Any) -> dict[str, str]:
        name, source = names.describe(kind, value)
        return {"name": name, "source": source}

    output_type = agent.output_type
    if output_type is not None and not isinstance(output_type, type):
        raise refuse("output_type", "is a schema object; use a class registered by name")
    model_settings = {k: v for k, v in agent.model_settings.to_json_dict().items() if v is not None}
    credential = _credential_in(model_settings, "model_settings")
    if credential is not None:
        # Anyone who can read the database can read a definition, so a key never goes in it.
        setting = credential.removeprefix("model_settings.").partition("[")[0]
        raise refuse(
            credential,
            "holds a credential, and stored definitions are readable by anyone with access "
            "to the database. Save the agent without it and add it back after load_agent() "
            "(agent.model_settings = agent.model_settings.resolve(ModelSettings("
            f"{setting}={{...}}))), or give the key to the model provider instead "
            "(OPENAI_API_KEY, a provider's api_key=)",
        )
    return {
        "format": FORMAT,
        "name": agent.name,
        "instructions": agent.instructions,
        "handoff_description": agent.handoff_description,
        "prompt": agent.prompt,
        "model": agent.model,
        "model_settings": model_settings,
        "output_type": None if output_type is None else named("output_type", output_type),
        "tools": [named("tool", tool) for tool in agent.tools],
        "input_guardrails": [named("guardrail", g) for g in agent.input_guardrails],
        "output_guardrails": [named("guardrail", g) for g in agent.output_guardrails],
        "mcp_servers": [named("mcp_server", server) for server in agent.mcp_servers],
        "mcp_config": dict(agent.mcp_config),
        "handoffs": [_define_handoff(agent.name, item) for item in agent.handoffs],
        "tool_use_behavior": behaviour,
        "reset_tool_choice": agent.reset_tool_choice,
    }


def _credential_in(value: Any, path: str, *, depth: int = 0) -> str | None:
    """Where in ``value`` (JSON-like) a credential sits, e.g.
    ``"model_settings.extra_headers['Authorization']"``; ``None`` when nowhere."""
    if isinstance(value, str):
        return path if contains_secret(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if depth == 0 else f"{path}[{key!r}]"
            empty = item is None or item == "" or isinstance(item, bool)
            if not empty and is_credential_name(str(key)):
                return where
            found = _credential_in(item, where, depth=depth + 1)
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _credential_in(item, f"{path}[{index}]", depth=depth + 1)
            if found is not None:
                return found
    return None


def _define_handoff(owner: str, item: Agent[Any] | Handoff[Any, Any]) -> dict[str, Any]:
    if isinstance(item, Agent):
        return {"agent": item.name}
    default = handoff(Agent(name=item.agent_name))
    if item.input_filter is not None or item.input_json_schema != default.input_json_schema:
        raise AgentDefinitionError(
            f"Agent {owner!r} cannot be stored: its handoff to {item.agent_name!r} has an "
            "input_type or input_filter, which are functions. Store a plain handoff and add "
            "those after load_agent().",
            agent=owner,
        )
    return {
        "agent": item.agent_name,
        "tool_name": item.tool_name,
        "tool_description": item.tool_description,
    }


async def _upsert(conn: AsyncConnection, definition: dict[str, Any], now: datetime) -> StoredAgent:
    text = json.dumps(definition, sort_keys=True)
    current = (
        await conn.execute(select(agents).where(agents.c.name == definition["name"]))
    ).first()
    if current is not None and current.definition == text:
        return _stored(current._mapping, definition)
    if current is None:
        values = {
            "id": uuid.uuid4().hex,
            "name": definition["name"],
            "version": 1,
            "created_at": now,
        }
        await conn.execute(insert(agents).values(**values, definition=text, updated_at=now))
    else:
        values = {**current._mapping, "version": current.version + 1}
        await conn.execute(
            agents.update()
            .where(agents.c.id == current.id)
            .values(version=values["version"], definition=text, updated_at=now)
        )
    await conn.execute(
        insert(agent_versions).values(
            agent_id=values["id"], version=values["version"], definition=text, created_at=now
        )
    )
    return _stored({**values, "name": definition["name"], "updated_at": now}, definition)


async def _fetch(
    conn: AsyncConnection, name_or_id: str, version: int | None, *, referrer: str | None = None
) -> dict[str, Any]:
    row = (
        await conn.execute(
            select(agents).where(or_(agents.c.name == name_or_id, agents.c.id == name_or_id))
        )
    ).first()
    if row is None:
        via = f" (a handoff target of {referrer!r})" if referrer else ""
        raise UnknownAgentError(
            f"No stored agent is named {name_or_id!r}{via}. Save it with save_agent(agent); "
            "list_agents() shows what is stored."
        )
    text = row.definition
    if version is not None and version != row.version:
        old = (
            await conn.execute(
                select(agent_versions.c.definition).where(
                    (agent_versions.c.agent_id == row.id) & (agent_versions.c.version == version)
                )
            )
        ).scalar_one_or_none()
        if old is None:
            raise UnknownAgentError(
                f"Stored agent {row.name!r} has no version {version} (latest: {row.version})."
            )
        text = old
    return _parse(row.name, text)


def _parse(name: str, text: str) -> dict[str, Any]:
    try:
        definition = json.loads(text)
    except json.JSONDecodeError:
        definition = None
    if (
        not isinstance(definition, dict)
        or definition.get("format") != FORMAT
        or not definition.keys() >= _FIELDS
        or definition["name"] != name
    ):
        raise AgentDefinitionError(
            f"The stored definition of agent {name!r} is damaged or in an unknown format. "
            "Save the agent again with save_agent(agent).",
            agent=name,
        )
    return definition


def _handoff_targets(definition: dict[str, Any]) -> list[str]:
    return [str(h["agent"]) for h in definition.get("handoffs", [])]


def _build(definition: dict[str, Any]) -> Agent[Any]:
    name = definition["name"]
    try:

        def resolve(kind: str) -> Callable[[dict[str, str]], Any]:
            return lambda ref: registry.resolve(kind, ref["name"], agent=name, hint=ref["source"])

        output_ref = definition["output_type"]
        return Agent(
            name=name,
            instructions=definition["instructions"],
            handoff_description=definition["handoff_description"],
            prompt=definition["prompt"],
            model=definition["model"],
            model_settings=ModelSettings(**definition["model_settings"]),
            output_type=None if output_ref is None else resolve("output_type")(output_ref),
            tools=[resolve("tool")(ref) for ref in definition["tools"]],
            input_guardrails=[resolve("guardrail")(ref) for ref in definition["input_guardrails"]],
            output_guardrails=[
                resolve("guardrail")(ref) for ref in definition["output_guardrails"]
            ],
            mcp_servers=[resolve("mcp_server")(ref) for ref in definition["mcp_servers"]],
            mcp_config=definition["mcp_config"],
            tool_use_behavior=definition["tool_use_behavior"],
            reset_tool_choice=definition["reset_tool_choice"],
        )
    except (KeyError, TypeError, ValueError) as error:
        raise AgentDefinitionError(
            f"The stored definition of agent {name!r} is damaged ({type(error).__name__}: "
            f"{error}). Save the agent again with save_agent(agent).",
            agent=name,
        ) from None


def _build_handoff(ref: dict[str, Any], built: dict[str, Agent[Any]]) -> Any:
    target = built[ref["agent"]]
    if "tool_name" not in ref:
        return target
    return handoff(
        target,
        tool_name_override=ref["tool_name"],
        tool_description_override=ref["tool_description"],
    )


def _stored(row: Any, definition: dict[str, Any]) -> StoredAgent:
    return StoredAgent(
        id=row["id"],
        name=row["name"],
        version=row["version"],
        definition=definition,
        created_at=_utc(row["created_at"]),
        updated_at=_utc(row["updated_at"]),
    )


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
