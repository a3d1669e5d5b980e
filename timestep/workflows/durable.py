"""Durable agent runs: the SDK's ``Runner`` inside a DBOS workflow, every side effect a step.

Example::

    register_agent(assistant)
    ensure_dbos_launched()
    result = await run_agent_workflow(agent=assistant, input_items="Where is order 7?",
                                      session=SQLiteSession("user-42", "chat.db"),
                                      workflow_id="order-7")
    print(result.final_output)

How a run is made durable (the idea follows the ``dbos-openai-agents`` package; the code is
Timestep's own, because that package replaces the model provider, which would bypass Timestep's
prefix routing, leaves tools to the user, and has no approvals):

- The agent graph is cloned for the run. Each clone's model (an instance, or whatever the
  routing provider returns for a name) is wrapped so ``get_response`` is a DBOS step; each
  ``FunctionTool``'s ``on_invoke_tool`` and each input/output guardrail becomes a step too.
  A replay after a crash returns the checkpointed model responses, tool outputs and guardrail
  verdicts instead of calling anything again.
- DBOS identifies steps by the order they start in. The SDK runs the tool calls of one model
  response concurrently, so their start order is up to the event loop. Right after each model
  step the wrapper *reserves* one step id per function call, in the response's order, and each
  tool runs at the id reserved for its call id: the numbering no longer depends on scheduling.
- Sessions and run states are written by steps the workflow runs itself (see
  :mod:`.sessions`); approvals wait on DBOS messages (see :mod:`.approvals`).
- DBOS stores what a step raises, and a model client's error holds its request (API key
  included): every step body raises a scrubbed error instead (:mod:`.scrubbing`), and so
  does the workflow.

Not made durable: streaming (runs use ``Runner.run``), MCP server tools, and local
computer/shell tools (they run as ordinary workflow code and run again on replay), and
handoff callbacks (keep them idempotent, like any workflow code).
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import inspect
import pickle
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NotRequired, TypedDict, TypeVar

from agents import (
    Agent,
    Handoff,
    InputGuardrail,
    ItemHelpers,
    Model,
    ModelProvider,
    ModelResponse,
    OutputGuardrail,
    RunConfig,
    Runner,
    RunResult,
    RunState,
)
from agents.memory import Session
from agents.retry import ModelRetryAdvice, ModelRetryAdviceRequest
from agents.tool import FunctionTool, Tool
from agents.tool_context import ToolContext
from dbos import DBOS, SetEnqueueOptions, SetWorkflowID, StepOptions, StepReservation

from ..errors import StorageUnavailableError, WorkflowConfigurationError, WorkflowRunError
from ..identifiers import MAX_WORKFLOW_ID, check_identifier
from ..observability.install import configure_tracing
from ..observability.observer import RunObserver
from ..run import default_model_provider
from ..state import RunStateStore
from ..storage import StateStatus, get_backend
from .approvals import Decision, await_decisions, wait_for_decisions
from .config import launched_settings
from .handles import CONTINUED_IN, AgentWorkflowHandle, AgentWorkflowResult, workflow_status
from .registry import check_registered, get_registered_agent
from .scrubbing import model_call_error, retry_advice, scrub_error, scrubbed, workflow_error
from .sessions import (
    SessionSpec,
    append_key,
    append_once,
    close_session,
    open_session,
    session_spec,
)

__all__ = [
    "APPROVAL_WAITER_NAME",
    "WORKFLOW_NAME",
    "DurableModel",
    "DurableModelProvider",
    "Resume",
    "RunRequest",
    "agent_workflow",
    "build_request",
    "execute_run",
    "refuse_foreign_state",
    "run_agent_workflow",
    "start_agent_workflow",
]

WORKFLOW_NAME = "timestep.agent_run"
"""The DBOS name of the durable run workflow (stable across refactors: recovery finds it by it)."""

APPROVAL_WAITER_NAME = "timestep.agent_run.approval"
"""The DBOS name of the workflow a queued run waits for approval in, outside its queue."""

R = TypeVar("R")

STORAGE_PATIENCE_SECONDS = 300.0
"""How long a run's state or session step waits for an unreachable database before failing."""


