"""What a state backend stores and the protocol every backend implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

__all__ = ["StateBackend", "StateRecord", "StateStatus", "StoredState"]


class StateStatus(StrEnum):
    """Where a saved run stands."""

    INTERRUPTED = "interrupted"
    """Paused: one or more tool calls wait for approval."""
    RUNNING = "running"
    """Saved mid-run (a checkpoint), resumable as is."""
    RESUMING = "resuming"
    """Decisions on its pending calls were claimed and a process is running them; other
    deciders are refused (see :mod:`timestep.claims`)."""
    COMPLETED = "completed"
    """Finished with a final output."""


@dataclass(frozen=True)
class StateRecord:
    """One run state as a backend writes it.

    ``state`` is the writer's native serialized form; ``sdk`` says which SDK wrote it
    (``"python"`` or ``"js"``) and ``schema_version`` is the ``$schemaVersion`` inside it.
    ``interruptions`` summarises the pending approvals (tool name, call id, arguments) so
    listings never have to parse ``state``.

    ``portable_state`` is the same state translated for the other SDK (``portable_sdk``, at
    ``portable_schema_version``), so a program in the other language resumes the run from this
    row; ``portable_error`` says why there is none when the state cannot be translated. A
    backend stores these four fields verbatim, written together with ``state``.

    ``signature`` is the row's HMAC (:mod:`timestep.integrity`) when ``TIMESTEP_STATE_KEY``
    is set; a backend stores it verbatim too.
    """

    agent_name: str
    session_id: str
    status: StateStatus
    sdk: str
    schema_version: str
    state: str
    current_agent: str | None = None
    interruptions: list[dict[str, Any]] = field(default_factory=list)
    portable_state: str | None = None
    portable_sdk: str | None = None
    portable_schema_version: str | None = None
    portable_error: str | None = None
    signature: str | None = None


@dataclass(frozen=True)
class StoredState(StateRecord):
    """A record as stored: with its id, row version and timestamps."""

    id: str = ""
    version: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None


@runtime_checkable
class StateBackend(Protocol):
    """Stores run states, one row per ``(agent_name, session_id)``.

    Writes are optimistic: ``save`` with ``expected_version=None`` only creates a row, with an
    int it only replaces the row still at that version, and otherwise raises
    :class:`timestep.StateConflictError`. ``overwrite=True`` skips the check. Every method is
    safe to call concurrently from several tasks and processes. Run
    ``timestep.testing.StateBackendConformance`` against a new backend to prove it.
    """

    url: str

    async def save(
        self, record: StateRecord, *, expected_version: int | None, overwrite: bool = False
    ) -> StoredState:
        """Write ``record`` in one transaction and return it as stored (version bumped)."""
        ...

    async def load(self, agent_name: str, session_id: str) -> StoredState | None:
        """The stored row for this agent and session, or ``None``. Never modifies anything."""
        ...

    async def get(self, state_id: str) -> StoredState | None:
        """The stored row with this id, or ``None``."""
        ...

    async def delete(self, agent_name: str, session_id: str) -> bool:
        """Remove the row; ``True`` if there was one."""
        ...

    async def list(
        self,
        *,
        status: StateStatus | None = None,
        agent_name: str | None = None,
        session_id: str | None = None,
        limit: int = 100,
    ) -> list[StoredState]:
        """Rows matching every given filter, most recently updated first."""
        ...

    async def close(self) -> None:
        """Release connections. The backend may be used again afterwards (it reconnects)."""
        ...
