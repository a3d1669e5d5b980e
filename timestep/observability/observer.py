"""What ``run_agent`` adds to the SDK's spans: exact usage per model call, and approvals.

Spans describe a run but not always what it cost: models the SDK does not trace itself (a
scripted model, a provider plugin) report usage only on the ``ModelResponse``. So, while
Timestep records, ``run_agent`` runs with :class:`ObservingHooks`, the SDK's ``RunHooks``:
``on_llm_start`` / ``on_llm_end`` give every call's agent, model, latency and exact usage
(input, cached, cache-write, output and reasoning tokens). They forward every callback to the
caller's own ``hooks=``. The processor takes no usage from the model spans of calls the hooks
saw, so nothing is counted twice; model calls the hooks never see (an agent run as a tool is a
nested run without them) are costed from their spans, as outside ``run_agent``.

Approvals: a run that pauses records an ``approval`` row per waiting tool call; a resumed
``RunState`` records the decisions it carries (who decided is known when the decision was made
with :func:`timestep.observability.approve` / ``reject``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from agents import Agent, Model, RunConfig, RunHooks, RunResult, RunResultStreaming, RunState
from agents.lifecycle import RunHooksBase
from agents.models import get_default_model
from agents.tracing import Trace, get_current_span, get_current_trace
from agents.tracing.traces import TraceState

from .processor import TimestepTraceProcessor
from .records import ApprovalDecision, ApprovalEvent, ModelCall, link_of

__all__ = [
    "ObservingHooks",
    "RunObserver",
    "model_identity",
    "trace_id_of",
]

# Providers of Model classes whose instances carry a model name but no routing prefix.
_PROVIDER_OF_CLASS = {
    "OpenAIResponsesModel": "openai",
    "OpenAIResponsesWSModel": "openai",
    "OpenAIChatCompletionsModel": "openai",
    "LitellmModel": "litellm",
    "AnyLLMModel": "any_llm",
}


class ObservingHooks(RunHooks[Any]):
    """``RunHooks`` recording each model call, forwarding every callback to ``inner``."""

    def __init__(
        self,
        processor: TimestepTraceProcessor,
        run_config: RunConfig,
        inner: RunHooksBase[Any, Any] | None = None,
    ) -> None:
        self.processor = processor
        self.run_config = run_config
        self.inner = inner
        self.trace: Trace | None = None
        self._started: dict[int, tuple[float, datetime]] = {}

    async def on_llm_start(
        self, context: Any, agent: Agent[Any], system_prompt: str | None, input_items: Any
    ) -> None:
        """Note when the call started (and the run's trace)."""
        trace = get_current_trace()
        if trace is not None and trace.trace_id != "no-op":
            self.trace = trace
        span = get_current_span()
        if span is not None:
            # The model span about to open sits right under this one; its usage is ours.
            self.processor.calls_recorded_under(span.span_id)
        self._started[id(agent)] = (time.perf_counter(), datetime.now(UTC))
        if self.inner is not None:
            await self.inner.on_llm_start(context, agent, system_prompt, input_items)

    async def on_llm_end(self, context: Any, agent: Agent[Any], response: Any) -> None:
        """Record the call: agent, model, latency and the usage the model reported."""
        self._record(agent, response)
        if self.inner is not None:
            await self.inner.on_llm_end(context, agent, response)

    def _record(self, agent: Agent[Any], response: Any) -> None:
        trace = get_current_trace()
        if trace is None or trace.trace_id == "no-op":
            return
        ended, ended_at = time.perf_counter(), datetime.now(UTC)
        started, started_at = self._started.pop(id(agent), (ended, ended_at))
        span = get_current_span()
        model, provider = model_identity(agent.model or self.run_config.model)
        self.processor.record_model_call(
            ModelCall(
                trace_id=trace.trace_id,
                parent_span_id=self.processor.stored_parent(span.span_id if span else None),
                link=link_of(trace),
                agent_name=agent.name,
                model=model,
                provider=provider,
                usage=response.usage,
                response_id=getattr(response, "response_id", None),
                started_at=started_at,
                ended_at=ended_at,
                latency_ms=(ended - started) * 1000,
            )
        )


def _forwarding(name: str) -> Callable[..., Awaitable[None]]:
    async def forward(self: ObservingHooks, *args: Any, **kwargs: Any) -> None:
        if self.inner is not None:
            await getattr(self.inner, name)(*args, **kwargs)

    forward.__name__ = name
    forward.__doc__ = f"Forward ``{name}`` to the caller's hooks."
    return forward


# Every other callback, including ones later SDK versions add, reaches the caller's hooks.
for _name in dir(RunHooksBase):
    if _name.startswith("on_") and _name not in vars(ObservingHooks):
        setattr(ObservingHooks, _name, _forwarding(_name))


class RunObserver:
    """One ``run_agent`` call as Timestep records it (a no-op when nothing is recorded).

    Usage inside ``run_agent``::

        observer = RunObserver(processor, run_config, runner_kwargs)
        observer.started(input_or_state)
        result = await Runner.run(..., **runner_kwargs)
        observer.finished(result)
    """

    def __init__(
        self,
        processor: TimestepTraceProcessor | None,
        run_config: RunConfig,
        runner_kwargs: dict[str, Any],
    ) -> None:
        self.processor = processor
        self.hooks: ObservingHooks | None = None
        if processor is not None:
            self.hooks = ObservingHooks(processor, run_config, runner_kwargs.get("hooks"))
            runner_kwargs["hooks"] = self.hooks

    def started(self, input_or_state: Any) -> None:
        """For a resumed ``RunState``, record the approval decisions it carries."""
        if self.processor is None or not isinstance(input_or_state, RunState):
            return
        trace_id = trace_id_of(input_or_state)
        context = getattr(input_or_state, "_context", None)
        if trace_id is None or context is None:
            return
        for item in input_or_state.get_interruptions():
            approved = context.is_tool_approved(str(item.tool_name), str(item.call_id))
            if approved is not None:
                _record(self.processor, trace_id, item, "approved" if approved else "rejected")

    def decided(
        self,
        state: RunState[Any, Any],
        item: Any,
        *,
        approved: bool,
        by: str | None,
        message: str | None,
    ) -> None:
        """Record a decision made on ``item`` of the paused ``state`` (durable runs decide
        inside the workflow, so no resumed state reaches :meth:`started`)."""
        if self.processor is not None:
            record_decision(self.processor, state, item, approved=approved, by=by, message=message)

    def finished(self, result: RunResult | RunResultStreaming) -> None:
        """Record each tool call the run paused on as an approval request, and make sure
        ``result.to_state()`` names the run's trace."""
        if self.processor is None:
            return
        trace = self.hooks.trace if self.hooks else None
        if trace is not None and trace_id_of(result) is None:
            # The SDK keeps the trace on paused results only. A finished run saved with
            # RunStateStore needs it too, or `timestep runs show` cannot find its spans.
            result._trace_state = TraceState.from_trace(trace)
        trace_id = trace_id_of(result)
        if trace_id is None or not result.interruptions:
            return
        for item in result.interruptions:
            _record(self.processor, trace_id, item, "requested")


def record_decision(
    processor: TimestepTraceProcessor,
    state: RunState[Any, Any],
    item: Any,
    *,
    approved: bool,
    by: str | None,
    message: str | None,
) -> bool:
    """Record an approval decision on ``item`` of ``state``; ``False`` if the state has no
    trace to attach it to (it was run with tracing off)."""
    trace_id = trace_id_of(state)
    if trace_id is None:
        return False
    _record(processor, trace_id, item, "approved" if approved else "rejected", by, message)
    return True


def _record(
    processor: TimestepTraceProcessor,
    trace_id: str,
    item: Any,
    decision: ApprovalDecision,
    by: str | None = None,
    message: str | None = None,
) -> None:
    raw = getattr(item, "raw_item", None)
    arguments = raw.get("arguments") if isinstance(raw, dict) else getattr(raw, "arguments", None)
    agent = getattr(item, "agent", None)
    processor.record_approval(
        ApprovalEvent(
            trace_id=trace_id,
            call_id=str(getattr(item, "call_id", None) or "?"),
            tool_name=str(getattr(item, "tool_name", None) or "?"),
            decision=decision,
            at=datetime.now(UTC),
            agent_name=getattr(agent, "name", None),
            arguments=arguments if isinstance(arguments, str) else None,
            by=by,
            message=message,
        )
    )


def model_identity(model: str | Model | None) -> tuple[str | None, str | None]:
    """``(model name, provider)`` of an agent's model setting.

    ``"scripted/gpt-4.1-mini"`` -> ``("gpt-4.1-mini", "scripted")``; a bare name goes to
    OpenAI; a ``Model`` instance gives its ``model`` attribute (unwrapping wrappers such as
    durable models) and a provider known from its class, else the class name.
    """
    if model is None:
        model = get_default_model()
    if isinstance(model, str):
        prefix, slash, rest = model.partition("/")
        return (rest, prefix) if slash else (model, "openai")
    inner = getattr(model, "model", None)
    if isinstance(inner, Model):
        return model_identity(inner)
    name = inner if isinstance(inner, str) else None
    kind = type(model).__name__
    return name, _PROVIDER_OF_CLASS.get(kind, kind)


def trace_id_of(source: Any) -> str | None:
    """The trace id a ``RunState`` or run result carries (``None`` when it was untraced)."""
    state = getattr(source, "_trace_state", None)
    trace_id = getattr(state, "trace_id", None)
    if not trace_id:
        trace_id = getattr(getattr(source, "trace", None), "trace_id", None)
    return trace_id if isinstance(trace_id, str) and trace_id != "no-op" else None