class RunRequest(TypedDict):
    """A durable run's arguments, exactly as DBOS stores them (a plain dict, so it can evolve).

    Example::

        RunRequest(agent="Assistant", input=[{"role": "user", "content": "hi"}], session=None,
                   max_turns=None, context=None, approval_timeout=None)
    """

    agent: str
    input: list[Any]
    session: SessionSpec | None
    max_turns: int | None
    context: Any
    approval_timeout: float | None
    queue: NotRequired[str | None]
    """Set for queued runs: a park then hands the run on instead of waiting in its slot."""
    priority: NotRequired[int | None]
    resume: NotRequired[Resume]
    """Set for the waiter and the continuation of a queued run that parked."""
    schedule: NotRequired[str]
    """Set for a schedule's ticks: the schedule's name (a tick after its deletion skips)."""


class Resume(TypedDict):
    """Where a queued run that parked stands, handed from workflow to workflow.

    ``run_id`` is the run's own workflow id (its run state's session id, the id callers use),
    ``round`` counts its parks, ``state`` is the paused ``RunState`` (``to_json()``),
    ``decisions`` are filled in by the waiter, and ``history_length`` / ``approvals`` carry
    what the final result needs from earlier workflows of the run.
    """

    run_id: str
    round: int
    state: dict[str, Any]
    call_ids: list[str]
    decisions: dict[str, Decision]
    history_length: int
    approvals: list[dict[str, Any]]


def build_request(
    agent: Agent[Any],
    input_items: str | list[Any],
    session: Session | None,
    *,
    max_turns: int | None,
    context: Any,
    approval_timeout: float | None,
) -> RunRequest:
    """Check the caller's arguments and turn them into a storable :class:`RunRequest`.

    Example::

        request = build_request(assistant, "hi", None, max_turns=None, context=None,
                                approval_timeout=None)

    Raises:
        AgentNotRegisteredError: ``agent`` is not the agent registered under its name.
        SessionNotDurableError: ``session`` cannot be re-created after a restart.
        WorkflowConfigurationError: input, ``max_turns``, ``approval_timeout`` or ``context``
            cannot be used.
    """
    name = check_registered(agent)
    if isinstance(input_items, str):
        items: list[Any] = ItemHelpers.input_to_new_input_list(input_items)
    elif isinstance(input_items, list):
        items = list(input_items)
    else:
        raise WorkflowConfigurationError(
            "input_items must be a string or a list of input items (e.g. "
            "[{'role': 'user', 'content': 'hi'}]); a RunState cannot start a workflow, "
            f"got {type(input_items).__name__}."
        )
    if max_turns is not None and (not isinstance(max_turns, int) or max_turns < 1):
        raise WorkflowConfigurationError(f"max_turns must be a positive int, not {max_turns!r}.")
    if approval_timeout is not None and not approval_timeout > 0:
        raise WorkflowConfigurationError(
            f"approval_timeout must be a positive number of seconds (or None to wait as long "
            f"as it takes), not {approval_timeout!r}."
        )
    request = RunRequest(
        agent=name,
        input=items,
        session=session_spec(session),
        max_turns=max_turns,
        context=context,
        approval_timeout=approval_timeout,
    )
    try:
        pickle.dumps(request)
    except Exception as error:
        raise WorkflowConfigurationError(
            f"The run's input and context must be picklable so a restarted worker can resume "
            f"it; {error}. Pass plain data (str, dict, list, dataclasses of those)."
        ) from None
    return request


async def start_agent_workflow(request: RunRequest, workflow_id: str | None) -> AgentWorkflowHandle:
    """Start the durable run of ``request`` in this process (returns at once).

    Example::

        handle = await start_agent_workflow(request, "order-7")
        result = await handle.get_result()
    """
    if workflow_id is not None:
        check_workflow_id(workflow_id)
    if workflow_id is None:
        handle = await DBOS.start_workflow_async(agent_workflow, request)
    else:
        with SetWorkflowID(workflow_id):
            handle = await DBOS.start_workflow_async(agent_workflow, request)
    return AgentWorkflowHandle(handle.get_workflow_id(), _result=handle.get_result)


