"""Every error Timestep raises on purpose.

All of them derive from :class:`TimestepError`, so ``except TimestepError`` catches exactly the
failures Timestep knows how to explain. Each message names what went wrong and how to fix it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agents import RunState

__all__ = [
    "AgentMismatchError",
    "ConfigurationError",
    "InterruptionException",
    "PluginError",
    "StateConflictError",
    "StateCorruptedError",
    "StateError",
    "StateNotFoundError",
    "StorageError",
    "StorageUnavailableError",
    "TimestepError",
    "UnknownModelPrefixError",
    "UnsupportedSchemaError",
]


class TimestepError(Exception):
    """Base class of every error Timestep raises deliberately."""


class ConfigurationError(TimestepError, ValueError):
    """A setting is malformed: a database URL, a config file, an environment variable."""


class PluginError(TimestepError):
    """A plugin could not be loaded or registered something invalid.

    ``plugin`` names the entry point or module at fault.
    """

    def __init__(self, message: str, *, plugin: str) -> None:
        super().__init__(message)
        self.plugin = plugin


class UnknownModelPrefixError(TimestepError, LookupError):
    """A model name uses a ``prefix/`` that no installed provider handles."""


class StorageError(TimestepError):
    """The storage backend failed in a way that is not the caller's input."""


class StorageUnavailableError(StorageError):
    """The database could not be reached; nothing was written."""


class StateError(TimestepError):
    """A stored run state cannot be used. ``session_id`` names the run it belongs to."""

    def __init__(self, message: str, *, session_id: str | None = None) -> None:
        super().__init__(message)
        self.session_id = session_id


class StateNotFoundError(StateError, LookupError):
    """No state is stored for this agent and session."""


class StateCorruptedError(StateError):
    """The stored payload is not a readable run state (truncated, edited, or not JSON)."""


class UnsupportedSchemaError(StateError):
    """The state was written in a format (``$schemaVersion`` or SDK) this install cannot read."""


class AgentMismatchError(StateError):
    """The state refers to agents that are not in the agent graph it is being loaded with."""


class StateConflictError(StateError):
    """Another writer saved this session first; saving now would silently overwrite its work.

    ``expected_version`` is the row version this writer last saw (``None``: it saw no row) and
    ``actual_version`` the version now stored (``None``: the row is gone).
    """

    def __init__(
        self,
        message: str,
        *,
        session_id: str | None = None,
        expected_version: int | None = None,
        actual_version: int | None = None,
    ) -> None:
        super().__init__(message, session_id=session_id)
        self.expected_version = expected_version
        self.actual_version = actual_version


class InterruptionException(TimestepError):
    """Raised by ``run_agent(..., raise_on_interruption=True)`` when the run pauses.

    It carries what a handler needs to save and later resume the run::

        try:
            await run_agent(agent, "clean up", raise_on_interruption=True)
        except InterruptionException as paused:
            await store.save(paused.state)
    """

    def __init__(self, state: RunState[Any, Any], interruptions: list[Any]) -> None:
        names = ", ".join(sorted({str(getattr(i, "tool_name", "?")) for i in interruptions}))
        super().__init__(
            f"The run paused: {len(interruptions)} tool call(s) need approval ({names}). "
            "Save `.state` with RunStateStore, approve or reject, then call run_agent with it."
        )
        self.state = state
        self.interruptions = interruptions
