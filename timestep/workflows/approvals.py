"""Approvals that wait durably: a parked run costs no process, only a row and a message slot.

When a tool call needs approval, the workflow saves its ``RunState`` with the core
:class:`~timestep.RunStateStore` (status ``interrupted``, session id = workflow id, so
``timestep runs list`` shows it) and then waits on a DBOS message topic. The wait itself is
durable: if the worker dies, the workflow is recovered at its next launch, replays its
checkpointed steps and waits again (for what remains of any timeout).

A decision is recorded first, in the ``timestep_workflow_decisions`` table, keyed by workflow
and tool call: the insert does nothing when the call already has a decision, and the decider
reads back what is stored. So the first decision wins, however many processes decide at once;
a later *different* one is refused with :class:`~timestep.DecisionConflictError` (naming who
decided what, and when), and the same one again is acknowledged. A DBOS message then wakes the
workflow, which applies the stored decisions, never a message's: decisions can come from any
process on the same database, before or after a restart, and a lost wake-up is made good by
deciding again (the same way).

With ``TIMESTEP_STATE_KEY`` set, a decision also carries proof that a key holder made it: an
HMAC over the workflow, the call, the decision, the rejection message, who decided and when
(:meth:`~timestep.integrity.StateSigner.sign_decision`), stored with it. A worker with the key
applies only decisions whose proof verifies; any other row (one a process without the key
inserted) is logged at WARNING on the ``timestep`` logger, naming the workflow and the call,
and ignored, and the run keeps waiting. A legitimate decision replaces such a row. A DBOS
message is only ever a wake-up, so a bare one decides nothing (a wake-up naming calls that
have no valid stored decision is logged too). Every process that decides therefore needs the
key the workers have: :func:`approve_workflow` in a process without it refuses, with
:class:`~timestep.StateIntegrityError`, to decide on a run whose parked state is signed.

Example::

    for pending in await pending_approvals("order-7"):
        print(pending.tool_name, pending.arguments)
    await approve_workflow("order-7", approve=True)                       # every pending call
    await approve_workflow("order-7", approve=False, call_id="call-2",
                           rejection_message="Not on a Friday.")          # just one

Decisions name the tool call they answer, so a duplicate click never approves a *later*
interruption of the same run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NotRequired, TypedDict

from agents import ToolApprovalItem
from dbos import DBOS
from sqlalchemy import and_, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from ..errors import (
    ApprovalNotPendingError,
    DecisionConflictError,
    StateIntegrityError,
    StorageError,
    WorkflowConfigurationError,
    WorkflowNotFoundError,
)
from ..integrity import StateSigner
from ..storage import SQLStateBackend, StateStatus, get_backend
from ..storage.schema import workflow_decisions
from .config import client_for, dbos_settings, is_launched
from .handles import FINISHED_STATUSES, chain_tail

__all__ = [
    "APPROVAL_TOPIC",
    "TIMEOUT_DECIDER",
    "Decision",
    "PendingApproval",
    "approve_workflow",
    "await_decisions",
    "pending_approvals",
    "wait_for_decisions",
]

logger = logging.getLogger("timestep")

APPROVAL_TOPIC = "timestep.approval"
"""The DBOS message topic approval decisions travel on."""

# DBOS needs a finite timeout per wait; waiting "forever" is a chain of these, each durable.
_WAIT_CHUNK_SECONDS = 24 * 3600.0


class Decision(TypedDict):
    """One approval decision, as sent to the workflow::

    Decision(call_id="call-2", approve=False, rejection_message="Not on a Friday.", by="ana")

    ``by`` names who decided, for the run's timeline (``timestep runs show``); ``at`` is
    when the decision was recorded (UTC, ISO 8601), when known.
    """

    call_id: str
    approve: bool
    rejection_message: str | None
    by: NotRequired[str | None]
    at: NotRequired[str | None]


@dataclass(frozen=True)
class PendingApproval:
    """A tool call a parked workflow waits on (see :func:`pending_approvals`)::

    PendingApproval(workflow_id="order-7", call_id="call-2", tool_name="refund",
                    arguments='{"order": "7"}', agent="Assistant")
    """

    workflow_id: str
    call_id: str
    tool_name: str | None
    arguments: str | None
    agent: str | None


async def pending_approvals(workflow_id: str, *, url: str | None = None) -> list[PendingApproval]:
    """The tool calls ``workflow_id`` is parked on (empty when it is not waiting).

    Read from the run state the workflow saved, so it works from any process::

        pending = await pending_approvals("order-7")
    """
    backend = get_backend(url or _default_url())
    rows = await backend.list(session_id=workflow_id, status=StateStatus.INTERRUPTED, limit=10)
    return [
        PendingApproval(
            workflow_id=workflow_id,
            call_id=str(item.get("call_id")),
            tool_name=item.get("tool_name"),
            arguments=item.get("arguments"),
            agent=item.get("agent"),
        )
        for row in rows
        for item in row.interruptions
        if item.get("call_id")
    ]


async def approve_workflow(
    workflow_id: str,
    approve: bool = True,
    *,
    call_id: str | None = None,
    rejection_message: str | None = None,
    by: str | None = None,
    url: str | None = None,
) -> list[str]:
    """Approve or reject what a parked workflow waits on; it resumes wherever it runs.

    Without ``call_id`` the decision applies to every pending tool call; with it, to that one
    only (the run resumes once every pending call has a decision). Works from any process on
    the same database, with or without a launched engine. Returns the call ids decided.
    ``by`` names who decided; with ``TIMESTEP_TRACING=db`` the run's timeline shows it.

    Example::

        await approve_workflow("order-7", approve=False, rejection_message="Too risky.", by="ana")

    Raises:
        WorkflowNotFoundError: there is no workflow ``workflow_id``.
        ApprovalNotPendingError: it finished, is not waiting for approval, or not for
            ``call_id``; the message lists what it does wait for.
        StateIntegrityError: the run's workers sign (its parked state is signed) and this
            process has no ``TIMESTEP_STATE_KEY``: its decision would be refused.
    """
    if approve and rejection_message is not None:
        raise WorkflowConfigurationError(
            "rejection_message goes with approve=False; it is what the model is told instead "
            "of the tool's output."
        )
    # A queued run that parked waits in a workflow of its own: decide on the one carrying it.
    status = await chain_tail(workflow_id, url=url)
    if status is None:
        raise WorkflowNotFoundError(
            f"No workflow {workflow_id!r} exists in this database; check the id (and the "
            "database URL).",
            workflow_id=workflow_id,
        )
    finished = status.status in FINISHED_STATUSES
    pending = [] if finished else await pending_approvals(workflow_id, url=url)
    targets = [p.call_id for p in pending if call_id is None or p.call_id == call_id]
    backend = _sql_backend(url)
    signer = _signer(backend.url)
    if signer is None and targets and await _parked_state_is_signed(backend, workflow_id):
        raise StateIntegrityError(
            f"Workflow {workflow_id!r} is parked by a worker that signs its state "
            "(TIMESTEP_STATE_KEY is set there), so it only applies decisions signed with that "
            "key; this process has no TIMESTEP_STATE_KEY. Set it to the workers' key, then "
            "decide again. Nothing was recorded.",
            session_id=workflow_id,
        )
    if not targets:
        # Nothing of this waits (any more): a decision already recorded still answers, so a
        # repeat is acknowledged and a different one refused, however late it comes.
        stored = await _stored_decisions(
            backend, workflow_id, None if call_id is None else [call_id], signer
        )
        if stored:
            _refuse_if_different(workflow_id, stored.values(), approve)
            return list(stored)
        if finished:
            raise ApprovalNotPendingError(
                f"Workflow {workflow_id!r} has finished (status {status.status}); there is "
                "nothing left to approve.",
                workflow_id=workflow_id,
            )
        if not pending:
            raise ApprovalNotPendingError(
                f"Workflow {workflow_id!r} is not waiting for approval (status "
                f"{status.status}). Wait until pending_approvals() lists what it needs, then "
                "decide.",
                workflow_id=workflow_id,
            )
        listed = ", ".join(f"{p.call_id} ({p.tool_name})" for p in pending)
        raise ApprovalNotPendingError(
            f"Workflow {workflow_id!r} does not wait for call id {call_id!r}; it waits for: "
            f"{listed}.",
            workflow_id=workflow_id,
        )
    decisions = [
        Decision(call_id=target, approve=approve, rejection_message=rejection_message, by=by)
        for target in targets
    ]
    await _record_decisions(backend, workflow_id, decisions, refuse_different=True, signer=signer)
    # Only a wake-up: the workflow applies what is stored above, whatever this message says.
    message = {"decisions": decisions}
    if is_launched():
        await DBOS.send_async(status.workflow_id, message, APPROVAL_TOPIC)
    else:
        client = await client_for(url)
        await client.send_async(status.workflow_id, message, APPROVAL_TOPIC)
    return targets


async def wait_for_decisions(
    interruptions: list[ToolApprovalItem],
    timeout_seconds: float | None,
    *,
    workflow_id: str,
    url: str,
) -> dict[str, Decision]:
    """Inside a workflow: wait durably until each interruption has a stored decision.

    Returns the decisions by call id, as recorded (the first for each call). With
    ``timeout_seconds`` (measured from the first wait, across restarts) the calls still
    undecided when time is up are recorded as rejected by ``"timeout"``, unless a human
    decision lands first. Example::

        decisions = await wait_for_decisions(list(result.interruptions), 3600.0,
                                             workflow_id="order-7", url=settings.url)
    """
    call_ids = [str(item.call_id) for item in interruptions if item.call_id]
    return await await_decisions(call_ids, timeout_seconds, workflow_id=workflow_id, url=url)


async def await_decisions(
    call_ids: list[str],
    timeout_seconds: float | None,
    *,
    workflow_id: str,
    url: str,
) -> dict[str, Decision]:
    """:func:`wait_for_decisions` by call ids (a waiter that holds no ``RunState``)::

    decisions = await await_decisions(["call-2"], None, workflow_id="order-7", url=url)
    """
    needed = sorted(set(call_ids))
    deadline: float | None = None
    if timeout_seconds is not None:
        # Checkpointed, so a recovered workflow keeps the original deadline.
        deadline = await DBOS.run_step_async({"name": "timestep.approval.deadline"}, _now)
        deadline += timeout_seconds
    woken_for: list[str] = []
    while True:
        # A step, so a replay sees what this execution saw.
        decided: dict[str, Decision] = await DBOS.run_step_async(
            {"name": "timestep.approval.read"}, _read_decisions, url, workflow_id, needed
        )
        for call in woken_for:
            if call not in decided:
                logger.warning(
                    "Workflow %r was woken for a decision on call %s, but no valid decision "
                    "is stored for it (a bare message, or one a process without the key "
                    "sent): ignored, the run keeps waiting.",
                    workflow_id,
                    call,
                )
        if set(needed) <= decided.keys():
            return decided
        wait = _WAIT_CHUNK_SECONDS
        if deadline is not None:
            # Whether time is up must be a checkpoint too: a replay has to take the same branch.
            remaining = deadline - await DBOS.run_step_async(
                {"name": "timestep.approval.clock"}, _now
            )
            if remaining <= 0:
                late = [call for call in needed if call not in decided]
                recorded: dict[str, Decision] = await DBOS.run_step_async(
                    {"name": "timestep.approval.timeout"},
                    _record_timeouts,
                    url,
                    workflow_id,
                    late,
                    timeout_seconds,
                )
                return {**decided, **recorded}
            wait = min(wait, remaining)
        message = await DBOS.recv_async(APPROVAL_TOPIC, timeout_seconds=wait)
        woken_for = _named_calls(message, needed)


def _named_calls(message: Any, needed: list[str]) -> list[str]:
    """The awaited call ids a wake-up message names (it decides nothing by itself)."""
    decisions = message.get("decisions") if isinstance(message, dict) else None
    if not isinstance(decisions, list):
        return []
    named = {d.get("call_id") for d in decisions if isinstance(d, dict)}
    return [call for call in needed if call in named]


async def _read_decisions(url: str, workflow_id: str, call_ids: list[str]) -> dict[str, Decision]:
    backend = _sql_backend(url)
    return await _stored_decisions(backend, workflow_id, call_ids, _signer(backend.url))


async def _record_timeouts(
    url: str, workflow_id: str, call_ids: list[str], timeout_seconds: float | None
) -> dict[str, Decision]:
    waited = f"within {timeout_seconds:g} seconds" if timeout_seconds is not None else "in time"
    timeouts = [
        Decision(
            call_id=call,
            approve=False,
            rejection_message=f"No approval decision arrived {waited}.",
            by=TIMEOUT_DECIDER,
        )
        for call in call_ids
    ]
    # A human decision that landed just before this one wins, as any first decision does.
    backend = _sql_backend(url)
    return await _record_decisions(backend, workflow_id, timeouts, signer=_signer(backend.url))


TIMEOUT_DECIDER = "timeout"
"""The ``decided_by`` of the rejections an ``approval_timeout`` records."""


def _sql_backend(url: str | None) -> SQLStateBackend:
    backend = get_backend(url or _default_url())
    if not isinstance(backend, SQLStateBackend):
        raise StorageError(
            f"Durable workflows record approval decisions in PostgreSQL or SQLite; {backend!r} "
            "is a plugin backend. Use the workflow database's postgresql:// or sqlite:/// URL."
        )
    return backend


async def _record_decisions(
    backend: SQLStateBackend,
    workflow_id: str,
    decisions: list[Decision],
    *,
    refuse_different: bool = False,
    signer: StateSigner | None = None,
) -> dict[str, Decision]:
    """Record each decision unless its call has one already; return what is stored.

    One transaction: every insert does nothing on a call already decided, and the rows are
    read back. With ``refuse_different`` a stored decision that differs from the one given
    raises :class:`DecisionConflictError` and rolls back the whole batch, so a decision is
    recorded for all of its calls or for none. With a ``signer`` each row is signed, and a
    stored row whose signature does not verify (forged) is dropped first, so it can neither
    win nor block the real decision.
    """
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    # Sorted, so concurrent batches lock the same keys in the same order (no deadlock).
    for decision in sorted(decisions, key=lambda d: d["call_id"]):
        verdict = "approved" if decision["approve"] else "rejected"
        message = None if decision["approve"] else decision["rejection_message"]
        by = decision.get("by")
        rows.append(
            {
                "workflow_id": workflow_id,
                "call_id": decision["call_id"],
                "decision": verdict,
                "rejection_message": message,
                "decided_by": by,
                "decided_at": now,
                "signature": None
                if signer is None
                else signer.sign_decision(
                    workflow_id, decision["call_id"], verdict, message, by, now
                ),
            }
        )
    if not rows:
        return {}
    call_ids = [str(row["call_id"]) for row in rows]
    async with backend.transaction() as conn:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        # Writing first takes SQLite's write lock at once (a read first could deadlock with
        # another writer on the upgrade); a forged row is then replaced by this decision.
        await conn.execute(dialect.insert(workflow_decisions).on_conflict_do_nothing(), rows)
        if signer is not None:
            forged = await _drop_forged(conn, workflow_id, call_ids, signer)
            if forged:
                await conn.execute(
                    workflow_decisions.insert(), [r for r in rows if r["call_id"] in forged]
                )
        stored = await _select_decisions(conn, workflow_id, call_ids, signer)
        if refuse_different:
            wanted = {d["call_id"]: d["approve"] for d in decisions}
            _refuse_if_different(
                workflow_id,
                [d for d in stored.values() if d["approve"] != wanted[d["call_id"]]],
                None,
            )
    return stored


async def _stored_decisions(
    backend: SQLStateBackend,
    workflow_id: str,
    call_ids: list[str] | None,
    signer: StateSigner | None = None,
) -> dict[str, Decision]:
    async with backend.transaction() as conn:
        return await _select_decisions(conn, workflow_id, call_ids, signer)


async def _decision_rows(
    conn: AsyncConnection, workflow_id: str, call_ids: list[str] | None
) -> list[Any]:
    table = workflow_decisions
    query = select(table).where(table.c.workflow_id == workflow_id)
    if call_ids is not None:
        query = query.where(table.c.call_id.in_(call_ids))
    return list((await conn.execute(query.order_by(table.c.decided_at, table.c.call_id))).all())


async def _select_decisions(
    conn: AsyncConnection,
    workflow_id: str,
    call_ids: list[str] | None,
    signer: StateSigner | None = None,
) -> dict[str, Decision]:
    """The stored decisions; with a ``signer`` only those it verifies (others are logged)."""
    return {
        row.call_id: Decision(
            call_id=row.call_id,
            approve=row.decision == "approved",
            rejection_message=row.rejection_message,
            by=row.decided_by,
            at=_utc(row.decided_at).isoformat(),
        )
        for row in await _decision_rows(conn, workflow_id, call_ids)
        if signer is None or _verified(row, signer)
    }


def _verified(row: Any, signer: StateSigner) -> bool:
    verdict = signer.decision_status(
        row.workflow_id,
        row.call_id,
        row.decision,
        row.rejection_message,
        row.decided_by,
        _utc(row.decided_at),
        row.signature,
    )
    if verdict == "valid":
        return True
    logger.warning(
        "Refused the stored decision on call %s of workflow %r (%s by %s): its signature is "
        "%s, so a process without TIMESTEP_STATE_KEY may have written it. Ignored; the run "
        "keeps waiting for a signed decision.",
        row.call_id,
        row.workflow_id,
        row.decision,
        row.decided_by or "an unnamed decider",
        "missing" if verdict == "unsigned" else verdict,
    )
    return False


async def _drop_forged(
    conn: AsyncConnection, workflow_id: str, call_ids: list[str], signer: StateSigner
) -> set[str]:
    """Delete the stored decisions on ``call_ids`` that ``signer`` refuses; their call ids."""
    table = workflow_decisions
    dropped: set[str] = set()
    for row in await _decision_rows(conn, workflow_id, call_ids):
        if not _verified(row, signer):
            await conn.execute(
                delete(table).where(
                    and_(table.c.workflow_id == workflow_id, table.c.call_id == row.call_id)
                )
            )
            dropped.add(row.call_id)
    return dropped


async def _parked_state_is_signed(backend: SQLStateBackend, workflow_id: str) -> bool:
    rows = await backend.list(session_id=workflow_id, status=StateStatus.INTERRUPTED, limit=10)
    return any(row.signature for row in rows)


def _signer(url: str) -> StateSigner | None:
    # Read at each use, like RunStateStore does: the key of this process, now.
    from ..config import load_settings

    return StateSigner.from_settings(load_settings(url))


def _refuse_if_different(
    workflow_id: str, stored: Iterable[Decision], approve: bool | None
) -> None:
    """Raise DecisionConflictError for the first stored decision unlike ``approve``.

    ``approve=None``: every decision given differs (the caller filtered them).
    """
    for decision in stored:
        if approve is not None and decision["approve"] == approve:
            continue
        verdict = "approved" if decision["approve"] else "rejected"
        by = decision.get("by")
        at = decision.get("at")
        when = datetime.fromisoformat(at) if at else None
        who = f"by {by}" if by else "by an unnamed decider"
        stamp = f" at {when:%Y-%m-%d %H:%M:%S} UTC" if when else ""
        asked = "rejection" if decision["approve"] else "approval"
        raise DecisionConflictError(
            f"Tool call {decision['call_id']} of workflow {workflow_id!r} was already "
            f"{verdict} {who}{stamp}; the first decision is final, so this {asked} was not "
            "recorded. Repeating the same decision is fine; a run that must go the other way "
            "needs a new run.",
            session_id=workflow_id,
            call_id=decision["call_id"],
            decision=verdict,
            decided_by=by,
            decided_at=when,
        )


def _utc(value: datetime | str) -> datetime:
    # SQLite hands back text or naive datetimes; decisions are written in UTC.
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _now() -> float:
    return time.time()


def _default_url() -> str:
    from ..config import load_settings

    settings = dbos_settings()
    return settings.url if settings is not None else load_settings().db_url
