"""A Timestep worker (or approver) as its own OS process, for the crash and multi-worker tests.

    python workflow_process.py worker URL RECORD [--executor-id ID] [--start WFID | --wait WFID
                               | --serve-until FILE] [--approval] [--block LABEL] [--delay S]
                               [--session PATH | --timestep-session] [--queued]
                               [--dead-after S] [--heartbeat S] [--linger]
                               [--queue Q [--worker-concurrency N] [--enqueue N]]
    python workflow_process.py approve URL WFID approve|reject [--call-id ID] [--by NAME]
    python workflow_process.py forge URL WFID CALL_ID message|row


A worker registers the Clerk (tests/workflow_support.py), launches (recording a ``worker``
``launched`` event), and then starts a durable run (``--start``; queued on the default queue
with ``--queued``), waits for a run some earlier worker started (``--wait``; it comes back when
a live worker adopts it, or at launch for a worker restarted under its old ``--executor-id``),
or serves until a file appears. Without ``--executor-id`` a worker has an id of its own;
``--dead-after`` is how long it may be silent before live workers adopt its runs,
``--heartbeat`` how often it beats. ``--linger`` keeps it serving after its own run until the
``--serve-until`` file appears. ``--queue Q`` makes it serve queue Q (at most
``--worker-concurrency`` runs at once), and ``--enqueue N`` first queues runs ``load-0`` ...
``load-<N-1>`` on it. ``--block LABEL`` makes the worker hang at that model call, tool call or
guardrail, so the test can ``kill -9`` it there; ``--block session:saved`` hangs right after a
``TimestepSession`` committed the run's items, before DBOS checkpoints that step. An approver
decides a parked run without launching anything. A forger plays a process with database access
and no ``TIMESTEP_STATE_KEY``: it approves the call with a bare DBOS message on the approval
topic, or by inserting a row into ``timestep_workflow_decisions``. Each prints JSON lines; the
last one is the outcome.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agents import SQLiteSession
from agents.memory import Session
from workflow_support import Recorder, clerk

from timestep import TimestepError, TimestepSession
from timestep.storage import SQLStateBackend, close_backends, get_backend
from timestep.storage.schema import workflow_decisions
from timestep.workflows import (
    approve_workflow,
    configure_dbos,
    ensure_dbos_launched,
    get_agent_workflow,
    queue_agent_workflow,
    register_agent,
    register_agent_queue,
    run_agent_workflow,
    shutdown_dbos,
)
from timestep.workflows.approvals import APPROVAL_TOPIC
from timestep.workflows.config import client_for

SESSION_ID = "customer-1"


def say(**fields: Any) -> None:
    print(json.dumps(fields, default=str), flush=True)


async def worker(args: argparse.Namespace) -> dict[str, Any]:
    recorder = Recorder(Path(args.record), block=args.block)
    agent = register_agent(clerk(recorder, approval=args.approval, delay=args.delay))
    if args.block == "session:saved":
        _block_after_session_writes(recorder)
    configure_dbos(
        args.url,
        executor_id=args.executor_id,
        dead_after=args.dead_after,
        heartbeat_interval=args.heartbeat,
        notification_listener_polling_interval_sec=0.05,
    )
    settings = ensure_dbos_launched()
    if args.queue:
        await register_agent_queue(
            args.queue, worker_concurrency=args.worker_concurrency, polling_interval_sec=0.2
        )
    recorder.write("worker", "launched")
    say(event="launched", pid=os.getpid(), executor_id=settings.executor_id)
    try:
        for number in range(args.enqueue):
            await queue_agent_workflow(
                agent=agent,
                input_items="Where are orders 7 and 8?",
                queue=args.queue,
                workflow_id=f"load-{number}",
            )
        if args.start and args.queued:
            handle = await queue_agent_workflow(
                agent=agent, input_items="Where are orders 7 and 8?", workflow_id=args.start
            )
            result = await handle.get_result(polling_interval_sec=0.1)
        elif args.start:
            session: Session | None = None
            if args.session:
                session = SQLiteSession(SESSION_ID, args.session)
            elif args.timestep_session:
                session = TimestepSession(SESSION_ID, url=args.url)
            result = await run_agent_workflow(
                agent=agent,
                input_items="Where are orders 7 and 8?",
                session=session,
                workflow_id=args.start,
            )
        elif args.wait:
            handle = await get_agent_workflow(args.wait)
            result = await handle.get_result(polling_interval_sec=0.1)
        else:
            await serve_until(Path(args.serve_until))
            return {"event": "served", "pid": os.getpid()}
        if args.linger:
            await serve_until(Path(args.serve_until))
        return {
            "event": "result",
            "pid": os.getpid(),
            "workflow_id": result.workflow_id,
            "final_output": result.final_output,
            "new_items": result.new_items,
            "approvals": result.approvals,
        }
    finally:
        shutdown_dbos()
        await close_backends()


def _block_after_session_writes(recorder: Recorder) -> None:
    """Hang every ``TimestepSession.add_items`` once its transaction has committed.

    A durable run appends its items inside a DBOS step, and DBOS checkpoints the step only
    when it returns: a worker killed here has written the history, with no checkpoint saying so.
    """
    write = TimestepSession.add_items

    @functools.wraps(write)  # the same signature: the run still passes its idempotency key
    async def write_then_hang(self: TimestepSession, *args: Any, **kwargs: Any) -> None:
        recorder.write("session:saved", "start")
        await write(self, *args, **kwargs)
        recorder.write("session:saved", "blocked")
        await asyncio.sleep(3600)

    TimestepSession.add_items = write_then_hang  # type: ignore[method-assign]


async def serve_until(stop: Path) -> None:
    """Serve (run whatever this worker is due, adopted runs too) until ``stop`` exists."""
    while not stop.exists():  # noqa: ASYNC110 - another process creates the file
        await asyncio.sleep(0.05)


async def approver(args: argparse.Namespace) -> dict[str, Any]:
    try:
        decided = await approve_workflow(
            args.workflow_id,
            approve=args.decision == "approve",
            call_id=args.call_id,
            rejection_message=None if args.decision == "approve" else "Not allowed.",
            by=args.by,
            url=args.url,
        )
    except TimestepError as error:
        return {"event": "error", "error": type(error).__name__, "message": str(error)}
    finally:
        shutdown_dbos()
        await close_backends()
    return {
        "event": "decided",
        "call_ids": decided,
        "pid": os.getpid(),
        "decision": args.decision,
        "by": args.by,
    }


async def forger(args: argparse.Namespace) -> dict[str, Any]:
    decision = {"call_id": args.call_id, "approve": True, "rejection_message": None}
    try:
        if args.how == "row":
            backend = get_backend(args.url)
            assert isinstance(backend, SQLStateBackend)
            async with backend.transaction() as conn:
                await conn.execute(
                    workflow_decisions.insert().values(
                        workflow_id=args.workflow_id,
                        call_id=args.call_id,
                        decision="approved",
                        decided_by="mallory",
                        decided_at=datetime.now(UTC),
                    )
                )
        client = await client_for(args.url)
        message = {"decisions": [{**decision, "by": "mallory"}]}
        await client.send_async(args.workflow_id, message, APPROVAL_TOPIC)
    finally:
        shutdown_dbos()
        await close_backends()
    return {"event": "forged", "how": args.how}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("worker")
    run.add_argument("url")
    run.add_argument("record")
    run.add_argument("--executor-id", default=None)
    run.add_argument("--start")
    run.add_argument("--queued", action="store_true")
    run.add_argument("--wait")
    run.add_argument("--serve-until", default="stop")
    run.add_argument("--approval", action="store_true")
    run.add_argument("--block")
    run.add_argument("--delay", type=float, default=0.0)
    run.add_argument("--session")
    run.add_argument("--timestep-session", action="store_true")
    run.add_argument("--dead-after", type=float)
    run.add_argument("--heartbeat", type=float)
    run.add_argument("--linger", action="store_true")
    run.add_argument("--queue")
    run.add_argument("--worker-concurrency", type=int)
    run.add_argument("--enqueue", type=int, default=0)
    decide = commands.add_parser("approve")
    decide.add_argument("url")
    decide.add_argument("workflow_id")
    decide.add_argument("decision", choices=["approve", "reject"])
    decide.add_argument("--call-id")
    decide.add_argument("--by")
    forge = commands.add_parser("forge")
    forge.add_argument("url")
    forge.add_argument("workflow_id")
    forge.add_argument("call_id")
    forge.add_argument("how", choices=["message", "row"])
    args = parser.parse_args(argv)
    command = {"worker": worker, "approve": approver, "forge": forger}[args.command]
    outcome = asyncio.run(command(args))
    say(**outcome)


def forked_main(argv: list[str], env: dict[str, str], output: str) -> None:
    """Entry point in a process forked from a server that imported this module already.

    The test's environment replaces the server's, and what the process prints goes to
    ``output``, as a pipe would take a script's output.
    """
    os.environ.clear()
    os.environ.update(env)
    with open(output, "w", buffering=1) as out:
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
        sys.stdout = sys.stderr = out
        main(argv)


if __name__ == "__main__":
    main()
