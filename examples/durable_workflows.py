"""Durable agent runs with DBOS: a run, a queue with priorities, a cron schedule, an approval.

Every model call, tool call and guardrail check is a checkpointed step in the database, so a
worker killed mid-run finishes it after a restart without repeating finished steps. This script
uses a temporary SQLite file (pass ``--url`` for PostgreSQL) and, in one process:

1. runs an agent as a durable workflow, then calls again with the same ``workflow_id`` and gets
   the same run back (nothing runs twice);
2. queues three runs with priorities on a queue;
3. creates a schedule with a seconds-granularity crontab, waits for one tick, deletes it;
4. starts a run whose ``refund`` tool needs approval, lists the pending approval and approves
   it (``approve_workflow`` works the same from any other process, or ``timestep approve ID``).

Run it::

    python examples/durable_workflows.py

Without ``OPENAI_API_KEY`` a small offline model answers deterministically from its input (a
durable run may replay model calls, so it must not depend on call order); with the key set the
agent uses a real OpenAI model.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from agents import Agent, Model, ModelResponse, function_tool
from agents.testing import ScriptedModel, assistant_message, function_call

from timestep.workflows import (
    approve_workflow,
    configure_dbos,
    create_scheduled_agent_workflow,
    delete_scheduled_agent_workflow,
    ensure_dbos_launched,
    list_agent_workflows,
    pending_approvals,
    queue_agent_workflow,
    register_agent,
    register_agent_queue,
    run_agent_workflow,
    shutdown_dbos,
)

REAL_MODEL = "gpt-4.1-mini"


class DeskModel(Model):
    """An offline model that answers from its input alone.

    ``Refund order N`` asks for the ``refund`` tool; once a tool output is in the input it
    reports it; anything else is answered with ``Answer: <the question>``. Every prompt it sees
    """

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        """One deterministic reply for the input (second positional argument or ``input=``)."""
        items = args[1] if len(args) > 1 else kwargs["input"]
        items = [{"role": "user", "content": items}] if isinstance(items, str) else items
        outputs = [i["output"] for i in items if i.get("type") == "function_call_output"]
        question = str([i for i in items if i.get("role") == "user"][-1]["content"])
        refund = re.match(r"Refund order (\d+)", question)
        if outputs:
            reply = assistant_message(f"Done: {outputs[-1]}.")
        elif refund:
            order = refund.group(1)
            reply = function_call("refund", {"order": order}, call_id=f"call-refund-{order}")
        else:
            reply = assistant_message(f"Answer: {question}")
        return await ScriptedModel([[reply]]).get_response(*args, **kwargs)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        """Durable runs never stream."""
        raise NotImplementedError


@function_tool(needs_approval=True)
def refund(order: str) -> str:
    """Refund an order (a human approves every refund)."""
    return f"refunded order {order}"


async def wait_for(what: str, check: Any) -> Any:
    """Poll the async ``check`` until it returns something truthy (at most 20 s)."""
    for _ in range(200):
        if found := await check():
            return found
        await asyncio.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def build_agent() -> Agent[Any]:
    """The Desk agent: a real model with a key, else :class:`DeskModel`."""
    return Agent(
        name="Desk",
        instructions="Answer briefly. Use the refund tool for every refund request.",
        model=REAL_MODEL if os.environ.get("OPENAI_API_KEY") else DeskModel(),
        tools=[refund],
    )


async def main(assistant: Agent[Any]) -> None:
    """The four scenarios, on one launched engine."""

    # 1. A durable run, idempotent by workflow id.
    result = await run_agent_workflow(
        agent=assistant, input_items="Where is order 7?", workflow_id="order-7"
    )
    print(f"run order-7: {result.final_output}")
    again = await run_agent_workflow(
        agent=assistant,
        input_items="ignored: the first call's arguments win",
        workflow_id="order-7",
    )
    print(f"run order-7 again (same run, not re-run): {again.final_output}")

    # 2. Queued runs; lower priority numbers start first.
    await register_agent_queue("support", worker_concurrency=1, polling_interval_sec=0.1)
    handles = [
        await queue_agent_workflow(
            agent=assistant, input_items=f"Ticket {n}", queue="support", priority=n
        )
        for n in (3, 1, 2)
    ]
    for handle in handles:
        queued = await handle.get_result(polling_interval_sec=0.1)
        print(f"queued {handle.workflow_id[:8]}...: {queued.final_output}")

    # 3. A schedule: "* * * * * *" ticks every second (six fields: seconds first).
    await create_scheduled_agent_workflow(
        crontab="* * * * * *", agent=assistant, input_items="Daily digest", name="digest"
    )

    async def ticked() -> bool:
        runs = await list_agent_workflows(status="SUCCESS")
        return any(r.workflow_id.startswith("sched-digest-") for r in runs)

    await wait_for("the schedule to fire", ticked)
    await delete_scheduled_agent_workflow("digest")
    print("schedule digest fired; deleted it")

    # 4. An approval: the run parks until someone decides, from any process.
    run = asyncio.create_task(
        run_agent_workflow(agent=assistant, input_items="Refund order 9", workflow_id="refund-9")
    )

    async def parked() -> list[Any]:
        return await pending_approvals("refund-9")

    for pending in await wait_for("the refund to wait for approval", parked):
        print(f"pending approval: {pending.tool_name}({pending.arguments}) [{pending.call_id}]")
    decided = await approve_workflow("refund-9")
    print(f"approved: {', '.join(decided)}")
    print(f"run refund-9: {(await run).final_output}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="database URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="timestep-workflows-") as tmp:
        database = args.url or f"sqlite:///{Path(tmp) / 'workflows.db'}"
        # Register every agent a durable run may use before launching: a recovering worker
        # finds a run's agent by its name.
        desk = register_agent(build_agent())
        configure_dbos(database, notification_listener_polling_interval_sec=0.1)
        ensure_dbos_launched()
        try:
            asyncio.run(main(desk))
        finally:
            shutdown_dbos()
    print(f"finished in {time.monotonic() - started:.1f} s")
