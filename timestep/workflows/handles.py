"""What a durable run hands back: its result, and a handle on a run that may still be going.

Example::

    handle = await queue_agent_workflow(agent=assistant, input_items="hi")
    print(await handle.get_status())          # "ENQUEUED", "PENDING", "SUCCESS", ...
    result = await handle.get_result()
    print(result.final_output)

    later = await get_agent_workflow("order-7")   # from any process on the same database
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from dbos import DBOS, WorkflowHandleAsync, WorkflowStatus
from dbos import error as dbos_errors

from ..errors import WorkflowCancelledError, WorkflowNotFoundError
from .config import client_for, is_launched

__all__ = [
    "CONTINUED_IN",
    "FINISHED_STATUSES",
    "AgentWorkflowHandle",
    "AgentWorkflowResult",
    "chain_tail",
    "get_agent_workflow",
    "workflow_status",
]

CONTINUED_IN = "continued_in"
"""The result key of a queued run's workflow that parked: the id of the workflow carrying it on.

A queued run that parks for approval ends its queued workflow (freeing its queue slot) with
``{"workflow_id": ..., "continued_in": "<id>/approval-1"}``; that waiter, once decided, ends
with ``continued_in`` naming the continuation it queued. Handles, approvals and cancel follow
the chain, so callers only ever use the run's own id.
"""

_CANCEL_WATCH_SECONDS = 1.0
# How often a caller awaiting a run in this process checks whether it was cancelled: DBOS
# does not interrupt a wait in progress, so the run's own task may never end.

FINISHED_STATUSES = frozenset({"SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"})
"""DBOS statuses after which a workflow never runs again by itself."""


@dataclass(frozen=True)
class AgentWorkflowResult:
    """The outcome of a finished durable agent run.

    ``new_items`` are the items the run added to the conversation (its input, then everything
    the agents produced), in the SDK's input-item form; they are what was appended to the
    session. ``approvals`` lists each approval decision the run applied, in order. Example::

        result = await run_agent_workflow(agent=assistant, input_items="hi")
        print(result.final_output, result.last_agent)
    """

    workflow_id: str
    final_output: Any
    last_agent: str
    new_items: list[Any] = field(default_factory=list)
    session_id: str | None = None
    approvals: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> AgentWorkflowResult:
        """Rebuild a result from what the workflow stored (a plain dict, for durability).

        Example::

            result = AgentWorkflowResult.from_payload(await DBOS.get_result_async("order-7"))
        """
        return cls(
            workflow_id=payload["workflow_id"],
            final_output=payload.get("final_output"),
            last_agent=payload.get("last_agent", ""),
            new_items=list(payload.get("new_items") or []),
            session_id=payload.get("session_id"),
            approvals=list(payload.get("approvals") or []),
        )


class AgentWorkflowHandle:
    """A durable agent run, started, queued or scheduled, by its workflow id.

    Works in any process on the same database; without a launched engine in this process it
    talks to the database through a DBOS client. Example::

        handle = AgentWorkflowHandle("order-7")
        await handle.wait_for_status("SUCCESS", "ERROR")
    """

    def __init__(
        self,
        workflow_id: str,
        *,
        url: str | None = None,
        _result: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        self.workflow_id = workflow_id
        self._url = url
        self._result = _result

    def __repr__(self) -> str:
        return f"AgentWorkflowHandle({self.workflow_id!r})"

    async def get_result(self, *, polling_interval_sec: float = 0.5) -> AgentWorkflowResult:
        """Wait for the run to finish and return its result: ``await handle.get_result()``.

        Follows a queued run through its approval waits to the workflow that finishes it.

        Whatever the run raised is raised again here (a :class:`~timestep.WorkflowRunError`
        for SDK errors that cannot be stored as they are).

        Raises:
            WorkflowCancelledError: the run was cancelled (raised as soon as it is, even while
                the run is parked).
        """
        current = self.workflow_id
        payload = await self._one_result(current, polling_interval_sec, local=True)
        while isinstance(payload, dict) and payload.get(CONTINUED_IN):
            current = str(payload[CONTINUED_IN])
            payload = await self._one_result(current, polling_interval_sec, local=False)
        return AgentWorkflowResult.from_payload(payload)

    async def _one_result(self, workflow_id: str, polling_interval_sec: float, local: bool) -> Any:
        handle: WorkflowHandleAsync[Any]
        try:
            if local and self._result is not None:
                if DBOS.workflow_id is not None:
                    # Awaited from inside a workflow: status reads there would be steps, and
                    # their number would depend on timing. Await the run alone.
                    return await self._result()
                return await self._local_result(self._result, workflow_id)
            if is_launched():
                handle = await DBOS.retrieve_workflow_async(workflow_id, existing_workflow=False)
            else:
                client = await client_for(self._url)
                handle = await client.retrieve_workflow_async(workflow_id)
            return await handle.get_result(polling_interval_sec=polling_interval_sec)
        except (
            dbos_errors.DBOSAwaitedWorkflowCancelledError,
            dbos_errors.DBOSWorkflowCancelledError,
        ):
            raise self._cancelled() from None

    async def _local_result(self, result: Callable[[], Awaitable[Any]], workflow_id: str) -> Any:
        """The result of a run executing in this process, or its cancellation, first."""
        task = asyncio.ensure_future(result())
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=_CANCEL_WATCH_SECONDS)
                if done:
                    return task.result()
                status = await workflow_status(workflow_id, url=self._url)
                if status is not None and status.status == "CANCELLED":
                    raise self._cancelled()
        finally:
            # The run's own task is shielded by DBOS: this only stops waiting for it.
            task.cancel()

    def _cancelled(self) -> WorkflowCancelledError:
        return WorkflowCancelledError(
            f"Workflow {self.workflow_id!r} was cancelled, so it has no result. "
            f"resume_agent_workflow({self.workflow_id!r}) (or `timestep workflows resume "
            f"{self.workflow_id}`) carries it on from its last completed step.",
            workflow_id=self.workflow_id,
        )

    async def get_status(self) -> str:
        """The DBOS status: ``ENQUEUED``, ``DELAYED``, ``PENDING``, ``SUCCESS``, ``ERROR``, ...

        Example: ``if await handle.get_status() == "PENDING": ...``

        Raises:
            WorkflowNotFoundError: no workflow has this id.
        """
        status = await chain_tail(self.workflow_id, url=self._url)
        if status is None:
            raise WorkflowNotFoundError(
                f"No workflow {self.workflow_id!r} exists in this database.",
                workflow_id=self.workflow_id,
            )
        return str(status.status)

    async def wait_for_status(
        self, *statuses: str, timeout_seconds: float = 60.0, interval: float = 0.1
    ) -> str:
        """Poll until the status is one of ``statuses``; returns it.

        Example: ``await handle.wait_for_status("PENDING", timeout_seconds=10)``

        Raises:
            TimeoutError: it did not get there within ``timeout_seconds``.
        """
        async with asyncio.timeout(timeout_seconds):
            while True:
                status = await chain_tail(self.workflow_id, url=self._url)
                if status is not None and status.status in statuses:
                    return str(status.status)
                await asyncio.sleep(interval)


async def get_agent_workflow(workflow_id: str, *, url: str | None = None) -> AgentWorkflowHandle:
    """A handle on an existing durable run, from any process on its database.

    Example::

        result = await (await get_agent_workflow("order-7")).get_result()

    Raises:
        WorkflowNotFoundError: no workflow has this id.
    """
    handle = AgentWorkflowHandle(workflow_id, url=url)
    await handle.get_status()
    return handle


async def workflow_status(
    workflow_id: str, *, url: str | None = None, load_output: bool = False
) -> WorkflowStatus | None:
    """DBOS's status record of ``workflow_id``, or ``None`` when there is no such workflow.

    Example::

        status = await workflow_status("order-7")
        print(status.status if status else "no such run")
    """
    # Without the input (the whole run request): callers poll this while a run is parked.
    if is_launched():
        found = await DBOS.list_workflows_async(
            workflow_ids=[workflow_id], load_input=False, load_output=load_output
        )
    else:
        client = await client_for(url)
        found = await client.list_workflows_async(
            workflow_ids=[workflow_id], load_input=False, load_output=load_output
        )
    return found[0] if found else None


async def chain_tail(workflow_id: str, *, url: str | None = None) -> WorkflowStatus | None:
    """The status of the workflow now carrying run ``workflow_id`` (itself, unless a queued
    run parked and was handed on, see :data:`CONTINUED_IN`); ``None``: no such workflow.

    Example::

        tail = await chain_tail("order-7")
        print(tail.workflow_id, tail.status)   # "order-7/approval-1", "PENDING"
    """
    status = await workflow_status(workflow_id, url=url, load_output=True)
    while status is not None and status.status == "SUCCESS":
        output = status.output
        if not (isinstance(output, dict) and output.get(CONTINUED_IN)):
            break
        following = await workflow_status(str(output[CONTINUED_IN]), url=url, load_output=True)
        if following is None:
            # Handed on, but the next workflow is not stored yet: report the run as going on.
            break
        status = following
    return status
