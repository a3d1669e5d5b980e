"""RunStateStore: save a paused run, load it in any later process, resume it.

Example::

    store = RunStateStore(agent=agent, session_id="ticket-42")
    result = await run_agent(agent, "clean up /tmp/x")
    if result.interruptions:
        await store.save(result)            # or result.to_state()

    # later, anywhere
    state = await store.load()
    for item in state.get_interruptions():
        state.approve(item)
    result = await run_agent(agent, state)   # claims the decisions first (timestep.claims)
    await store.save(result)

Several people may load the same pause and decide at once: the first decision claimed on the
row wins, and every other decider's ``run_agent`` raises :class:`~timestep.DecisionConflictError`
before any tool of theirs runs.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from agents import Agent, RunResult, RunResultStreaming, RunState
from agents.handoffs import Handoff
from agents.run_state import CURRENT_SCHEMA_VERSION, SUPPORTED_SCHEMA_VERSIONS

from .claims import attach_claim, claim_of
from .config import load_settings, parse_size, redact_url
from .errors import (
    AgentMismatchError,
    ConfigurationError,
    DecisionConflictError,
    StateConflictError,
    StateCorruptedError,
    StateIntegrityError,
    StateNotFoundError,
    StateTooLargeError,
    UnsupportedSchemaError,
)
from .identifiers import check_identifier
from .integrity import StateSigner
from .interop import JS_SDK, describe, portable_form, translate_run
from .interop import PYTHON_SDK as _PYTHON
from .storage import (
    JSONFileBackend,
    StateBackend,
    StateRecord,
    StateStatus,
    StoredState,
    backend_factory,
)
from .storage import get_backend as _get_backend

__all__ = ["RunStateStore", "pending_in"]

PYTHON_SDK = "python"


class RunStateStore:
    """Saves and loads the ``RunState`` of one agent's run in one session.

    The state lives in the database Timestep is configured for (embedded SQLite unless
    ``url``, ``TIMESTEP_DB_URL`` or ``PG_CONNECTION_URI`` says otherwise), one row per agent
    and session. Writes are optimistic: a save builds on the version this store last loaded
    or saved, and if another writer got there first it raises
    :class:`~timestep.StateConflictError` instead of overwriting.

    ``RunStateStore("agent_state.json", agent)`` keeps the state in that JSON file instead.

    With a signing key (``TIMESTEP_STATE_KEY`` or ``state_key=``) every save is signed and
    every load verified, so a state edited outside Timestep (say, an approval forged in the
    database) raises :class:`~timestep.StateIntegrityError` instead of being resumed.

    Args:
        file_path: Keep the state in this JSON file rather than a database.
        agent: The starting agent of the run; the state is rebuilt against its graph.
        session_id: Which run; generated (see :attr:`session_id`) when omitted.
        url: Database URL; overrides the environment and config files.
        backend: A ready :class:`~timestep.storage.StateBackend`, e.g. from a plugin.
        max_state_bytes: Largest state to save or load (an int or e.g. ``"16MiB"``); default
            ``TIMESTEP_MAX_STATE_BYTES`` or 64 MiB.
        state_key: Sign and verify states with this key (default ``TIMESTEP_STATE_KEY``).
    """

    def __init__(
        self,
        file_path: str | os.PathLike[str] | Agent[Any] | None = None,
        agent: Agent[Any] | None = None,
        *,
        session_id: str | None = None,
        url: str | None = None,
        backend: StateBackend | None = None,
        max_state_bytes: int | str | None = None,
        state_key: str | None = None,
    ) -> None:
        if isinstance(file_path, Agent):
            if agent is not None:
                raise ConfigurationError("Pass the agent once: RunStateStore(agent=agent, ...).")
            file_path, agent = None, file_path
        if not isinstance(agent, Agent):
            raise ConfigurationError(
                "RunStateStore needs the run's starting agent: "
                "RunStateStore(agent=my_agent, session_id='...')."
            )
        if sum(x is not None for x in (file_path, url, backend)) > 1:
            raise ConfigurationError(
                "Give RunStateStore at most one of a file path, url= or backend=."
            )
        check_identifier(agent.name, "The agent name", ConfigurationError)
        self.agent = agent
        self._file_backend = JSONFileBackend(file_path) if file_path is not None else None
        if session_id is None:
            session_id = self._file_backend.path.stem if self._file_backend else uuid.uuid4().hex
        self.session_id = check_session_id(session_id)
        self._backend = backend or self._file_backend
        # Resolve settings now so a bad one fails here, not at the first await.
        settings = load_settings(url)
        self.url = self._backend.url if self._backend else settings.db_url
        if self._backend is None:
            backend_factory(self.url)
        self.max_state_bytes = (
            settings.max_state_bytes
            if max_state_bytes is None
            else parse_size(max_state_bytes, "max_state_bytes")
        )
        self._signer = (
            StateSigner(state_key, settings.previous_state_keys)
            if state_key is not None
            else StateSigner.from_settings(settings)
        )
        self._version: int | None = None
        self._agents: dict[str, Agent[Any] | None] | None = None

    def __repr__(self) -> str:
        return (
            f"RunStateStore(agent={self.agent.name!r}, session_id={self.session_id!r}, "
            f"url={redact_url(self.url)!r})"
        )

    @property
    def version(self) -> int | None:
        """The row version this store last loaded or saved (``None`` before either)."""
        return self._version

    @property
    def backend(self) -> StateBackend:
        """The storage backend (resolved on first use, inside the event loop)."""
        if self._backend is None:
            return _get_backend(self.url)
        return self._backend

    async def save(
        self,
        state: RunState[Any, Any] | RunResult | RunResultStreaming,
        *,
        status: StateStatus | str | None = None,
        overwrite: bool = False,
    ) -> StoredState:
        """Store ``state`` (or ``result.to_state()``) in one transaction.

        The status is ``interrupted`` while approvals are pending, ``completed`` for a result
        that finished, ``running`` otherwise; pass ``status=`` to say it yourself. A completed
        state of the same session is replaced; an interrupted or running one only by a store
        that loaded or saved it (or with ``overwrite=True``).

        Raises:
            StateConflictError: another writer saved this session first. Nothing was written.
            StateTooLargeError: the serialized state is over ``max_state_bytes``.
        """
        finished = False
        claim = claim_of(state)
        if isinstance(state, RunResult | RunResultStreaming):
            finished = not state.interruptions and state.final_output is not None
            state = state.to_state()
        record = self._record(state, status, finished)
        ours = claim if isinstance(claim, _DecisionClaim) and claim.same_run(self) else None
        # The result of a run whose decisions were claimed on this row (run_agent carries the
        # claim to its result) builds on the claim, whichever store object saves it.
        expected = ours.row.version if ours is not None and ours.claimed else self._version
        backend = self.backend
        try:
            stored = await backend.save(record, expected_version=expected, overwrite=overwrite)
        except StateConflictError as conflict:
            stored = await self._replace_completed(backend, record, conflict)
        self._version = stored.version
        if ours is not None:
            # Decisions saved with the state are claimed later against the row as saved.
            ours.row = stored
        return stored

    def _record(
        self,
        state: RunState[Any, Any],
        status: StateStatus | str | None,
        finished: bool = False,
        decisions: dict[str, dict[str, str]] | None = None,
    ) -> StateRecord:
        """The row for ``state``: serialized, summarised, translated for JS and signed.

        ``decisions`` (call id -> ``decision`` and ``decided_at``) go into the pending
        approvals' summary of a claimed row, so a late decider is told what won and when.
        """
        serialized = state.to_json()
        pending = _pending_approvals(serialized)
        for entry in pending:
            entry.update((decisions or {}).get(entry["call_id"], {}))
        current_agent = (serialized.get("current_agent") or {}).get("name")
        if status is None:
            status = (
                StateStatus.INTERRUPTED
                if pending
                else StateStatus.COMPLETED
                if finished
                else StateStatus.RUNNING
            )
        text = json.dumps(serialized, separators=(",", ":"))
        # ASCII-only (json.dumps escapes the rest), so characters are bytes.
        self._check_size(len(text), "save")
        # The JS form goes into the same row, so a TypeScript program can resume this run.
        portable = portable_form(serialized, _PYTHON)
        record = StateRecord(
            agent_name=self.agent.name,
            session_id=self.session_id,
            status=StateStatus(status),
            sdk=PYTHON_SDK,
            schema_version=str(serialized.get("$schemaVersion", CURRENT_SCHEMA_VERSION)),
            state=text,
            current_agent=current_agent,
            interruptions=pending,
            portable_state=portable.state,
            portable_sdk=portable.sdk,
            portable_schema_version=portable.schema_version,
            portable_error=portable.error,
        )
        if self._signer is not None:
            record = replace(record, signature=self._signer.sign(record))
        return record

    async def load(self, *, context: Any = None) -> RunState[Any, Agent[Any]]:
        """Rebuild the stored ``RunState``, ready to approve, reject and resume.

        ``context`` replaces the stored run context (pass your own context object when it is
        not a plain mapping). Nothing stored changes, whatever goes wrong.

        Raises:
            StateNotFoundError: nothing is stored for this agent and session.
            StateCorruptedError: the stored payload is truncated or not a run state.
            UnsupportedSchemaError: written by an SDK or schema version this install can't read.
            AgentMismatchError: the state belongs to a different agent graph.
            StateIntegrityError: a signing key is set and the row is unsigned or was changed.
            StateTooLargeError: the stored state is over ``max_state_bytes`` (not parsed).
        """
        stored = await self.backend.load(self.agent.name, self.session_id)
        if stored is None:
            raise StateNotFoundError(
                f"No saved state for agent {self.agent.name!r}, session {self.session_id!r} "
                f"in {redact_url(self.url)}. Save one first (store.save(result)), or check the "
                "session id and database: `timestep runs list` shows what is stored.",
                session_id=self.session_id,
            )
        self._check_size(_utf8_size(stored.state, self.max_state_bytes), "load")
        if self._signer is not None:
            self._signer.verify(stored)
            self._check_identity(stored)
        state = await self._rebuild(stored, context)
        self._version = stored.version
        attach_claim(state, _DecisionClaim(self, stored))
        return state

    async def pending_approvals(self) -> list[dict[str, Any]]:
        """The tool calls this run waits on (``tool_name``, ``call_id``, ``arguments``,
        ``agent``), read from the stored state itself, for a page that asks people to decide.

        With a signing key the row is verified first: what an approver sees is what will run,
        never the listing column (``info().interruptions``), which the signature does not
        cover. Empty when nothing is stored or the run is not paused.

        Raises:
            StateIntegrityError: a signing key is set and the row is unsigned or was changed.
            StateTooLargeError: the stored state is over ``max_state_bytes`` (not parsed).
        """
        stored = await self.backend.load(self.agent.name, self.session_id)
        if stored is None or stored.status != StateStatus.INTERRUPTED:
            return []
        self._check_size(_utf8_size(stored.state, self.max_state_bytes), "read")
        if self._signer is not None:
            self._signer.verify(stored)
            self._check_identity(stored)
        return pending_in(stored)

    async def clear(self) -> bool:
        """Delete the stored state; ``True`` if there was one. The next save starts afresh."""
        deleted = await self.backend.delete(self.agent.name, self.session_id)
        self._version = None
        return deleted

    async def info(self) -> StoredState | None:
        """The stored row (metadata and payload) without rebuilding the state."""
        return await self.backend.load(self.agent.name, self.session_id)

    async def list(
        self,
        *,
        status: StateStatus | str | None = None,
        agent_name: str | None = None,
        session_id: str | None = None,
        limit: int = 100,
    ) -> list[StoredState]:
        """Stored runs in this store's database, newest first, e.g. every paused run::

        await store.list(status="interrupted")
        """
        return await self.backend.list(
            status=None if status is None else StateStatus(status),
            agent_name=agent_name,
            session_id=session_id,
            limit=limit,
        )

    async def _claim_decisions(self, state: RunState[Any, Any], claim: _DecisionClaim) -> None:
        """Write the decisions made on ``state`` to the row it was loaded from, if that row
        is still as loaded, before anything of them runs (see :mod:`timestep.claims`)."""
        where = f"agent {self.agent.name!r}, session {self.session_id!r}"
        if claim.claimed:
            raise DecisionConflictError(
                f"The decisions on this state of {where} were already run by an earlier "
                "run_agent call. Save that call's result, or load the run again to see where "
                "it stands.",
                session_id=self.session_id,
            )
        if claim.row.status == StateStatus.RESUMING:
            raise _decided_already(claim.row, _decisions_on(state), where)
        decided = _decisions_on(state)
        if not decided:
            return  # nothing will run: the resumed run pauses on the same calls again
        now = datetime.now(UTC).isoformat(timespec="seconds")
        decisions = {
            call_id: {"decision": decision, "decided_at": now}
            for call_id, decision in decided.items()
        }
        record = self._record(state, StateStatus.RESUMING, decisions=decisions)
        backend = self.backend
        try:
            stored = await backend.save(record, expected_version=claim.row.version)
        except StateConflictError as conflict:
            current = await backend.load(self.agent.name, self.session_id)
            raise _decided_already(current, decided, where, conflict) from None
        claim.claimed, claim.row = True, stored
        self._version = stored.version

    def _check_identity(self, stored: StoredState) -> None:
        # The signature binds a row to the agent and session it records; a database row is
        # found by those, but a state file is found by its path, so a validly signed file of
        # another run copied over this one's would otherwise be resumed as this run.
        if (stored.agent_name, stored.session_id) == (self.agent.name, self.session_id):
            return
        raise StateIntegrityError(
            f"{self._file_backend.path if self._file_backend else 'The stored row'} holds the "
            f"signed state of agent {stored.agent_name!r}, session {stored.session_id!r}, not "
            f"of agent {self.agent.name!r}, session {self.session_id!r}: it was copied from "
            "another run, so it will not be resumed. Restore this run's own file, or clear it "
            "(store.clear()) and run the agent again.",
            session_id=self.session_id,
        )

    def _check_size(self, size: int, action: str) -> None:
        if size <= self.max_state_bytes:
            return
        raise StateTooLargeError(
            f"Cannot {action} the state of agent {self.agent.name!r}, session "
            f"{self.session_id!r}: it is {size:,} bytes, over the limit of "
            f"{self.max_state_bytes:,}. Raise TIMESTEP_MAX_STATE_BYTES (or max_state_bytes=) "
            "if that is expected, or keep large tool outputs out of the conversation.",
            size=size,
            limit=self.max_state_bytes,
            session_id=self.session_id,
        )

    async def _replace_completed(
        self, backend: StateBackend, record: StateRecord, conflict: StateConflictError
    ) -> StoredState:
        # A finished run is history, not work in progress: a new run of the same session may
        # take its place. The conditional update still loses cleanly to a concurrent writer.
        if self._version is not None or conflict.actual_version is None:
            raise conflict
        current = await backend.load(record.agent_name, record.session_id)
        if current is None or current.status != StateStatus.COMPLETED:
            raise conflict
        return await backend.save(record, expected_version=current.version)

    async def _rebuild(self, stored: StoredState, context: Any) -> RunState[Any, Agent[Any]]:
        where = f"agent {stored.agent_name!r}, session {stored.session_id!r}"
        if stored.sdk not in (PYTHON_SDK, JS_SDK):
            raise UnsupportedSchemaError(
                f"The state of {where} was written by the {stored.sdk!r} SDK "
                f"(schema {stored.schema_version}); this install reads Python and JS SDK states. "
                "Resume it with that SDK, or clear it with store.clear().",
                session_id=stored.session_id,
            )
        try:
            data = json.loads(stored.state)
        except RecursionError:
            raise StateCorruptedError(
                f"The stored state of {where} is nested too deeply to be a run state; it was "
                "edited outside Timestep. Clear it with store.clear() and run the agent again.",
                session_id=stored.session_id,
            ) from None
        except ValueError as error:  # bad JSON, bad UTF-8, a number too long to convert
            raise StateCorruptedError(
                f"The stored state of {where} is not valid JSON ({error}); it was truncated or "
                "edited outside Timestep. Clear it with store.clear() and run the agent again.",
                session_id=stored.session_id,
            ) from None
        if not isinstance(data, dict):
            raise StateCorruptedError(
                f"The stored state of {where} is not a run state object. Clear it with "
                "store.clear() and run the agent again.",
                session_id=stored.session_id,
            )
        if stored.sdk == JS_SDK:
            # The JS writer's native state is the truth; translate it on every load.
            data = translate_run(
                data,
                source=JS_SDK,
                target=_PYTHON,
                context=f"The state of {where} was saved by the JS Agents SDK. ",
                session_id=stored.session_id,
            )
        try:
            self._check_resumable(data, where, stored.session_id)
        except (TypeError, AttributeError):
            # Type-confused fields (a list where a name belongs): edited outside Timestep.
            raise StateCorruptedError(
                f"The stored state of {where} has fields of the wrong type; it was edited "
                "outside Timestep. Clear it with store.clear() and run the agent again.",
                session_id=stored.session_id,
            ) from None
        try:
            return await RunState.from_json(self.agent, data, context_override=context)
        except Exception as error:
            kind = AgentMismatchError if "not found" in str(error) else StateCorruptedError
            raise kind(
                f"The state of {where} cannot be resumed with agent {self.agent.name!r}: "
                f"{error}. Use the agent graph and tools that saved it, or clear it with "
                "store.clear().",
                session_id=stored.session_id,
            ) from error

    def _check_resumable(self, data: dict[str, Any], where: str, session_id: str) -> None:
        """Raise unless ``data`` is a state of a schema and agent graph this store can resume."""
        schema = data.get("$schemaVersion")
        if schema not in SUPPORTED_SCHEMA_VERSIONS:
            newest = max(SUPPORTED_SCHEMA_VERSIONS, key=_version_key)
            raise UnsupportedSchemaError(
                f"The state of {where} has $schemaVersion {schema!r}; this openai-agents reads "
                f"up to {newest}. Upgrade openai-agents (and timestep) to the version that wrote "
                "it, or clear it with store.clear().",
                session_id=session_id,
            )
        current = data.get("current_agent")
        current_name = current.get("name") if isinstance(current, dict) else None
        known = self._graph()
        if current_name not in known:
            raise AgentMismatchError(
                f"The state of {where} is at agent {current_name!r}, which is not in the graph "
                f"of {self.agent.name!r} (agents: {', '.join(sorted(known))}). Load it with the "
                "agent graph that saved it (same names and handoffs).",
                session_id=session_id,
            )
        for pending in _pending_approvals(data, strict=True):
            owner = known.get(pending["agent"] or current_name or "")
            if owner is not None and pending["tool_name"] not in _tool_names(owner):
                raise AgentMismatchError(
                    f"The state of {where} waits for approval of tool {pending['tool_name']!r} "
                    f"on agent {owner.name!r}, which has no such tool now. Load it with the "
                    "agent definition that saved it.",
                    session_id=session_id,
                )

    def _graph(self) -> dict[str, Agent[Any] | None]:
        if self._agents is None:
            self._agents = _agent_graph(self.agent)
        return self._agents


@dataclass(eq=False)
class _DecisionClaim:
    """The claim a loaded state carries: the store that loaded it and the row as that store
    last loaded or saved it with this state."""

    store: RunStateStore
    row: StoredState
    claimed: bool = False

    async def __call__(self, state: RunState[Any, Any]) -> None:
        await self.store._claim_decisions(state, self)

    def same_run(self, store: RunStateStore) -> bool:
        """Whether ``store`` keeps the run this claim is on (any store object for it)."""
        return store is self.store or (
            (store.url, store.agent.name, store.session_id)
            == (self.store.url, self.store.agent.name, self.store.session_id)
        )


def _decisions_on(state: RunState[Any, Any]) -> dict[str, str]:
    """Call id -> ``"approved"`` / ``"rejected"`` for each pending call decided on ``state``."""
    context = state._context
    if context is None:
        return {}
    decided = {}
    for item in state.get_interruptions():
        call_id = str(item.call_id)
        verdict = context.get_approval_status(str(item.tool_name), call_id, existing_pending=item)
        if verdict is not None:
            decided[call_id] = "approved" if verdict else "rejected"
    return decided


def _decided_already(
    current: StoredState | None,
    mine: dict[str, str],
    where: str,
    conflict: StateConflictError | None = None,
) -> DecisionConflictError:
    """The error for a decider who lost: what the winner decided on the first of ``mine``'s
    calls, and when, read from the row as it is now."""
    expected = conflict.expected_version if conflict else None
    actual = current.version if current else None
    release = (
        "If that run's process died before saving, check what its tools did, then put the "
        "run back as paused (state = await store.load(); await store.save(state, "
        "status='interrupted', overwrite=True)) and run it again."
    )
    if current is None:
        return DecisionConflictError(
            f"The run of {where} was cleared since you loaded it; nothing of yours ran.",
            session_id=conflict.session_id if conflict else None,
            expected_version=expected,
            actual_version=actual,
        )
    summary = {
        entry.get("call_id"): entry for entry in current.interruptions if isinstance(entry, dict)
    }
    state = _parse_quietly(current.state)
    for call_id in mine or [entry.get("call_id") for entry in current.interruptions]:
        entry = summary.get(call_id, {})
        decision = entry.get("decision") or _recorded_decision(
            state, str(call_id), entry.get("tool_name")
        )
        if decision is None:
            continue
        stamp = entry.get("decided_at")
        decided_at = _parse_time(stamp) or current.updated_at
        return DecisionConflictError(
            f"Tool call {call_id} of {where} was already {decision} at "
            f"{decided_at.isoformat() if decided_at else 'an unknown time'} by another decider, "
            f"and its run went on (the run is now {current.status.value}, version "
            f"{current.version}). Nothing of yours ran. Load the run again to see where it "
            f"stands. {release if current.status == StateStatus.RESUMING else ''}".rstrip(),
            session_id=current.session_id,
            call_id=str(call_id),
            decision=str(decision),
            decided_at=decided_at,
            expected_version=expected,
            actual_version=actual,
        )
    return DecisionConflictError(
        f"The run of {where} changed since you loaded it (now {current.status.value}, version "
        f"{current.version}); nothing of yours ran. Load it again and decide on what it holds "
        "now.",
        session_id=current.session_id,
        expected_version=expected,
        actual_version=actual,
    )


def _recorded_decision(state: Any, call_id: str, tool_name: Any) -> str | None:
    """The decision a serialized state records for ``call_id`` (per call, or for every call
    of ``tool_name``), from the SDK's approval records in its context."""
    context = state.get("context") if isinstance(state, dict) else None
    if not isinstance(context, dict):
        return None
    records: list[tuple[Any, Any]] = [
        (entry.get("tool_key"), entry.get("decision"))
        for entry in context.get("function_tool_approvals") or []
        if isinstance(entry, dict)
    ]
    approvals = context.get("approvals")
    if isinstance(approvals, dict):
        records.extend(approvals.items())
    for tool, record in records:
        if not isinstance(record, dict):
            continue
        for decision in ("approved", "rejected"):
            value = record.get(decision)
            if (isinstance(value, list) and call_id in value) or (
                value is True and tool == tool_name
            ):
                return decision
    return None


