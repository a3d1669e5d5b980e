"""Support for the durable-workflow tests: their agents, a launched engine, worker processes.

The "Clerk" looks up two orders (two tool calls in one model response, run concurrently by the
SDK), then notifies someone (or asks to refund, a tool that needs approval), then answers.
Every model call, tool call and guardrail check appends a JSON line to a record file before and
after it runs, with the process id, so a test can count what really ran in which process.

Its model answers by turn, and reads the turn off the input (how many tool outputs follow the
last user message). A worker restarted after ``kill -9`` therefore answers exactly as the
killed one would have, and a model call that a replay repeated would show up in the record.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from agents import (
    Agent,
    GuardrailFunctionOutput,
    Model,
    ModelResponse,
    RunContextWrapper,
    function_tool,
    input_guardrail,
)
from agents.testing import ScriptedModel, assistant_message, function_call
from dbos import DBOS

from timestep.storage import close_backends
from timestep.workflows import (
    PendingApproval,
    WorkflowSettings,
    configure_dbos,
    ensure_dbos_launched,
    pending_approvals,
    registered_agents,
    show_agent_workflow,
    shutdown_dbos,
    unregister_agent,
)

FINAL_ANSWER = "Orders 7 and 8 have shipped; I let the customer know."


async def parked(
    workflow_id: str, count: int = 1, *, url: str | None = None
) -> list[PendingApproval]:
    """Wait (up to 30 s) until ``workflow_id`` waits for ``count`` approvals."""
    async with asyncio.timeout(30):
        while True:
            pending = await pending_approvals(workflow_id, url=url)
            if len(pending) >= count:
                return pending
            await asyncio.sleep(0.05)


class Recorder:
    """Appends one JSON line per event to ``path`` (and keeps them in memory)."""

    def __init__(self, path: Path | None = None, *, block: str | None = None) -> None:
        self.path = path
        self.block = block
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def write(self, label: str, phase: str) -> None:
        # The workflow id tells apart the runs of several workers sharing one record file.
        event = {
            "label": label,
            "phase": phase,
            "pid": os.getpid(),
            "workflow": DBOS.workflow_id,
            "t": time.time(),
        }
        with self._lock:
            self.events.append(event)
            if self.path is not None:
                with self.path.open("a") as f:
                    f.write(json.dumps(event) + "\n")

    async def around(self, label: str, delay: float = 0.0) -> None:
        """Record the start of ``label``; block forever here if told to (to be killed)."""
        self.write(label, "start")
        if self.block == label:
            self.write(label, "blocked")
            await asyncio.sleep(3600)
        if delay:
            await asyncio.sleep(delay)

    def starts(self, label: str) -> int:
        return sum(1 for e in self.events if e["label"] == label and e["phase"] == "start")


def read_record(path: Path, *, calls_only: bool = True) -> list[dict[str, Any]]:
    """The recorded events; without the workers' own ``launched`` lines unless asked."""
    if not path.exists():
        return []
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [e for e in events if e["label"] != "worker" or not calls_only]


def launched_worker(record: Path, pid: int) -> Callable[[], bool]:
    return lambda: any(
        e["label"] == "worker" and e["pid"] == pid for e in read_record(record, calls_only=False)
    )


def count(events: list[dict[str, Any]], label: str, phase: str) -> int:
    return sum(1 for e in events if e["label"] == label and e["phase"] == phase)


class TurnModel(Model):
    """Replies according to the turn it reads off the input, recording every call."""

    def __init__(
        self, replies: dict[int, list[Any]], recorder: Recorder, *, delay: float = 0.0
    ) -> None:
        self.replies = replies
        self.recorder = recorder
        self.delay = delay
        self.inputs: list[Any] = []

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        model_input = args[1] if len(args) > 1 else kwargs["input"]
        self.inputs.append(model_input)
        outputs = _outputs_since_last_user_message(model_input)
        label = f"model:{outputs}"
        await self.recorder.around(label, self.delay)
        reply = self.replies[outputs]
        response = await ScriptedModel([reply]).get_response(*args, **kwargs)
        self.recorder.write(label, "end")
        return response

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


def _outputs_since_last_user_message(items: Any) -> int:
    if isinstance(items, str):
        return 0
    seen = 0
    for item in items:
        if isinstance(item, dict) and item.get("role") == "user":
            seen = 0
        elif isinstance(item, dict) and item.get("type") == "function_call_output":
            seen += 1
    return seen


