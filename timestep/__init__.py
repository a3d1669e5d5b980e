"""Timestep: durable OpenAI Agents.

Pause a run for human approval, save its state, resume it from any later process::

    from timestep import RunStateStore, run_agent

    result = await run_agent(agent, "clean up /tmp/x")
    if result.interruptions:
        await RunStateStore(agent=agent, session_id="ticket-42").save(result)
"""

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from .agent_store import StoredAgent, delete_agent, list_agents, load_agent, save_agent
from .config import Settings, load_settings
from .errors import (
    AgentDefinitionError,
    AgentMismatchError,
    AgentNotRegisteredError,
    ApprovalNotPendingError,
    ConfigurationError,
    DecisionConflictError,
    DuplicateWorkflowError,
    IncompatibleStateError,
    InterruptionException,
    ModelCallError,
    PluginError,
    QueueNotFoundError,
    SearchBackendError,
    SessionNotDurableError,
    SessionSettingsError,
    StateConflictError,
    StateCorruptedError,
    StateError,
    StateIntegrityError,
    StateNotFoundError,
    StateTooLargeError,
    StepError,
    StorageError,
    StorageUnavailableError,
    TimestepError,
    TraceNotFoundError,
    UnknownAgentError,
    UnknownGuardrailError,
    UnknownMCPServerError,
    UnknownModelPrefixError,
    UnknownOutputTypeError,
    UnknownSearchBackendError,
    UnknownToolError,
    UnregisteredNameError,
    UnsupportedSchemaError,
    WorkflowCancelledError,
    WorkflowConfigurationError,
    WorkflowError,
    WorkflowNotFoundError,
    WorkflowNotLaunchedError,
    WorkflowOwnerAliveError,
    WorkflowRunError,
)
from .hookspecs import hookimpl
from .observability import flush_tracing
from .registry import Registry, registry
from .routing import MultiModelProvider, MultiModelProviderMap
from .run import (
    aclose,
    consume_result,
    default_model_provider,
    default_result_processor,
    run_agent,
)
from .sessions import TimestepSession
from .state import RunStateStore
from .storage import StateBackend, StateStatus, StoredState
from .tools import SearchBackend, SearchResult, web_search, web_search_tool

if TYPE_CHECKING:  # precise types for checkers; at run time they load lazily (below)
    from .workflows import (
        AgentWorkflowHandle,
        AgentWorkflowResult,
        PendingApproval,
        WorkflowSettings,
        approve_workflow,
        cancel_agent_workflow,
        configure_dbos,
        create_scheduled_agent_workflow,
        dbos_settings,
        delete_scheduled_agent_workflow,
        ensure_dbos_launched,
        get_agent_workflow,
        list_agent_workflows,
        list_scheduled_agent_workflows,
        pending_approvals,
        queue_agent_workflow,
        register_agent,
        register_agent_queue,
        register_session_factory,
        registered_agents,
        resume_agent_workflow,
        run_agent_workflow,
        show_agent_workflow,
        shutdown_dbos,
        trigger_scheduled_agent_workflow,
        unregister_agent,
    )