def _parse_quietly(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _parse_time(stamp: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(stamp) if isinstance(stamp, str) else None
    except ValueError:
        return None


def pending_in(stored: StoredState) -> list[dict[str, Any]]:
    """The pending approvals recorded in ``stored``'s state (either SDK's form), not in its
    unsigned ``interruptions`` summary; empty for a state that cannot be read."""
    data = _parse_quietly(stored.state)
    if not isinstance(data, dict):
        return []
    if stored.sdk == PYTHON_SDK:
        return describe(data, _PYTHON).interruptions
    return describe(data, JS_SDK).interruptions if stored.sdk == JS_SDK else []


def _agent_graph(root: Agent[Any]) -> dict[str, Agent[Any] | None]:
    """Every agent reachable from ``root`` through handoffs, by name (cycles allowed).

    A handoff whose target is no longer alive is known by name only (``None``).
    """
    seen: dict[str, Agent[Any] | None] = {}
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, Handoff):
            target = node._agent_ref() if node._agent_ref is not None else None
            if target is None:
                seen.setdefault(node.agent_name, None)
            else:
                stack.append(target)
        elif isinstance(node, Agent) and seen.get(node.name) is None:
            seen[node.name] = node
            stack.extend(node.handoffs)
    return seen


def _tool_names(agent: Agent[Any]) -> set[str]:
    return {str(getattr(tool, "name", "")) for tool in agent.tools}


def _pending_approvals(serialized: dict[str, Any], strict: bool = False) -> list[dict[str, Any]]:
    """The tool calls waiting for approval; with ``strict``, a malformed list raises
    ``TypeError`` (a stored state may have been edited by anyone)."""
    step = serialized.get("current_step") or {}
    if not isinstance(step, dict) or step.get("type") != "next_step_interruption":
        return []
    data = step.get("data")
    items = data.get("interruptions", []) if isinstance(data, dict) else None
    pending = []
    for item in items if isinstance(items, list) else [None]:
        raw = item.get("raw_item") if isinstance(item, dict) else None
        agent = item.get("agent") if isinstance(item, dict) else None
        if not isinstance(item, dict) or not isinstance(raw or {}, dict):
            if strict:
                raise TypeError("malformed pending approvals")
            continue
        raw = raw or {}
        pending.append(
            {
                "tool_name": item.get("tool_name") or raw.get("name"),
                "call_id": raw.get("call_id") or raw.get("id"),
                "arguments": raw.get("arguments"),
                "agent": agent.get("name") if isinstance(agent, dict) else None,
            }
        )
    return pending


def _utf8_size(text: str, limit: int) -> int:
    """The UTF-8 size of ``text``, counted exactly only when it could matter against ``limit``."""
    if len(text) * 4 <= limit:
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


def check_session_id(session_id: object) -> str:
    """``session_id`` if it is a usable key (non-empty, at most 255 characters, no NUL)."""
    try:
        return check_identifier(session_id, "session_id", ConfigurationError)
    except ConfigurationError as error:
        if isinstance(session_id, str) and session_id.strip():
            raise
        raise ConfigurationError(
            f"{error} Omit it to have one generated (store.session_id)."
        ) from None


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())
