"""Timestep: durable OpenAI Agents.

Pause a run for human approval, save its state, resume it from any later process::

    from timestep import RunStateStore, run_agent

    result = await run_agent(agent, "clean up /tmp/x")
    if result.interruptions:
        await RunStateStore(agent=agent, session_id="ticket-42").save(result)
"""

from importlib.metadata import PackageNotFoundError, version

from .config import Settings, load_settings
from .errors import (
    AgentMismatchError,
    ConfigurationError,
    InterruptionException,
    PluginError,
    StateConflictError,
    StateCorruptedError,
    StateError,
    StateNotFoundError,
    StorageError,
    StorageUnavailableError,
    TimestepError,
    UnknownModelPrefixError,
    UnsupportedSchemaError,
)
from .hookspecs import hookimpl
from .routing import MultiModelProvider, MultiModelProviderMap
from .run import consume_result, default_model_provider, default_result_processor, run_agent
from .state import RunStateStore
from .storage import StateBackend, StateStatus, StoredState

try:
    __version__ = version("timestep")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = [
    "AgentMismatchError",
    "ConfigurationError",
    "InterruptionException",
    "MultiModelProvider",
    "MultiModelProviderMap",
    "PluginError",
    "RunStateStore",
    "Settings",
    "StateBackend",
    "StateConflictError",
    "StateCorruptedError",
    "StateError",
    "StateNotFoundError",
    "StateStatus",
    "StorageError",
    "StorageUnavailableError",
    "StoredState",
    "TimestepError",
    "UnknownModelPrefixError",
    "UnsupportedSchemaError",
    "__version__",
    "consume_result",
    "default_model_provider",
    "default_result_processor",
    "hookimpl",
    "load_settings",
    "run_agent",
]
