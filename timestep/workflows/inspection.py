"""Look at, cancel and resume durable agent runs, from any process on the workflow database.

Everything here goes through DBOS's own management API: the launched engine when this process
runs one, else a DBOS client on the database (so a CLI or an admin script needs no worker).

Example::

    for run in await list_agent_workflows(status="PENDING"):
        print(run.workflow_id, run.agent, run.queue)
    details = await show_agent_workflow("order-7")
    print([step.name for step in details.steps], details.pending_approvals)
    await cancel_agent_workflow("order-7")      # stops at its next step
    await resume_agent_workflow("order-7")      # a launched worker carries on from there

Resuming a PENDING run whose worker is alive (it heartbeats, see :mod:`.fleet`) is refused
unless forced: that worker is executing it, and a second one would repeat its current step.

What a cancelled run was doing when cancelled finishes, but it starts no further step;
resuming it replays the checkpointed steps and continues after the last one.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agents import ModelResponse
from dbos import DBOS, WorkflowStatus

from ..errors import WorkflowConfigurationError, WorkflowNotFoundError, WorkflowOwnerAliveError
from .approvals import PendingApproval, pending_approvals
from .config import client_for, is_launched
from .durable import APPROVAL_WAITER_NAME, WORKFLOW_NAME
from .fleet import worker_status
from .handles import (
    CONTINUED_IN,
    FINISHED_STATUSES,
    AgentWorkflowHandle,
    chain_tail,
    workflow_status,
)
from .schedules import SCHEDULED_WORKFLOW_NAME

__all__ = [
    "AGENT_WORKFLOW_NAMES",
    "WORKFLOW_STATUSES",
    "AgentWorkflowDetails",
    "AgentWorkflowInfo",
    "WorkflowStep",
    "cancel_agent_workflow",
    "list_agent_workflows",
    "pending_runs_by_executor",
    "resume_agent_workflow",
    "show_agent_workflow",
]

# How often cancel follows a run being handed on while it cancels (0.1 s apart).
_HANDOVER_CHECKS = 100

AGENT_WORKFLOW_NAMES = (WORKFLOW_NAME, SCHEDULED_WORKFLOW_NAME, APPROVAL_WAITER_NAME)
"""The DBOS workflow names of durable agent runs (direct and queued, scheduled), and of the
approval waits of queued runs (``ID/approval-N``, parked outside their queue)."""

WORKFLOW_STATUSES = (
    "ENQUEUED",
    "DELAYED",
    "PENDING",
    "SUCCESS",
    "ERROR",
    "CANCELLED",
    "MAX_RECOVERY_ATTEMPTS_EXCEEDED",
)
"""Every DBOS workflow status, roughly in lifecycle order."""

# Step outputs can be whole model responses; a summary is what a person scanning steps reads.
_SUMMARY_CHARS = 200


@dataclass(frozen=True)
class AgentWorkflowInfo:
    """One durable agent run as the workflow database records it::

    AgentWorkflowInfo(workflow_id="order-7", status="PENDING", agent="Clerk",
                      kind="timestep.agent_run", queue=None, executor_id="local", ...)
    """

    workflow_id: str
    status: str
    agent: str | None
    kind: str
    queue: str | None
    executor_id: str | None
    app_version: str | None
    created_at: datetime | None
    updated_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data: ``json.dumps(info.to_dict())``."""
        return {
            "workflow_id": self.workflow_id,
            "status": self.status,
            "agent": self.agent,
            "kind": self.kind,
            "queue": self.queue,
            "executor_id": self.executor_id,
            "app_version": self.app_version,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
        }


@dataclass(frozen=True)
class WorkflowStep:
    """One checkpointed step of a run, in execution order::

    WorkflowStep(step_id=3, name="timestep.tool:lookup", output="order 7: shipped", error=None,
                 started_at=..., completed_at=...)

    ``output`` is the stored value itself (a ``ModelResponse`` for model steps); ``summary``
    is a short text form of it, ``error`` the error text when the step failed.
    """

    step_id: int
    name: str
    output: Any
    error: str | None
    started_at: datetime | None
    completed_at: datetime | None
    child_workflow_id: str | None = None

    @property
    def summary(self) -> str:
        """A one-line description of the step's outcome."""
        if self.error is not None:
            return f"error: {self.error}"[:_SUMMARY_CHARS]
        return _summarize(self.output)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (the output as its summary): ``step.to_dict()["name"]``."""
        return {
            "step_id": self.step_id,
            "name": self.name,
            "output": None if self.error is not None else _summarize(self.output),
            "error": self.error,
            "started_at": _iso(self.started_at),
            "completed_at": _iso(self.completed_at),
            "child_workflow_id": self.child_workflow_id,
        }


@dataclass(frozen=True)
class AgentWorkflowDetails:
    """A run, its checkpointed steps, and what it waits for (see :func:`show_agent_workflow`)."""

    workflow: AgentWorkflowInfo
    steps: list[WorkflowStep] = field(default_factory=list)
    pending_approvals: list[PendingApproval] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data: ``json.dumps(details.to_dict())``."""
        return {
            **self.workflow.to_dict(),
            "error": self.error,
            "steps": [step.to_dict() for step in self.steps],
            "pending_approvals": [
                {
                    "call_id": p.call_id,
                    "tool_name": p.tool_name,
                    "arguments": p.arguments,
                    "agent": p.agent,
                }
                for p in self.pending_approvals
            ],
        }