async def run_agent_workflow(
    agent: Agent[Any],
    input_items: str | list[Any],
    session: Session | None = None,
    *,
    workflow_id: str | None = None,
    max_turns: int | None = None,
    context: Any = None,
    approval_timeout: float | None = None,
) -> AgentWorkflowResult:
    """Run ``agent`` as a durable workflow and wait for its result.

    Idempotent by ``workflow_id``: calling again with the id of a started or finished run
    attaches to it (its original arguments win) instead of running anything twice. If the run
    needs approval it parks until :func:`~timestep.workflows.approve_workflow` decides (or
    ``approval_timeout`` seconds pass; undecided calls are then rejected).

    Args:
        agent: A registered agent (:func:`~timestep.workflows.register_agent`).
        input_items: The user's message, or a list of input items.
        session: An SDK session; its history is the run's context and its new items are
            appended once the run finishes. Passed by description (see :mod:`.sessions`).
        workflow_id: The run's id; generated when omitted.
        max_turns: Passed to the SDK ``Runner``.
        context: The run context; must be picklable.
        approval_timeout: Seconds to wait for each round of approvals; ``None`` waits as long
            as it takes.

    Example::

        result = await run_agent_workflow(agent=assistant, input_items="hi", workflow_id="o-7")

    Raises:
        WorkflowNotLaunchedError: ``ensure_dbos_launched()`` was not called.
        AgentNotRegisteredError, SessionNotDurableError, WorkflowConfigurationError: bad input.
    """
    settings = launched_settings("run_agent_workflow")
    request = build_request(
        agent,
        input_items,
        session,
        max_turns=max_turns,
        context=context,
        approval_timeout=approval_timeout,
    )
    await refuse_foreign_state(agent, workflow_id, settings.url)
    handle = await start_agent_workflow(request, workflow_id)
    return await handle.get_result()


def check_workflow_id(workflow_id: object) -> str:
    """``workflow_id`` if both backends can store it (and its parked state's session id).

    Raises:
        WorkflowConfigurationError: empty, too long, or with a NUL byte or a lone surrogate.
    """
    return check_identifier(
        workflow_id, "workflow_id", WorkflowConfigurationError, max_length=MAX_WORKFLOW_ID
    )


async def refuse_foreign_state(agent: Agent[Any], workflow_id: str | None, url: str) -> None:
    """Refuse a new run whose id is the session id of someone else's paused run of ``agent``.

    A parked durable run saves its state as (agent, session id = workflow id), replacing what
    is there: a plain paused run saved with :class:`~timestep.RunStateStore` under that session
    would be lost. Checked before the run starts, so no model is called; attaching to an
    existing workflow (whose own state it is) and a completed row (which any save may
    replace) pass. Example::

        await refuse_foreign_state(assistant, "order-7", settings.url)

    Raises:
        WorkflowConfigurationError: the id is taken by a paused or running plain run.
    """
    if workflow_id is None:
        return
    check_workflow_id(workflow_id)
    row = await get_backend(url).load(agent.name, workflow_id)
    if row is None or row.status == StateStatus.COMPLETED:
        return
    if await workflow_status(workflow_id, url=url) is not None:
        return
    raise WorkflowConfigurationError(
        f"workflow_id {workflow_id!r} is the session id of a {row.status.value} run of agent "
        f"{agent.name!r} saved with RunStateStore (not by a durable workflow); a durable run "
        "with that id would overwrite it when it pauses. Pick another workflow_id, or finish "
        "or clear that run first (`timestep runs list` shows it).",
        workflow_id=workflow_id,
    )


@DBOS.workflow(name=WORKFLOW_NAME)
async def agent_workflow(request: RunRequest) -> dict[str, Any]:
    """The DBOS workflow of a direct or queued durable run (start it with DBOS, or use
    :func:`run_agent_workflow` / :func:`~timestep.workflows.queue_agent_workflow`)::

        handle = await DBOS.start_workflow_async(agent_workflow, request)
    """
    return await execute_run(request)


