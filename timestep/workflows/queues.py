"""Queued durable runs: priority, de-duplication, rate limits and concurrency, all DBOS's.

Queues are rows in the workflow database, registered after launch; any launched worker on the
database runs what is queued on them (respecting the limits across workers).

Example::

    ensure_dbos_launched()
    await register_agent_queue("support", worker_concurrency=2, rate_limit=(10, 60.0))
    handle = await queue_agent_workflow(agent=assistant, input_items=items, queue="support",
                                        priority=1, deduplication_id="user-42")
    result = await handle.get_result()

Priorities run lowest number first; a run queued without one goes before any with one
(DBOS's default priority 0).

A run parked on an approval holds no slot: its queued workflow ends at the park and hands the
run to a waiter outside the queue, which queues the rest of the run on the same queue once
decided (see :data:`~timestep.workflows.handles.CONTINUED_IN`). Handles follow the chain.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

from agents import Agent
from agents.memory import Session
from dbos import DBOS, SetEnqueueOptions, SetWorkflowID
from dbos import error as dbos_errors

from ..errors import DuplicateWorkflowError, QueueNotFoundError, WorkflowConfigurationError
from ..identifiers import check_identifier
from .config import forget_queue, launched_settings, mark_queue_registered
from .durable import agent_workflow, build_request, check_workflow_id, refuse_foreign_state
from .handles import AgentWorkflowHandle

__all__ = [
    "DEFAULT_QUEUE",
    "MAX_PRIORITY",
    "ensure_queue",
    "queue_agent_workflow",
    "register_agent_queue",
]

DEFAULT_QUEUE = "timestep-agents"
"""The queue ``queue_agent_workflow`` uses unless told otherwise; registered on first use."""

MAX_PRIORITY = 2**31 - 1
"""The largest (least urgent) priority DBOS accepts; 1 is the most urgent."""


async def register_agent_queue(
    name: str,
    *,
    concurrency: int | None = None,
    worker_concurrency: int | None = None,
    rate_limit: tuple[int, float] | None = None,
    polling_interval_sec: float = 1.0,
) -> None:
    """Create or update the queue ``name`` in the workflow database.

    Args:
        concurrency: At most this many runs of the queue at once, across all workers.
        worker_concurrency: At most this many at once on each worker.
        rate_limit: ``(limit, period)``: at most ``limit`` runs start in any ``period`` seconds.
        polling_interval_sec: How often workers look for runnable work on it.

    Example::

        await register_agent_queue("digests", concurrency=1, rate_limit=(5, 60.0))

    Raises:
        WorkflowNotLaunchedError: the engine is not launched in this process.
        WorkflowConfigurationError: a bad name or limit.
    """
    launched_settings("register_agent_queue")
    _check_name(name)
    for label, value in (("concurrency", concurrency), ("worker_concurrency", worker_concurrency)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise WorkflowConfigurationError(f"{label} must be a positive int, not {value!r}.")
    limiter = None
    if rate_limit is not None:
        limit, period = _check_rate_limit(rate_limit)
        limiter = {"limit": limit, "period": period}
    try:
        await DBOS.register_queue_async(
            name,
            global_concurrency=concurrency,
            worker_concurrency=worker_concurrency,
            limiter=limiter,  # type: ignore[arg-type]
            polling_interval_sec=polling_interval_sec,
        )
    except dbos_errors.DBOSException as error:
        forget_queue(name)
        raise WorkflowConfigurationError(f"Cannot register queue {name!r}: {error}") from None
    mark_queue_registered(name)


async def ensure_queue(name: str) -> None:
    """Make sure ``name`` exists: the default queue is created on demand, others must be.

    Example: ``await ensure_queue("support")``

    Raises:
        QueueNotFoundError: ``name`` was never registered (by any process on the database).
    """
    _check_name(name)
    if not mark_queue_registered(name):
        return
    try:
        if name == DEFAULT_QUEUE:
            await DBOS.register_queue_async(name)
            return
        if await DBOS.retrieve_queue_async(name) is None:
            raise QueueNotFoundError(
                f"Queue {name!r} does not exist. Create it once with "
                f"await register_agent_queue({name!r}, ...) after ensure_dbos_launched(), "
                f"or use the default queue ({DEFAULT_QUEUE!r})."
            )
    except BaseException:
        forget_queue(name)
        raise


async def queue_agent_workflow(
    agent: Agent[Any],
    input_items: str | list[Any],
    session: Session | None = None,
    *,
    queue: str = DEFAULT_QUEUE,
    priority: int | None = None,
    deduplication_id: str | None = None,
    return_existing: bool = False,
    workflow_id: str | None = None,
    delay_seconds: float | None = None,
    max_turns: int | None = None,
    context: Any = None,
    approval_timeout: float | None = None,
) -> AgentWorkflowHandle:
    """Queue a durable run of ``agent``; a launched worker on the database runs it.

    Args:
        queue: The queue (see :func:`register_agent_queue`); the default one needs no setup.
        priority: 1 (most urgent) to :data:`MAX_PRIORITY`; lower numbers run first.
        deduplication_id: While a run with this id is queued or running on ``queue``, another
            is refused with :class:`~timestep.DuplicateWorkflowError` (or, with
            ``return_existing=True``, the handle of the one already there is returned).
        workflow_id: The run's id; queuing an id that exists returns that run.
        delay_seconds: Do not start it before this many seconds from now.

    Other arguments are as for :func:`~timestep.workflows.run_agent_workflow`.

    Example::

        handle = await queue_agent_workflow(agent=assistant, input_items="hi", priority=1,
                                            deduplication_id="user-42")
        result = await handle.get_result()
    """
    settings = launched_settings("queue_agent_workflow")
    request = build_request(
        agent,
        input_items,
        session,
        max_turns=max_turns,
        context=context,
        approval_timeout=approval_timeout,
    )
    if priority is not None and (
        not isinstance(priority, int)
        or isinstance(priority, bool)
        or not 1 <= priority <= MAX_PRIORITY
    ):
        raise WorkflowConfigurationError(
            f"priority must be an int from 1 (most urgent) to {MAX_PRIORITY}, not {priority!r}."
        )
    if deduplication_id is not None:
        check_identifier(deduplication_id, "deduplication_id", WorkflowConfigurationError)
    if return_existing and deduplication_id is None:
        raise WorkflowConfigurationError(
            "return_existing=True needs a deduplication_id to find the existing run by."
        )
    if delay_seconds is not None and not (
        isinstance(delay_seconds, int | float)
        and math.isfinite(delay_seconds)
        and delay_seconds >= 0
    ):
        raise WorkflowConfigurationError(
            f"delay_seconds must be a non-negative number, not {delay_seconds!r}."
        )
    if workflow_id is not None:
        check_workflow_id(workflow_id)
    await ensure_queue(queue)
    await refuse_foreign_state(agent, workflow_id, settings.url)
    # A park then ends the queued workflow (freeing its slot); the decision queues the rest.
    request["queue"], request["priority"] = queue, priority
    options = SetEnqueueOptions(
        priority=priority,
        deduplication_id=deduplication_id,
        delay_seconds=delay_seconds,
        duplication_policy="return-existing" if return_existing else None,
    )
    with options, SetWorkflowID(workflow_id) if workflow_id else contextlib.nullcontext():
        try:
            handle = await DBOS.enqueue_workflow_async(queue, agent_workflow, request)
        except dbos_errors.DBOSQueueDeduplicatedError:
            raise DuplicateWorkflowError(
                f"A run with deduplication_id {deduplication_id!r} is already queued or "
                f"running on {queue!r}. Wait for it (or pass return_existing=True to get its "
                "handle); the id is free again once it finishes."
            ) from None
    return AgentWorkflowHandle(handle.get_workflow_id())


def _check_name(name: object) -> None:
    check_identifier(name, "The queue name", WorkflowConfigurationError)


def _check_rate_limit(rate_limit: object) -> tuple[int, float]:
    if isinstance(rate_limit, tuple) and len(rate_limit) == 2:
        limit, period = rate_limit
        if (
            isinstance(limit, int)
            and limit >= 1
            and isinstance(period, int | float)
            and math.isfinite(period)
            and period > 0
        ):
            return limit, float(period)
    raise WorkflowConfigurationError(
        f"rate_limit must be (limit, period): at most `limit` (a positive int) runs start in "
        f"any `period` seconds (a positive number), e.g. (10, 60.0); got {rate_limit!r}."
    )