async def list_agent_workflows(
    status: str | None = None, limit: int = 50, *, url: str | None = None
) -> list[AgentWorkflowInfo]:
    """Durable agent runs, newest first, optionally only those with ``status``.

    Example::

        waiting = await list_agent_workflows(status="PENDING", limit=10)

    Raises:
        WorkflowConfigurationError: an unknown status or a limit below 1.
    """
    if status is not None:
        status = status.upper()
        if status not in WORKFLOW_STATUSES:
            raise WorkflowConfigurationError(
                f"Unknown workflow status {status!r}; use one of {', '.join(WORKFLOW_STATUSES)}."
            )
    if not isinstance(limit, int) or limit < 1:
        raise WorkflowConfigurationError(f"limit must be a positive int, not {limit!r}.")
    options: dict[str, Any] = {
        "name": list(AGENT_WORKFLOW_NAMES),
        "status": status,
        "limit": limit,
        "sort_desc": True,
        "load_output": False,
    }
    if is_launched():
        found = await DBOS.list_workflows_async(**options)
    else:
        found = await (await client_for(url)).list_workflows_async(**options)
    return [_info(status_row) for status_row in found]


async def show_agent_workflow(workflow_id: str, *, url: str | None = None) -> AgentWorkflowDetails:
    """One run in detail: its record, every checkpointed step, and pending approvals.

    Example::

        details = await show_agent_workflow("order-7")
        for step in details.steps:
            print(step.step_id, step.name, step.summary)

    Raises:
        WorkflowNotFoundError: there is no workflow ``workflow_id``.
    """
    record = await _find(workflow_id, url=url, load_output=True)
    if is_launched():
        raw_steps = await DBOS.list_workflow_steps_async(workflow_id)
    else:
        raw_steps = await (await client_for(url)).list_workflow_steps_async(workflow_id)
    steps = [
        WorkflowStep(
            step_id=raw["function_id"],
            name=raw["function_name"],
            output=raw["output"],
            error=_error_text(raw["error"]),
            started_at=_time(raw["started_at_epoch_ms"]),
            completed_at=_time(raw["completed_at_epoch_ms"]),
            child_workflow_id=raw["child_workflow_id"],
        )
        for raw in raw_steps
    ]
    # A queued run that parked goes on in another workflow (see handles.CONTINUED_IN).
    tail = await chain_tail(workflow_id, url=url)
    going_on = tail is not None and tail.status not in FINISHED_STATUSES
    waiting = await pending_approvals(workflow_id, url=url) if going_on else []
    return AgentWorkflowDetails(
        workflow=_info(record),
        steps=steps,
        pending_approvals=waiting,
        error=_error_text(record.error),
    )


async def cancel_agent_workflow(workflow_id: str, *, url: str | None = None) -> str:
    """Cancel a run: it starts no further step, and no worker recovers it. Returns its status.

    A run that already finished keeps its status (``SUCCESS`` or ``ERROR``); cancelling it
    changes nothing. Example::

        await cancel_agent_workflow("order-7")   # "CANCELLED"

    Raises:
        WorkflowNotFoundError: there is no workflow ``workflow_id``.
    """
    await _find(workflow_id, url=url)
    status = "PENDING"
    for _ in range(_HANDOVER_CHECKS):
        # A queued run that parked is carried on by another workflow: cancel that one.
        target = await _carrier(workflow_id, url=url)
        if is_launched():
            await DBOS.cancel_workflow_async(target)
        else:
            await (await client_for(url)).cancel_workflow_async(target)
        found = await workflow_status(target, url=url, load_output=True)
        status = found.status if found is not None else status
        output = found.output if found is not None else None
        handed_on = isinstance(output, dict) and bool(output.get(CONTINUED_IN))
        if not (status == "SUCCESS" and handed_on):
            return status
        # It was handing the run on (parking) as we cancelled: cancel where the run went.
        await asyncio.sleep(0.1)
    return status


