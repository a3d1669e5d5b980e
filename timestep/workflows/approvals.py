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

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NotRequired, TypedDict

from agents import ToolApprovalItem
from dbos import DBOS
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from ..errors import (
    ApprovalNotPendingError,
    DecisionConflictError,
    StorageError,
    WorkflowConfigurationError,
    WorkflowNotFoundError,
)
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
    if not targets:
        # Nothing of this waits (any more): a decision already recorded still answers, so a
        # repeat is acknowledged and a different one refused, however late it comes.
        stored = await _stored_decisions(
            backend, workflow_id, None if call_id is None else [call_id]
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
    await _record_decisions(backend, workflow_id, decisions, refuse_different=True)
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
    while True:
        # A step, so a replay sees what this execution saw.
        decided: dict[str, Decision] = await DBOS.run_step_async(
            {"name": "timestep.approval.read"}, _read_decisions, url, workflow_id, needed
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
        await DBOS.recv_async(APPROVAL_TOPIC, timeout_seconds=wait)


async def _read_decisions(url: str, workflow_id: str, call_ids: list[str]) -> dict[str, Decision]:
    return await _stored_decisions(_sql_backend(url), workflow_id, call_ids)


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
    return await _record_decisions(_sql_backend(url), workflow_id, timeouts)


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
) -> dict[str, Decision]:
    """Record each decision unless its call has one already; return what is stored.

    One transaction: every insert does nothing on a call already decided, and the rows are
    read back. With ``refuse_different`` a stored decision that differs from the one given
    raises :class:`DecisionConflictError` and rolls back the whole batch, so a decision is
    recorded for all of its calls or for none.
    """
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = [
        {
            "workflow_id": workflow_id,
            "call_id": decision["call_id"],
            "decision": "approved" if decision["approve"] else "rejected",
            "rejection_message": None if decision["approve"] else decision["rejection_message"],
            "decided_by": decision.get("by"),
            "decided_at": now,
        }
        # Sorted, so concurrent batches lock the same keys in the same order (no deadlock).
        for decision in sorted(decisions, key=lambda d: d["call_id"])
    ]
    if not rows:
        return {}
    async with backend.transaction() as conn:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        await conn.execute(dialect.insert(workflow_decisions).on_conflict_do_nothing(), rows)
        stored = await _select_decisions(conn, workflow_id, [str(row["call_id"]) for row in rows])
        if refuse_different:
            wanted = {d["call_id"]: d["approve"] for d in decisions}
            _refuse_if_different(
                workflow_id,
                [d for d in stored.values() if d["approve"] != wanted[d["call_id"]]],
                None,
            )
    return stored


async def _stored_decisions(
    backend: SQLStateBackend, workflow_id: str, call_ids: list[str] | None
) -> dict[str, Decision]:
    async with backend.transaction() as conn:
        return await _select_decisions(conn, workflow_id, call_ids)


async def _select_decisions(
    conn: AsyncConnection, workflow_id: str, call_ids: list[str] | None
) -> dict[str, Decision]:
    table = workflow_decisions
    query = select(table).where(table.c.workflow_id == workflow_id)
    if call_ids is not None:
        query = query.where(table.c.call_id.in_(call_ids))
    rows = (await conn.execute(query.order_by(table.c.decided_at, table.c.call_id))).all()
    return {
        row.call_id: Decision(
            call_id=row.call_id,
            approve=row.decision == "approved",
            rejection_message=row.rejection_message,
            by=row.decided_by,
            at=_utc(row.decided_at).isoformat(),
        )
        for row in rows
    }


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