async def execute_run(request: RunRequest) -> dict[str, Any]:
    """The body of every durable run (direct, queued or scheduled); call it inside a workflow.

    Example::

        @DBOS.workflow()
        async def my_run(request: RunRequest) -> dict[str, Any]:
            return await execute_run(request)
    """
    resume = request.get("resume")
    # A continuation works for the run it continues: same state row, decisions and result id.
    workflow_id = resume["run_id"] if resume is not None else str(DBOS.workflow_id)
    agent = get_registered_agent(request["agent"], workflow_id=workflow_id)
    settings = launched_settings("A durable run")
    url = settings.url
    run = _DurableRun()
    root = run.wrap(agent)
    # TIMESTEP_TRACING in this worker, as run_agent applies it: `db` records durable runs too.
    tracing = configure_tracing()
    run_config = RunConfig(
        model_provider=DurableModelProvider(default_model_provider(), run),
        **tracing.run_config_options(agent.name, None),
    )
    spec = request["session"]
    options: dict[str, Any] = {"run_config": run_config, "context": request["context"]}
    if request["max_turns"] is not None:
        options["max_turns"] = request["max_turns"]
    observer = RunObserver(tracing.records(run_config), run_config, options)
    try:
        if resume is None:
            history: list[Any] = []
            if spec is not None:
                history = await DBOS.run_step_async(
                    {"name": "timestep.session.load"},
                    _through_outages,
                    _load_history,
                    spec,
                    workflow_id,
                )
            history_length, approvals, rounds = len(history), [], 0
            result = await Runner.run(root, [*history, *request["input"]], **options)
        else:
            history_length, rounds = resume["history_length"], resume["round"]
            approvals = list(resume["approvals"])
            state = await _paused_state(root, resume["state"], request["context"])
            # The approved calls run first, concurrently: number their steps in a fixed order.
            run.reserve_calls(resume["call_ids"])
            approvals.extend(
                _apply(state, resume["decisions"], request["approval_timeout"], observer)
            )
            await _save_state(agent, workflow_id, url, state, StateStatus.RUNNING)
            options.pop("context", None)  # the state carries it from here on
            result = await Runner.run(root, state, **options)
        observer.finished(result)
        while result.interruptions:
            state = result.to_state()
            await _save_state(agent, workflow_id, url, state, StateStatus.INTERRUPTED)
            rounds += 1
            if request.get("queue"):
                # Waiting here would hold a queue slot for as long as the approval takes.
                return await _hand_off(
                    request,
                    Resume(
                        run_id=workflow_id,
                        round=rounds,
                        state=state.to_json(),
                        call_ids=[str(i.call_id) for i in result.interruptions if i.call_id],
                        decisions={},
                        history_length=history_length,
                        approvals=approvals,
                    ),
                )
            decisions = await wait_for_decisions(
                list(result.interruptions),
                request["approval_timeout"],
                workflow_id=workflow_id,
                url=url,
            )
            approvals.extend(_apply(state, decisions, request["approval_timeout"], observer))
            await _save_state(agent, workflow_id, url, state, StateStatus.RUNNING)
            options.pop("context", None)  # the state carries it from here on
            result = await Runner.run(root, state, **options)
            observer.finished(result)
    except Exception as error:
        # DBOS pickles the workflow's error into workflow_status: never with a request's key.
        storable = workflow_error(error, workflow_id)
        if storable is error:
            raise
        raise storable from error
    _check_storable_output(result.final_output, workflow_id)
    new_items = result.to_input_list()[history_length:]
    if spec is not None:
        await DBOS.run_step_async(
            {"name": "timestep.session.save"},
            _through_outages,
            _append_items,
            spec,
            new_items,
            workflow_id,
        )
    if approvals:
        # Mark the paused run's row finished. A run that never paused has no row to finish:
        # its outcome is the workflow's result, and serializing the final state would cost
        # more than all its model and tool steps together (bench/workflows.py).
        await _save_state(agent, workflow_id, url, result, StateStatus.COMPLETED)
    return {
        "workflow_id": workflow_id,
        "final_output": result.final_output,
        "last_agent": result.last_agent.name,
        "new_items": new_items,
        "session_id": spec["session_id"] if spec is not None else None,
        "approvals": approvals,
    }


