"""Every error Timestep raises on purpose.

All of them derive from :class:`TimestepError`, so ``except TimestepError`` catches exactly the
failures Timestep knows how to explain. Each message names what went wrong and how to fix it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import datetime

    from agents import RunState

__all__ = [
    "AgentDefinitionError",
    "AgentMismatchError",
    "AgentNotRegisteredError",
    "ApprovalNotPendingError",
    "ConfigurationError",
    "DecisionConflictError",
    "DuplicateWorkflowError",
    "IncompatibleStateError",
    "InterruptionException",
    "ModelCallError",
    "PluginError",
    "QueueNotFoundError",
    "SearchBackendError",
    "SessionNotDurableError",
    "SessionSettingsError",
    "StateConflictError",
    "StateCorruptedError",
    "StateError",
    "StateIntegrityError",
    "StateNotFoundError",
    "StateTooLargeError",
    "StepError",
    "StorageError",
    "StorageUnavailableError",
    "TimestepError",
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
]


class TimestepError(Exception):
    """Base class of every error Timestep raises deliberately."""


class ConfigurationError(TimestepError, ValueError):
    """A setting is malformed: a database URL, a config file, an environment variable."""


class SessionSettingsError(ConfigurationError, TypeError):
    """``session_settings`` is not a ``SessionSettings``, or a dict with unknown keys or bad values.

    Also a ``TypeError``, as the SDK's sessions raise for the same input, and a ``ValueError``
    (as every :class:`ConfigurationError`), as the SDK raises for a bad value.
    """


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
    """The database could not be reached.

    The message says whether anything may have been written: usually "nothing was written";
    for a save whose connection died mid-statement, "may or may not have been written" (load
    the state to see which).
    """


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


class StateIntegrityError(StateError):
    """A stored state failed its signature check: it was changed, or written, without the key.

    Raised on load when ``TIMESTEP_STATE_KEY`` is set and the row's HMAC signature is missing
    or does not match, so approvals edited outside Timestep are never resumed as if a human
    gave them. Nothing stored is changed.
    """


class StateTooLargeError(StateError, ValueError):
    """A run state is larger than the configured limit (``TIMESTEP_MAX_STATE_BYTES``).

    ``size`` and ``limit`` are in bytes of the serialized (UTF-8 JSON) state.
    """

    def __init__(
        self, message: str, *, size: int, limit: int, session_id: str | None = None
    ) -> None:
        super().__init__(message, session_id=session_id)
        self.size = size
        self.limit = limit


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


class DecisionConflictError(StateConflictError):
    """A decision on a paused run's tool call was refused: a different one was made first.

    Decisions are final: the first one claimed for a call wins. ``call_id`` names the call,
    ``decision`` what the winner decided (``"approved"`` or ``"rejected"``), ``decided_by``
    who (``None`` when unnamed) and ``decided_at`` when (UTC). Raised by ``run_agent`` on a
    state loaded from a :class:`~timestep.RunStateStore` that another decider claimed first
    (nothing of this decider's ran), and by ``approve_workflow`` for a different decision
    (the same one again is simply acknowledged)::

        try:
            result = await run_agent(agent, state)
        except DecisionConflictError as taken:
            print(f"{taken.call_id} was already {taken.decision} at {taken.decided_at}")
    """

    def __init__(
        self,
        message: str,
        *,
        session_id: str | None = None,
        expected_version: int | None = None,
        actual_version: int | None = None,
        call_id: str | None = None,
        decision: str | None = None,
        decided_by: str | None = None,
        decided_at: datetime | None = None,
    ) -> None:
        super().__init__(
            message,
            session_id=session_id,
            expected_version=expected_version,
            actual_version=actual_version,
        )
        self.call_id = call_id
        self.decision = decision
        self.decided_by = decided_by
        self.decided_at = decided_at


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


class WorkflowError(TimestepError):
    """A durable agent workflow (``timestep.workflows``) cannot do what was asked.

    ``workflow_id`` names the workflow when there is one.
    """

    def __init__(self, message: str, *, workflow_id: str | None = None) -> None:
        super().__init__(message)
        self.workflow_id = workflow_id


class WorkflowConfigurationError(WorkflowError, ConfigurationError):
    """A workflow setting or argument is invalid: database URL, name, priority, cron, queue."""


class WorkflowNotLaunchedError(WorkflowError):
    """The call needs the workflow engine running: call ``ensure_dbos_launched()`` first."""


class AgentNotRegisteredError(WorkflowError, LookupError):
    """No agent of that name is registered; call ``register_agent(agent)`` at start-up."""


class SessionNotDurableError(WorkflowError):
    """The session cannot be re-created after a restart (in-memory, or no factory for its type)."""


class WorkflowNotFoundError(WorkflowError, LookupError):
    """No workflow with this id exists in the workflow database."""


class WorkflowOwnerAliveError(WorkflowError):
    """The run is executing on a live worker; resuming it would run it twice.

    ``executor_id`` names that worker. Wait for it, cancel the run first, or force the resume.
    """

    def __init__(self, message: str, *, workflow_id: str, executor_id: str) -> None:
        super().__init__(message, workflow_id=workflow_id)
        self.executor_id = executor_id


class ApprovalNotPendingError(WorkflowError):
    """The workflow is not waiting for the approval being given (or not for that call id)."""


class WorkflowCancelledError(WorkflowError):
    """The durable run was cancelled; a caller awaiting its result gets this instead.

    ``resume_agent_workflow(workflow_id)`` carries a cancelled run on from its last step.
    """


class DuplicateWorkflowError(WorkflowError):
    """A queued run with the same ``deduplication_id`` is still enqueued or running."""


class QueueNotFoundError(WorkflowError, LookupError):
    """The queue was never registered; call ``register_agent_queue(name, ...)`` first."""


class AgentDefinitionError(TimestepError, ValueError):
    """An agent cannot be stored as is, or a stored definition is damaged.

    ``agent`` names the agent and the message the field at fault.
    """

    def __init__(self, message: str, *, agent: str | None = None) -> None:
        super().__init__(message)
        self.agent = agent


class UnknownAgentError(TimestepError, LookupError):
    """No stored agent has this name or id."""


class UnregisteredNameError(TimestepError, LookupError):
    """A stored agent refers to something (``kind``) by a ``name`` nobody registered here."""

    kind = "component"

    def __init__(self, message: str, *, name: str, agent: str | None = None) -> None:
        super().__init__(message)
        self.name = name
        self.agent = agent


class UnknownToolError(UnregisteredNameError):
    """A stored agent's tool is not registered in this process."""

    kind = "tool"


class UnknownGuardrailError(UnregisteredNameError):
    """A stored agent's guardrail is not registered in this process."""

    kind = "guardrail"


class UnknownOutputTypeError(UnregisteredNameError):
    """A stored agent's output type is not registered in this process."""

    kind = "output type"


class UnknownMCPServerError(UnregisteredNameError):
    """A stored agent's MCP server is not registered in this process."""

    kind = "MCP server"


class SearchBackendError(TimestepError):
    """A web search backend failed: HTTP error, timeout, rejected key, bad response.

    Backends raise it with a short message that is safe to show the model (never a key); the
    ``web_search`` tool returns that message to the model and logs a warning, so the run goes on::

        raise SearchBackendError("Firecrawl rejected the API key (HTTP 401)")
    """


class UnknownSearchBackendError(ConfigurationError, LookupError):
    """The configured web search backend name is not registered by any installed plugin.

    ``name`` is the name asked for and ``available`` the registered ones::

        web_search_tool(backend="bing")   # raises: registered backends are 'firecrawl'
    """

    def __init__(self, message: str, *, name: str, available: list[str]) -> None:
        super().__init__(message)
        self.name = name
        self.available = available


class WorkflowRunError(WorkflowError):
    """The agent run inside a workflow failed with an error that cannot be stored as it is.

    DBOS stores a failed workflow's exception so every process sees the same outcome; SDK
    errors that carry agents or closures (a guardrail tripwire, for one) cannot be stored, so
    they arrive as this error. ``error_type`` names the original exception class.
    """

    def __init__(
        self, message: str, *, workflow_id: str | None = None, error_type: str | None = None
    ) -> None:
        super().__init__(message, workflow_id=workflow_id)
        self.error_type = error_type


class IncompatibleStateError(StateError):
    """A saved run state uses something the other Agents SDK cannot express.

    Raised when translating a state between the Python and JS SDKs (``timestep.interop``) meets
    an item, tool or setting with no counterpart on the other side, such as a hosted tool one
    SDK lacks. Nothing is dropped silently: ``item`` names what could not be translated (e.g.
    ``"generated_items[4] (computer_call)"``).
    """

    def __init__(self, message: str, *, item: str, session_id: str | None = None) -> None:
        super().__init__(message, session_id=session_id)
        self.item = item


class TraceNotFoundError(TimestepError, LookupError):
    """Nothing was recorded for a trace id, run id or session (``timestep traces export``).

    ``ident`` is the id asked for. Traces are only recorded with ``TIMESTEP_TRACING=db`` (or
    ``all``).
    """

    def __init__(self, message: str, *, ident: str) -> None:
        super().__init__(message)
        self.ident = ident


class StepError(WorkflowRunError):
    """A step of a durable run (a tool, a guardrail) failed; what it raised is kept scrubbed.

    DBOS stores what a step raises, pickled, in its own tables, so every process (and every
    replay) sees the same failure. An exception as raised can carry secrets: an
    ``httpx.HTTPStatusError`` holds its request, ``Authorization`` header included, and a
    message can quote a URL with its password. Such an error is stored as this one instead:
    ``step`` names the step (``"timestep.tool:lookup"``), ``error_type`` the original class,
    ``status_code`` its HTTP status when it had one, and the message is the original's with
    keys, bearer tokens and URL passwords replaced by ``[REDACTED]``::

        except StepError as failed:
            print(failed.step, failed.error_type, failed.status_code, failed)
    """

    def __init__(
        self,
        message: str,
        *,
        workflow_id: str | None = None,
        error_type: str | None = None,
        step: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message, workflow_id=workflow_id, error_type=error_type)
        self.step = step
        self.status_code = status_code


class ModelCallError(StepError):
    """A durable run's model call failed (HTTP 401, 500, connection refused, timeout...).

    What the model client raised holds the request, API key included; DBOS would store it.
    This error keeps what callers and the SDK's retry logic need and nothing of the request:
    ``status_code``, ``provider`` and ``model`` (when known), ``code`` and ``request_id``
    from the provider's answer, ``retry_after`` (seconds), ``headers`` (only the retry
    headers: ``retry-after``, ``retry-after-ms``, ``x-should-retry``), whether it was a
    network error or a timeout, and the scrubbed message::

        try:
            await run_agent_workflow(agent, "hi", workflow_id="order-7")
        except ModelCallError as failed:
            if failed.status_code == 401:
                print("check OPENAI_API_KEY:", failed)
    """

    def __init__(
        self,
        message: str,
        *,
        workflow_id: str | None = None,
        error_type: str | None = None,
        step: str | None = "timestep.model",
        status_code: int | None = None,
        provider: str | None = None,
        model: str | None = None,
        code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
        is_network_error: bool = False,
        is_timeout: bool = False,
        unsafe_to_replay: bool = False,
    ) -> None:
        super().__init__(
            message,
            workflow_id=workflow_id,
            error_type=error_type,
            step=step,
            status_code=status_code,
        )
        self.provider = provider
        self.model = model
        self.code = code
        self.request_id = request_id
        self.retry_after = retry_after
        self.headers = dict(headers or {})
        self.is_network_error = is_network_error
        self.is_timeout = is_timeout
        self.unsafe_to_replay = unsafe_to_replay