def clerk(
    recorder: Recorder,
    *,
    approval: bool = False,
    delay: float = 0.0,
    name: str = "Clerk",
    two_approvals: bool = False,
) -> Agent[Any]:
    """The Clerk: lookup(7) + lookup(8), then notify (or refund: needs approval), then answer."""

    @function_tool
    async def lookup(order: str) -> str:
        """Look up an order's status."""
        label = f"tool:{'c1' if order == '7' else 'c2'}"
        await recorder.around(label, delay)
        recorder.write(label, "end")
        return f"order {order}: shipped"

    @function_tool
    async def notify(text: str) -> str:
        """Send the customer a message."""
        await recorder.around("tool:c3", delay)
        recorder.write("tool:c3", "end")
        return "sent"

    @function_tool(needs_approval=True)
    async def refund(order: str) -> str:
        """Refund an order."""
        label = f"tool:{'c3' if order == '7' else 'c4'}"
        await recorder.around(label, delay)
        recorder.write(label, "end")
        return f"refunded {order}"

    @input_guardrail
    async def screen(
        context: RunContextWrapper[Any], agent: Agent[Any], user_input: Any
    ) -> GuardrailFunctionOutput:
        await recorder.around("guardrail", 0.0)
        recorder.write("guardrail", "end")
        return GuardrailFunctionOutput(
            output_info="checked", tripwire_triggered="forbidden" in json.dumps(user_input)
        )

    second = (
        [function_call("refund", {"order": "7"}, call_id="c3")]
        + ([function_call("refund", {"order": "8"}, call_id="c4")] if two_approvals else [])
        if approval
        else [function_call("notify", {"text": "7 and 8 shipped"}, call_id="c3")]
    )
    replies = {
        0: [
            function_call("lookup", {"order": "7"}, call_id="c1"),
            function_call("lookup", {"order": "8"}, call_id="c2"),
        ],
        2: second,
        3: [assistant_message(FINAL_ANSWER)],
        4: [assistant_message(FINAL_ANSWER)],
    }
    return Agent(
        name=name,
        instructions="Help with orders.",
        model=TurnModel(replies, recorder, delay=delay),
        tools=[lookup, refund] if approval else [lookup, notify],
        input_guardrails=[screen],
    )


@contextmanager
def launched(url: str, **options: Any) -> Iterator[WorkflowSettings]:
    """DBOS configured on ``url`` and launched for one test, then destroyed, registry cleared."""
    settings = configure_dbos(
        url,
        notification_listener_polling_interval_sec=0.05,
        **options,
    )
    ensure_dbos_launched()
    try:
        yield settings
    finally:
        shutdown_dbos()
        for name in registered_agents():
            unregister_agent(name)


# Workers are forked from a server that has imported the SDK, Timestep and DBOS once (an
# import costs seconds; a fork, milliseconds). Each is still an OS process of its own, with
# its own engine and connections, and dies by SIGKILL like any other.
# (Installed modules only: Python 3.11's fork server ignores the parent's sys.path.)
_FORKS = multiprocessing.get_context("forkserver")
_FORKS.set_forkserver_preload(
    ["timestep.workflows", "agents.testing", "asyncpg", "aiosqlite", "pytest"]
)


def fork(target: Callable[..., None], *args: Any) -> BaseProcess:
    """Start ``target(*args)`` in an OS process forked from that server (already importing
    Timestep), as a second user of the database would run it."""
    process = _FORKS.Process(target=target, args=args)
    process.start()
    return process


class Worker:
    """A worker (or approver) OS process running tests/workflow_process.py."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        import workflow_process

        self.args = args
        handle, output = tempfile.mkstemp(prefix="worker-", suffix=".out")
        os.close(handle)
        self.output = Path(output)
        self.process = _FORKS.Process(
            target=workflow_process.forked_main, args=(list(args), dict(env), str(self.output))
        )
        self.process.start()

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def kill(self) -> None:
        """``kill -9``: no clean-up of any kind runs in the worker."""
        os.kill(self.pid, signal.SIGKILL)
        self.process.join(timeout=30)
        self.output.unlink(missing_ok=True)

    @property
    def ended(self) -> bool:
        return self.process.exitcode is not None

    def exits_within(self, seconds: float) -> bool:
        """Whether the process ends within ``seconds`` (it is left running otherwise)."""
        self.process.join(timeout=seconds)
        return self.process.exitcode is not None

    def outcome(self, timeout: float = 90.0) -> dict[str, Any]:
        """Wait for the process to exit; its last JSON line."""
        self.process.join(timeout=timeout)
        text = self.output.read_text()
        if self.process.exitcode is None:
            self.kill()
            raise AssertionError(f"{self.args} did not finish:\n{text}")
        self.output.unlink()
        lines = [line for line in text.splitlines() if line.startswith("{")]
        if self.process.exitcode != 0 or not lines:
            raise AssertionError(f"{self.args} failed ({self.process.exitcode}):\n{text}")
        outcome: dict[str, Any] = json.loads(lines[-1])
        return outcome


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll ``predicate`` (synchronously) until it holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def blocked_at(record: Path, label: str) -> Callable[[], bool]:
    return lambda: any(e["label"] == label and e["phase"] == "blocked" for e in read_record(record))


def looked_up_order_7(url: str, workflow_id: str) -> Callable[[], bool]:
    """Whether the run has checkpointed ``lookup(7)`` (call c1).

    The SDK runs c1 and c2 concurrently, so a worker blocked in c2 may not have started c1,
    or finished it without checkpointing it yet; a test that kills it there and expects c1
    never to run again waits for this first.
    """

    def check() -> bool:
        async def outputs() -> list[Any]:
            try:
                details = await show_agent_workflow(workflow_id, url=url)
            finally:
                await close_backends()
                shutdown_dbos()
            return [step.output for step in details.steps]

        return "order 7: shipped" in asyncio.run(outputs())

    return check