async def resume_agent_workflow(
    workflow_id: str, *, url: str | None = None, force: bool = False
) -> AgentWorkflowHandle:
    """Resume a cancelled (or stuck) run: it is enqueued, and a launched worker replays its
    checkpointed steps and carries on. Finished runs (``SUCCESS``, ``ERROR``) stay as they are.

    A PENDING run whose worker is alive is being executed right now; resuming it would run its
    current step a second time, so it is refused unless ``force=True``. A dead worker's runs
    need no resume: live workers adopt them (see :mod:`.fleet`).

    Example::

        handle = await resume_agent_workflow("order-7")
        result = await handle.get_result()

    Raises:
        WorkflowNotFoundError: there is no workflow ``workflow_id``.
        WorkflowOwnerAliveError: the run is PENDING on a live worker and ``force`` is false.
    """
    first = await _find(workflow_id, url=url)
    target = await _carrier(workflow_id, url=url)
    # The run's live part: a queued run that parked goes on in a continuation workflow.
    record = first if target == workflow_id else await _find(target, url=url)
    if record.status == "PENDING" and record.executor_id and not force:
        owner = await worker_status(record.executor_id, url=url)
        if owner is not None and owner.alive:
            raise WorkflowOwnerAliveError(
                f"Workflow {workflow_id!r} is running on live worker {owner.executor_id!r} "
                f"(pid {owner.pid} on {owner.host}, last heartbeat {owner.silent_for:.1f} s "
                "ago); resuming it would run its current step twice. Wait for it, cancel it "
                "first (`timestep workflows cancel`), or pass --force (force=True) if you know "
                "that worker is stuck.",
                workflow_id=workflow_id,
                executor_id=owner.executor_id,
            )
    if is_launched():
        await DBOS.resume_workflow_async(target)
    else:
        await (await client_for(url)).resume_workflow_async(target)
    return AgentWorkflowHandle(workflow_id, url=url)


async def _carrier(workflow_id: str, *, url: str | None) -> str:
    tail = await chain_tail(workflow_id, url=url)
    return tail.workflow_id if tail is not None else workflow_id


async def pending_runs_by_executor(*, url: str | None = None) -> dict[str, int]:
    """How many PENDING workflows each executor id holds, e.g. ``{"web-1-3f9a0c2e": 2}``."""
    options: dict[str, Any] = {"status": "PENDING", "load_input": False, "load_output": False}
    if is_launched():
        found = await DBOS.list_workflows_async(**options)
    else:
        found = await (await client_for(url)).list_workflows_async(**options)
    return dict(Counter(record.executor_id for record in found if record.executor_id))


async def _find(workflow_id: str, *, url: str | None, load_output: bool = False) -> WorkflowStatus:
    if not isinstance(workflow_id, str) or not workflow_id.strip():
        raise WorkflowConfigurationError(
            f"workflow_id must be a non-empty string, not {workflow_id!r}."
        )
    options: dict[str, Any] = {"workflow_ids": [workflow_id], "load_output": load_output}
    if is_launched():
        found = await DBOS.list_workflows_async(**options)
    else:
        found = await (await client_for(url)).list_workflows_async(**options)
    if not found:
        raise WorkflowNotFoundError(
            f"No workflow {workflow_id!r} exists in this database; `timestep workflows list` "
            "shows the durable runs (check the id and the database URL).",
            workflow_id=workflow_id,
        )
    return found[0]


def _info(record: WorkflowStatus) -> AgentWorkflowInfo:
    return AgentWorkflowInfo(
        workflow_id=record.workflow_id,
        status=str(record.status),
        agent=_agent_name(record),
        kind=record.name,
        queue=record.queue_name,
        executor_id=record.executor_id,
        app_version=record.app_version,
        created_at=_time(record.created_at),
        updated_at=_time(record.updated_at),
    )


def _agent_name(record: WorkflowStatus) -> str | None:
    # The run request is the one dict argument (scheduled runs also get the tick's time); an
    # input DBOS could not deserialize arrives as a string and names no agent.
    inputs: Any = record.input
    args = inputs.get("args", ()) if isinstance(inputs, dict) else ()
    for arg in args:
        if isinstance(arg, dict) and isinstance(arg.get("agent"), str):
            return str(arg["agent"])
    return None


def _summarize(output: Any) -> str:
    if isinstance(output, ModelResponse):
        parts = []
        for item in output.output:
            kind = getattr(item, "type", None)
            if kind == "function_call":
                parts.append(f"{getattr(item, 'name', '?')}({getattr(item, 'arguments', '')})")
            elif kind == "message":
                texts = [getattr(c, "text", "") for c in getattr(item, "content", [])]
                parts.append(repr(" ".join(t for t in texts if t)))
            else:
                parts.append(str(kind))
        return ("model -> " + ", ".join(parts))[:_SUMMARY_CHARS]
    if output is None:
        return ""
    return str(output)[:_SUMMARY_CHARS]


def _error_text(error: Any) -> str | None:
    if error is None:
        return None
    if isinstance(error, BaseException):
        return f"{type(error).__name__}: {error}"
    return str(error)


def _time(epoch_ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC) if epoch_ms is not None else None


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
