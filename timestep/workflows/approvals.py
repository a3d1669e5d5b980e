"""Approvals that wait durably: a parked run costs no process, only a row and a message slot.

When a tool call needs approval, the workflow saves its ``RunState`` with the core
:class:`~timestep.RunStateStore` (status ``interrupted``, session id = workflow id, so
``timestep runs list`` shows it) and then waits on a DBOS message topic. The wait itself is
durable: if the worker dies, the workflow is recovered at its next launch, replays its
checkpointed steps and waits again (for what remains of any timeout). A decision is a DBOS
message, so it can come from any process on the same database, before or after a restart.

Example::

    for pending in await pending_approvals("order-7"):
        print(pending.tool_name, pending.arguments)
    await approve_workflow("order-7", approve=True)                       # every pending call
    await approve_workflow("order-7", approve=False, call_id="call-2",
                           rejection_message="Not on a Friday.")          # just one

Decisions name the tool call they answer, so a duplicate click never approves a *later*
interruption of the same run; the first decision per call wins.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

from agents import ToolApprovalItem
from dbos import DBOS

from ..errors import ApprovalNotPendingError, WorkflowConfigurationError, WorkflowNotFoundError
from ..storage import StateStatus, get_backend
from .config import client_for, dbos_settings, is_launched
from .handles import FINISHED_STATUSES, workflow_status

__all__ = [
    "APPROVAL_TOPIC",
    "Decision",
    "PendingApproval",
    "approve_workflow",
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

    ``by`` names who decided, for the run's timeline (``timestep runs show``).
    """

    call_id: str
    approve: bool
    rejection_message: str | None
    by: NotRequired[str | None]


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
    status = await workflow_status(workflow_id, url=url)
    if status is None:
        raise WorkflowNotFoundError(
            f"No workflow {workflow_id!r} exists in this database; check the id (and the "
            "database URL).",
            workflow_id=workflow_id,
        )
    if status.status in FINISHED_STATUSES:
        raise ApprovalNotPendingError(
            f"Workflow {workflow_id!r} has finished (status {status.status}); there is nothing "
            "left to approve.",
            workflow_id=workflow_id,
        )
    pending = await pending_approvals(workflow_id, url=url)
    if not pending:
        raise ApprovalNotPendingError(
            f"Workflow {workflow_id!r} is not waiting for approval (status {status.status}). "
            "Wait until pending_approvals() lists what it needs, then decide.",
            workflow_id=workflow_id,
        )
    targets = [p for p in pending if call_id is None or p.call_id == call_id]
    if not targets:
        listed = ", ".join(f"{p.call_id} ({p.tool_name})" for p in pending)
        raise ApprovalNotPendingError(
            f"Workflow {workflow_id!r} does not wait for call id {call_id!r}; it waits for: "
            f"{listed}.",
            workflow_id=workflow_id,
        )
    message = {
        "decisions": [
            Decision(call_id=p.call_id, approve=approve, rejection_message=rejection_message, by=by)
            for p in targets
        ]
    }
    if is_launched():
        await DBOS.send_async(workflow_id, message, APPROVAL_TOPIC)
    else:
        client = await client_for(url)
        await client.send_async(workflow_id, message, APPROVAL_TOPIC)
    return [p.call_id for p in targets]


async def wait_for_decisions(
    interruptions: list[ToolApprovalItem], timeout_seconds: float | None
) -> dict[str, Decision]:
    """Inside a workflow: wait durably until each interruption has a decision.

    Returns decisions by call id; with ``timeout_seconds`` (measured from the first wait,
    across restarts) undecided calls are missing from the result. Example::

        decisions = await wait_for_decisions(list(result.interruptions), 3600.0)
    """
    needed = {str(item.call_id) for item in interruptions if item.call_id}
    decided: dict[str, Decision] = {}
    deadline: float | None = None
    if timeout_seconds is not None:
        # Checkpointed, so a recovered workflow keeps the original deadline.
        deadline = await DBOS.run_step_async({"name": "timestep.approval.deadline"}, _now)
        deadline += timeout_seconds
    while not needed <= decided.keys():
        wait = _WAIT_CHUNK_SECONDS
        if deadline is not None:
            # Whether time is up must be a checkpoint too: a replay has to take the same branch.
            remaining = deadline - await DBOS.run_step_async(
                {"name": "timestep.approval.clock"}, _now
            )
            if remaining <= 0:
                break
            wait = min(wait, remaining)
        message = await DBOS.recv_async(APPROVAL_TOPIC, timeout_seconds=wait)
        for decision in _decisions(message):
            if decision["call_id"] in needed:
                decided.setdefault(decision["call_id"], decision)
    return decided


def _decisions(message: Any) -> list[Decision]:
    if not isinstance(message, dict):
        return []
    found: list[Decision] = []
    for raw in message.get("decisions") or []:
        if isinstance(raw, dict) and isinstance(raw.get("call_id"), str):
            found.append(
                Decision(
                    call_id=raw["call_id"],
                    approve=bool(raw.get("approve")),
                    rejection_message=raw.get("rejection_message"),
                    by=raw.get("by") if isinstance(raw.get("by"), str) else None,
                )
            )
    return found


def _now() -> float:
    return time.time()


def _default_url() -> str:
    from ..config import load_settings

    settings = dbos_settings()
    return settings.url if settings is not None else load_settings().db_url