try:
    __version__ = version("timestep")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = [
    "AgentDefinitionError",
    "AgentMismatchError",
    "AgentNotRegisteredError",
    "AgentWorkflowHandle",
    "AgentWorkflowResult",
    "ApprovalNotPendingError",
    "ConfigurationError",
    "DecisionConflictError",
    "DuplicateWorkflowError",
    "IncompatibleStateError",
    "InterruptionException",
    "ModelCallError",
    "MultiModelProvider",
    "MultiModelProviderMap",
    "PendingApproval",
    "PluginError",
    "QueueNotFoundError",
    "Registry",
    "RunStateStore",
    "SearchBackend",
    "SearchBackendError",
    "SearchResult",
    "SessionNotDurableError",
    "SessionSettingsError",
    "Settings",
    "StateBackend",
    "StateConflictError",
    "StateCorruptedError",
    "StateError",
    "StateIntegrityError",
    "StateNotFoundError",
    "StateStatus",
    "StateTooLargeError",
    "StepError",
    "StorageError",
    "StorageUnavailableError",
    "StoredAgent",
    "StoredState",
    "TimestepError",
    "TimestepSession",
    "TraceNotFoundError",
    "UnknownAgentError",
    "UnknownGuardrailError",
    "UnknownMCPServerError",
    "UnknownModelPrefixError",
    "UnknownOutputTypeError",
    "UnknownSearchBackendError",
    "UnknownToolError",
    "UnregisteredNameError",
    "UnsupportedSchemaError",
    "WorkflowCancelledError",
    "WorkflowConfigurationError",
    "WorkflowError",
    "WorkflowNotFoundError",
    "WorkflowNotLaunchedError",
    "WorkflowOwnerAliveError",
    "WorkflowRunError",
    "WorkflowSettings",
    "__version__",
    "aclose",
    "approve_workflow",
    "cancel_agent_workflow",
    "configure_dbos",
    "consume_result",
    "create_scheduled_agent_workflow",
    "dbos_settings",
    "default_model_provider",
    "default_result_processor",
    "delete_agent",
    "delete_scheduled_agent_workflow",
    "ensure_dbos_launched",
    "flush_tracing",
    "get_agent_workflow",
    "hookimpl",
    "list_agent_workflows",
    "list_agents",
    "list_scheduled_agent_workflows",
    "load_agent",
    "load_settings",
    "pending_approvals",
    "queue_agent_workflow",
    "register_agent",
    "register_agent_queue",
    "register_session_factory",
    "registered_agents",
    "registry",
    "resume_agent_workflow",
    "run_agent",
    "run_agent_workflow",
    "save_agent",
    "show_agent_workflow",
    "shutdown_dbos",
    "trigger_scheduled_agent_workflow",
    "unregister_agent",
    "web_search",
    "web_search_tool",
]

# Durable workflows import DBOS (~1 s), so they load on first use rather than with timestep.
_WORKFLOW_NAMES = (
    "AgentWorkflowHandle",
    "AgentWorkflowResult",
    "PendingApproval",
    "WorkflowSettings",
    "approve_workflow",
    "cancel_agent_workflow",
    "configure_dbos",
    "create_scheduled_agent_workflow",
    "dbos_settings",
    "delete_scheduled_agent_workflow",
    "ensure_dbos_launched",
    "get_agent_workflow",
    "list_agent_workflows",
    "list_scheduled_agent_workflows",
    "pending_approvals",
    "queue_agent_workflow",
    "register_agent",
    "register_agent_queue",
    "register_session_factory",
    "registered_agents",
    "resume_agent_workflow",
    "run_agent_workflow",
    "show_agent_workflow",
    "shutdown_dbos",
    "trigger_scheduled_agent_workflow",
    "unregister_agent",
)

# Names that optional plugin distributions provide, importable from here once installed.
_PLUGIN_NAMES = {
    "OllamaModel": ("timestep_ollama", "timestep-ollama"),
    "OllamaModelProvider": ("timestep_ollama", "timestep-ollama"),
}


def __getattr__(name: str) -> Any:
    """Load durable-workflow names on first use, and names that optional plugins provide
    (``from timestep import OllamaModelProvider``)."""
    if name in _WORKFLOW_NAMES:
        return getattr(importlib.import_module("timestep.workflows"), name)
    found = _PLUGIN_NAMES.get(name)
    if found is None:
        raise AttributeError(f"module 'timestep' has no attribute {name!r}")
    module_name, distribution = found
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name != module_name:
            raise
        raise ImportError(
            f"{name} comes with the {distribution} plugin, which is not installed: "
            f"pip install {distribution}",
            name=module_name,
        ) from None
    return getattr(module, name)