async def _hand_off(request: RunRequest, resume: Resume) -> dict[str, Any]:
    """End a queued run's workflow at a park: a waiter outside the queue takes it on.

    Starting the waiter is a checkpoint of this workflow, so a replay finds the same waiter
    instead of starting another; the waiter's id is derived from the run's id and round.
    """
    waiter_id = f"{resume['run_id']}/approval-{resume['round']}"
    with SetWorkflowID(waiter_id):
        await DBOS.start_workflow_async(approval_waiter, {**request, "resume": resume})
    return {"workflow_id": resume["run_id"], CONTINUED_IN: waiter_id}


@DBOS.workflow(name=APPROVAL_WAITER_NAME)
async def approval_waiter(request: RunRequest) -> dict[str, Any]:
    """The park of a queued run, outside any queue: wait for the decisions, then queue the
    run's continuation on its queue again (it starts when a slot is free)::

        {"workflow_id": "order-7", "continued_in": "order-7/resume-1"}
    """
    resume = request["resume"]
    settings = launched_settings("A durable approval wait")
    decisions = await await_decisions(
        resume["call_ids"],
        request["approval_timeout"],
        workflow_id=resume["run_id"],
        url=settings.url,
    )
    queue = str(request.get("queue"))
    continuation_id = f"{resume['run_id']}/resume-{resume['round']}"
    continued: RunRequest = {**request, "resume": {**resume, "decisions": decisions}}
    with SetWorkflowID(continuation_id), SetEnqueueOptions(priority=request.get("priority")):
        await DBOS.enqueue_workflow_async(queue, agent_workflow, continued)
    return {"workflow_id": resume["run_id"], CONTINUED_IN: continuation_id}


async def _paused_state(
    root: Agent[Any], serialized: dict[str, Any], context: Any
) -> RunState[Any, Any]:
    # A mapping context travels inside the state (with what tools changed in it); any other
    # context is the run's original object, which the state cannot carry.
    override = None if context is None or isinstance(context, dict) else context
    return await RunState.from_json(root, serialized, context_override=override)


class _DurableRun:
    """Per workflow execution: the cloned agent graph and the reserved tool step ids."""

    def __init__(self) -> None:
        self.reservations: dict[str, StepReservation] = {}
        # Strong references: handoffs point at clones through weak references.
        self.clones: dict[int, Agent[Any]] = {}

    def wrap(self, root: Agent[Any]) -> Agent[Any]:
        """A clone of ``root``'s whole handoff graph (cycles included) with durable parts."""
        if id(root) in self.clones:
            return self.clones[id(root)]
        originals = _agent_graph(root)
        fresh = [agent for agent in originals if id(agent) not in self.clones]
        for agent in fresh:
            self.clones[id(agent)] = agent.clone(
                model=DurableModel(agent.model, self)
                if isinstance(agent.model, Model) and not isinstance(agent.model, DurableModel)
                else agent.model,
                tools=[self._tool(tool) for tool in agent.tools],
                input_guardrails=[_input_guardrail(g) for g in agent.input_guardrails],
                output_guardrails=[_output_guardrail(g) for g in agent.output_guardrails],
            )
        for agent in fresh:
            self.clones[id(agent)].handoffs = [self._handoff(h) for h in agent.handoffs]
        return self.clones[id(root)]

    def reserve_calls(self, call_ids: list[str]) -> None:
        """Reserve a step id per call id, in the given order (approved calls resuming)."""
        for call_id in call_ids:
            self.reservations[call_id] = DBOS.reserve_step()

    def reserve_tool_steps(self, response: ModelResponse) -> None:
        """Reserve a step id per function call of ``response``, in the response's order."""
        if DBOS.workflow_id is None or DBOS.step_id is not None:
            return  # a nested run inside a step: nested steps run inline, nothing to number
        for item in response.output:
            call_id = getattr(item, "call_id", None)
            if getattr(item, "type", None) == "function_call" and isinstance(call_id, str):
                self.reservations[call_id] = DBOS.reserve_step()

    def _tool(self, tool: Tool) -> Tool:
        if not isinstance(tool, FunctionTool):
            return tool
        original = tool.on_invoke_tool
        step: StepOptions = {"name": f"timestep.tool:{tool.name}"}
        run = self

        async def invoke(context: ToolContext[Any], arguments: str) -> Any:
            async def call() -> Any:
                return await scrubbed(
                    lambda: original(context, arguments),
                    lambda error: scrub_error(error, step["name"] or "timestep.tool"),
                )

            reservation = run.reservations.pop(context.tool_call_id, None)
            if reservation is not None:
                return await reservation.run_async(step, call)
            return await DBOS.run_step_async(step, call)

        durable = copy.copy(tool)
        durable.on_invoke_tool = invoke
        return durable

    def _handoff(self, handoff: Agent[Any] | Handoff[Any, Any]) -> Agent[Any] | Handoff[Any, Any]:
        if isinstance(handoff, Agent):
            return self.wrap(handoff)
        original = handoff.on_invoke_handoff
        run = self

        async def invoke(context: Any, arguments: str) -> Any:
            target = await original(context, arguments)
            return run.wrap(target) if isinstance(target, Agent) else target

        durable: Handoff[Any, Any] = dataclasses.replace(handoff, on_invoke_handoff=invoke)
        target = handoff._agent_ref() if handoff._agent_ref is not None else None
        if isinstance(target, Agent):
            durable._agent_ref = weakref.ref(self.wrap(target))
        return durable


