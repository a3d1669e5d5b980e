"""A third-party plugin as a user would write one: a model prefix and a storage scheme.

- ``Agent(model="example/NAME")`` (or ``acme/NAME``) answers ``"NAME heard: <last message>"``.
- ``memory://NAME`` URLs store run states in this process's memory.
- the ``shout`` tool, found by name when a stored agent is loaded.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, ClassVar

from agents import Model, ModelProvider, function_tool
from agents.testing import ModelStep, ScriptedModel, assistant_message

import timestep
from timestep.storage import StateRecord, StateStatus, StoredState


class EchoProvider(ModelProvider):
    def get_model(self, model_name: str | None) -> Model:
        def reply(call: Any) -> list[Any]:
            said = call.input if isinstance(call.input, str) else call.input[-1]["content"]
            return [assistant_message(f"{model_name} heard: {said}")]

        return ScriptedModel([ModelStep.respond(reply)])


class MemoryBackend:
    """Run states in a dict shared by every backend of the same URL in this process."""

    _databases: ClassVar[dict[str, dict[tuple[str, str], StoredState]]] = {}

    def __init__(self, url: str) -> None:
        self.url = url
        self._rows = self._databases.setdefault(url, {})
        self._lock = asyncio.Lock()

    async def save(
        self, record: StateRecord, *, expected_version: int | None, overwrite: bool = False
    ) -> StoredState:
        key = (record.agent_name, record.session_id)
        async with self._lock:
            current = self._rows.get(key)
            actual = current.version if current else None
            if not overwrite and actual != expected_version:
                raise timestep.StateConflictError(
                    f"memory row {key} is at version {actual}, not {expected_version}",
                    session_id=record.session_id,
                    expected_version=expected_version,
                    actual_version=actual,
                )
            await asyncio.sleep(0)  # let racing writers interleave, as a real database would
            now = datetime.now(UTC)
            stored = StoredState(
                **record.__dict__,
                id=current.id if current else uuid.uuid4().hex,
                version=(actual or 0) + 1,
                created_at=current.created_at if current else now,
                updated_at=now,
            )
            self._rows[key] = stored
            return stored

    async def load(self, agent_name: str, session_id: str) -> StoredState | None:
        return self._rows.get((agent_name, session_id))

    async def get(self, state_id: str) -> StoredState | None:
        return next((r for r in self._rows.values() if r.id == state_id), None)

    async def delete(self, agent_name: str, session_id: str) -> bool:
        return self._rows.pop((agent_name, session_id), None) is not None

    async def list(
        self,
        *,
        status: StateStatus | None = None,
        agent_name: str | None = None,
        session_id: str | None = None,
        limit: int = 100,
    ) -> list[StoredState]:
        rows = [
            replace(r)
            for r in self._rows.values()
            if (status is None or r.status == status)
            and (agent_name is None or r.agent_name == agent_name)
            and (session_id is None or r.session_id == session_id)
        ]
        rows.sort(key=lambda r: r.updated_at or datetime.min.replace(tzinfo=UTC), reverse=True)
        return rows[:limit]

    async def close(self) -> None:
        return None


@timestep.hookimpl
def register_model_providers(register: Callable[[str, Any], None]) -> None:
    register("example", EchoProvider)
    register("acme", EchoProvider)


@timestep.hookimpl
def register_state_backends(register: Callable[[str, Any], None]) -> None:
    register("memory", MemoryBackend)


@function_tool
def shout(text: str) -> str:
    """Say ``text`` loudly."""
    return text.upper()


@timestep.hookimpl
def register_tools(register: Callable[[Any], None]) -> None:
    register(shout)
