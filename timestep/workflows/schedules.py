"""Cron-scheduled durable runs, on DBOS's scheduler.

The schedule is a row in the workflow database, so it survives restarts and fires once per
tick however many workers are launched (each tick has a deterministic workflow id,
``sched-NAME-TIME``). Creating a schedule that exists replaces it, so calling this at every
start-up is fine.

Example::

    ensure_dbos_launched()
    await create_scheduled_agent_workflow(crontab="0 */6 * * *", agent=assistant,
                                          input_items="Write the digest.", name="digest")

Cron has five fields, or six with seconds first (``"*/10 * * * * *"``: every ten seconds),
evaluated in UTC unless ``timezone`` names an IANA zone.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from agents import Agent
from agents.memory import Session
from dbos import DBOS, ScheduleInput
from dbos import error as dbos_errors

from ..errors import WorkflowConfigurationError, WorkflowNotFoundError
from .config import launched_settings
from .durable import RunRequest, build_request, execute_run
from .handles import AgentWorkflowHandle
from .queues import ensure_queue

__all__ = [
    "SCHEDULED_WORKFLOW_NAME",
    "ScheduledAgentWorkflow",
    "create_scheduled_agent_workflow",
    "delete_scheduled_agent_workflow",
    "list_scheduled_agent_workflows",
    "trigger_scheduled_agent_workflow",
]

SCHEDULED_WORKFLOW_NAME = "timestep.scheduled_agent_run"
"""The DBOS name of the workflow every schedule tick runs."""


@dataclass(frozen=True)
class ScheduledAgentWorkflow:
    """A schedule as stored: its name, cron, agent, status (``ACTIVE``/``PAUSED``) and options.

    Example::

        for schedule in await list_scheduled_agent_workflows():
            print(schedule.name, schedule.crontab, schedule.agent)
    """

    name: str
    crontab: str
    agent: str
    status: str
    timezone: str | None
    queue: str | None


@DBOS.workflow(name=SCHEDULED_WORKFLOW_NAME)
async def _scheduled_agent_workflow(scheduled_at: datetime, request: RunRequest) -> dict[str, Any]:
    name = request.get("schedule")
    # A scheduler thread fires until it notices its schedule was deleted, here or in another
    # worker, so a tick may be enqueued after delete_scheduled_agent_workflow returned. Such a
    # tick does nothing. A step, so a replay after a crash decides as the first run did.
    if name is not None and not await DBOS.run_step_async(
        {"name": "timestep.schedule_exists"}, _schedule_exists, name
    ):
        return {"workflow_id": DBOS.workflow_id, "final_output": None, "skipped": name}
    return await execute_run(request)


async def _schedule_exists(name: str) -> bool:
    return await DBOS.get_schedule_async(name) is not None


async def create_scheduled_agent_workflow(
    crontab: str,
    agent: Agent[Any],
    input_items: str | list[Any],
    session: Session | None = None,
    *,
    name: str,
    timezone: str | None = None,
    queue: str | None = None,
    automatic_backfill: bool = False,
    max_turns: int | None = None,
    context: Any = None,
    approval_timeout: float | None = None,
) -> None:
    """Run ``agent`` on ``input_items`` at every ``crontab`` tick, durably; replaces ``name``.

    Args:
        name: The schedule's unique name.
        timezone: IANA zone the cron is read in (default UTC).
        queue: Queue the ticks run on (default: DBOS's internal queue).
        automatic_backfill: On start-up, also run the ticks missed while no worker was up.

    Other arguments are as for :func:`~timestep.workflows.run_agent_workflow`; a session
    given here is shared by every tick.

    Example::

        await create_scheduled_agent_workflow(crontab="0 8 * * 1-5", agent=assistant,
                                              input_items="Morning digest", name="digest",
                                              timezone="Europe/Paris")

    Raises:
        WorkflowConfigurationError: a bad cron, timezone or name.
    """
    launched_settings("create_scheduled_agent_workflow")
    if not isinstance(name, str) or not name.strip():
        raise WorkflowConfigurationError(
            f"A schedule name must be a non-empty string, not {name!r}."
        )
    if not isinstance(crontab, str) or not crontab.strip():
        raise _bad_cron(crontab)
    if timezone is not None:
        try:
            ZoneInfo(timezone)
        except Exception:
            raise WorkflowConfigurationError(
                f"{timezone!r} is not an IANA timezone; use e.g. 'Europe/Paris' or None (UTC)."
            ) from None
    request = build_request(
        agent,
        input_items,
        session,
        max_turns=max_turns,
        context=context,
        approval_timeout=approval_timeout,
    )
    if queue is not None:
        await ensure_queue(queue)
        # As for queue_agent_workflow: a tick that parks leaves its queue slot.
        request["queue"] = queue
    request["schedule"] = name
    schedule = ScheduleInput(
        schedule_name=name,
        workflow_fn=cast(Any, _scheduled_agent_workflow),
        schedule=crontab,
        context=request,
        automatic_backfill=automatic_backfill,
        cron_timezone=timezone,
        queue_name=queue,
    )
    try:
        await DBOS.apply_schedules_async([schedule])
    except dbos_errors.DBOSException as error:
        if "cron" in str(error).lower():
            raise _bad_cron(crontab) from None
        raise WorkflowConfigurationError(f"Cannot create schedule {name!r}: {error}") from None


async def delete_scheduled_agent_workflow(name: str) -> None:
    """Stop and remove the schedule ``name``. Runs already started are unaffected; ticks
    still waiting in their queue are cancelled, and a tick enqueued later (a scheduler thread
    that has not noticed the deletion yet) finishes at once without running the agent.

    Example: ``await delete_scheduled_agent_workflow("digest")``
    """
    launched_settings("delete_scheduled_agent_workflow")
    await DBOS.delete_schedule_async(name)
    waiting = await DBOS.list_workflows_async(
        status="ENQUEUED", name=SCHEDULED_WORKFLOW_NAME, schedule_name=name
    )
    for tick in waiting:
        await DBOS.cancel_workflow_async(tick.workflow_id)


async def list_scheduled_agent_workflows() -> list[ScheduledAgentWorkflow]:
    """Every agent schedule of this application, by name.

    Example: ``names = [s.name for s in await list_scheduled_agent_workflows()]``
    """
    launched_settings("list_scheduled_agent_workflows")
    schedules = await DBOS.list_schedules_async(workflow_name=SCHEDULED_WORKFLOW_NAME)
    found = []
    for schedule in schedules:
        request = schedule["context"]
        found.append(
            ScheduledAgentWorkflow(
                name=schedule["schedule_name"],
                crontab=schedule["schedule"],
                agent=str(request.get("agent", "")) if isinstance(request, dict) else "",
                status=str(schedule.get("status", "ACTIVE")),
                timezone=schedule.get("cron_timezone"),
                queue=schedule.get("queue_name"),
            )
        )
    return sorted(found, key=lambda s: s.name)


async def trigger_scheduled_agent_workflow(name: str) -> AgentWorkflowHandle:
    """Run the schedule ``name`` now, once, besides its ticks.

    Example: ``result = await (await trigger_scheduled_agent_workflow("digest")).get_result()``

    Raises:
        WorkflowNotFoundError: there is no schedule ``name``.
    """
    launched_settings("trigger_scheduled_agent_workflow")
    if await DBOS.get_schedule_async(name) is None:
        raise WorkflowNotFoundError(
            f"There is no schedule {name!r}; list_scheduled_agent_workflows() shows them."
        )
    handle = await asyncio.to_thread(DBOS.trigger_schedule, name)
    return AgentWorkflowHandle(handle.get_workflow_id())


def _bad_cron(crontab: object) -> WorkflowConfigurationError:
    return WorkflowConfigurationError(
        f"{crontab!r} is not a cron expression. Use five fields (minute hour day month "
        "weekday, e.g. '0 */6 * * *') or six with seconds first (e.g. '*/10 * * * * *')."
    )