class DurableModel(Model):
    """A model whose every ``get_response`` is a DBOS step (checkpointed, replayed on recovery).

    Only meaningful inside a durable run; outside a workflow the step runs as a plain call.
    Example::

        agent = Agent(name="A", model=DurableModel(OpenAIResponsesModel(...)))
    """

    def __init__(self, model: Model, run: _DurableRun | None = None) -> None:
        self.model = model
        self._run = run or _DurableRun()

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        async def call() -> ModelResponse:
            # What the client raised holds the request (API key included); DBOS would store it.
            return await scrubbed(
                lambda: self.model.get_response(*args, **kwargs),
                lambda error: model_call_error(error, self.model),
            )

        response: ModelResponse = await DBOS.run_step_async({"name": "timestep.model"}, call)
        # No await between the step and the reservations: their ids follow the model step's.
        self._run.reserve_tool_steps(response)
        return response

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise WorkflowConfigurationError(
            "Durable runs do not stream: each model call is checkpointed whole. Use "
            "run_agent_workflow (which runs Runner.run), or run_agent(stream=True) outside "
            "workflows."
        )

    def get_retry_advice(self, request: ModelRetryAdviceRequest) -> ModelRetryAdvice | None:
        # The step raised a scrubbed ModelCallError: it keeps the status code and the retry
        # headers the wrapped model's advice reads; retry_advice adds what its class no longer
        # says (a network error, a timeout).
        return retry_advice(request, self.model.get_retry_advice(request))

    async def close(self) -> None:
        await self.model.close()

    async def _cleanup_on_run_end(self, owner: object) -> None:
        await self.model._cleanup_on_run_end(owner)


class DurableModelProvider(ModelProvider):
    """Wraps another provider (Timestep's routing one by default) so its models are durable.

    Example::

        RunConfig(model_provider=DurableModelProvider(default_model_provider()))
    """

    def __init__(self, provider: ModelProvider, run: _DurableRun | None = None) -> None:
        self.provider = provider
        self._run = run or _DurableRun()

    def get_model(self, model_name: str | None) -> Model:
        return DurableModel(self.provider.get_model(model_name), self._run)


def _agent_graph(root: Agent[Any]) -> list[Agent[Any]]:
    """``root`` and every agent its handoffs reach, each once."""
    seen: dict[int, Agent[Any]] = {}
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, Handoff):
            target = node._agent_ref() if node._agent_ref is not None else None
            if target is not None:
                stack.append(target)
        elif isinstance(node, Agent) and id(node) not in seen:
            seen[id(node)] = node
            stack.extend(node.handoffs)
    return list(seen.values())


def _input_guardrail(guardrail: InputGuardrail[Any]) -> InputGuardrail[Any]:
    name = guardrail.get_name()
    check = _durable_check(guardrail.guardrail_function, f"timestep.input_guardrail:{name}")
    return dataclasses.replace(guardrail, guardrail_function=check, name=name)


