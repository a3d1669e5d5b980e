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

from ..errors import WorkflowNotFoundError
from .config import client_for, is_launched

__all__ = [
    "FINISHED_STATUSES",
    "AgentWorkflowHandle",
    "AgentWorkflowResult",
    "get_agent_workflow",
    "workflow_status",
]

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

        Raises whatever the run raised (a :class:`~timestep.WorkflowRunError` for SDK errors
        that cannot be stored as they are).
        """
        payload: Any
        handle: WorkflowHandleAsync[Any]
        if self._result is not None:
            payload = await self._result()
        elif is_launched():
            handle = await DBOS.retrieve_workflow_async(self.workflow_id, existing_workflow=False)
            payload = await handle.get_result(polling_interval_sec=polling_interval_sec)
        else:
            client = await client_for(self._url)
            handle = await client.retrieve_workflow_async(self.workflow_id)
            payload = await handle.get_result(polling_interval_sec=polling_interval_sec)
        return AgentWorkflowResult.from_payload(payload)

    async def get_status(self) -> str:
        """The DBOS status: ``ENQUEUED``, ``DELAYED``, ``PENDING``, ``SUCCESS``, ``ERROR``, ...

        Example: ``if await handle.get_status() == "PENDING": ...``

        Raises:
            WorkflowNotFoundError: no workflow has this id.
        """
        status = await workflow_status(self.workflow_id, url=self._url)
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
                status = await workflow_status(self.workflow_id, url=self._url)
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


async def workflow_status(workflow_id: str, *, url: str | None = None) -> WorkflowStatus | None:
    """DBOS's status record of ``workflow_id``, or ``None`` when there is no such workflow.

    Example::

        status = await workflow_status("order-7")
        print(status.status if status else "no such run")
    """
    if is_launched():
        return await DBOS.get_workflow_status_async(workflow_id)
    client = await client_for(url)
    found = await client.list_workflows_async(
        workflow_ids=[workflow_id], load_input=False, load_output=False
    )
    return found[0] if found else None