def _output_guardrail(guardrail: OutputGuardrail[Any]) -> OutputGuardrail[Any]:
    name = guardrail.get_name()
    check = _durable_check(guardrail.guardrail_function, f"timestep.output_guardrail:{name}")
    return dataclasses.replace(guardrail, guardrail_function=check, name=name)


def _durable_check(function: Callable[..., Any], step_name: str) -> Callable[..., Awaitable[Any]]:
    async def check(*args: Any) -> Any:
        async def run() -> Any:
            verdict = function(*args)
            return await verdict if inspect.isawaitable(verdict) else verdict

        async def call() -> Any:
            return await scrubbed(run, lambda error: scrub_error(error, step_name))

        return await DBOS.run_step_async({"name": step_name}, call)

    return check


def _apply(
    state: RunState[Any, Any],
    decisions: dict[str, Decision],
    timeout: float | None,
    observer: RunObserver,
) -> list[dict[str, Any]]:
    applied = []
    for item in state.get_interruptions():
        decision = decisions.get(str(item.call_id))
        by: str | None = None
        if decision is None:
            waited = f"within {timeout:g} seconds" if timeout is not None else "in time"
            message: str | None = f"No approval decision arrived {waited}."
            state.reject(item, rejection_message=message)
            approved, by = False, "timeout"
        elif decision["approve"]:
            state.approve(item)
            approved, message, by = True, None, decision.get("by")
        else:
            message = decision["rejection_message"]
            state.reject(item, rejection_message=message)
            approved, by = False, decision.get("by")
        observer.decided(state, item, approved=approved, by=by, message=message)
        applied.append({"call_id": item.call_id, "tool_name": item.tool_name, "approved": approved})
    return applied


async def _save_state(
    agent: Agent[Any],
    workflow_id: str,
    url: str,
    state: RunState[Any, Any] | RunResult,
    status: StateStatus,
) -> int:
    async def save() -> int:
        # get_backend keeps one pool per event loop, so this works on the caller's loop and on
        # the one DBOS runs recovered and queued workflows on alike.
        store = RunStateStore(agent=agent, session_id=workflow_id, backend=get_backend(url))
        stored = await store.save(state, status=status, overwrite=True)
        return stored.version

    step: StepOptions = {"name": f"timestep.state.{status.value}"}
    version: int = await DBOS.run_step_async(step, _through_outages, save)
    return version


async def _through_outages(call: Callable[..., Awaitable[R]], *args: Any) -> R:
    """Run a state or session step's body, waiting while the database is unreachable.

    DBOS waits out an outage of its own tables (it retries their statements until they work),
    and a run's state and session usually live in that same database: without this, a restart
    that caught one of these steps mid-call would fail the whole run while every other step
    simply waited. The bodies are safe to run again, as after a crash mid-step: the history
    read is a read, the state save overwrites the run's own row, and the session append is
    keyed by workflow and step where the session supports it (see :func:`.append_once`).
    """
    deadline = time.monotonic() + STORAGE_PATIENCE_SECONDS
    delay = 0.5
    while True:
        try:
            return await call(*args)
        except StorageUnavailableError:
            if time.monotonic() + delay > deadline:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


async def _load_history(spec: SessionSpec, workflow_id: str) -> list[Any]:
    session = open_session(spec, workflow_id=workflow_id)
    try:
        return list(await session.get_items())
    finally:
        await close_session(session)


async def _append_items(spec: SessionSpec, items: list[Any], workflow_id: str) -> int:
    session = open_session(spec, workflow_id=workflow_id)
    try:
        await append_once(session, items, append_key(workflow_id, DBOS.step_id))
        return len(items)
    finally:
        await close_session(session)


def _check_storable_output(output: Any, workflow_id: str) -> None:
    # Checked before the session and state are written, so a run whose result DBOS could not
    # store fails cleanly instead of half-finishing.
    try:
        pickle.dumps(output)
    except Exception as error:
        raise WorkflowRunError(
            f"The final output of workflow {workflow_id!r} ({type(output).__name__}) cannot be "
            f"stored: {error}. Use an output_type defined at module level (a pydantic model, a "
            "dataclass) or plain data.",
            workflow_id=workflow_id,
            error_type=type(error).__name__,
        ) from None
