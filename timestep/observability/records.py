"""What the trace processor writes: rows for traces, spans, model usage and approvals.

The processor's hot path only queues SDK objects and small records; everything here runs on
its writer thread, so redaction, JSON encoding and pricing never slow a run down.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from agents.tracing import Span, Trace

from .prices import ModelPrice, cost_nanousd, price_for
from .redaction import Redactor

__all__ = [
    "APPROVAL_SPAN_TYPE",
    "ApprovalDecision",
    "ApprovalEvent",
    "ModelCall",
    "TraceLink",
    "approval_row",
    "link_of",
    "model_call_row",
    "span_row",
    "span_usage_row",
    "trace_row",
    "usage_counts",
    "workflow_id",
]

APPROVAL_SPAN_TYPE = "approval"
"""``span_type`` of the rows recording approval requests and decisions."""

ApprovalDecision = Literal["requested", "approved", "rejected"]

_NAME_LIMIT = 255
_ERROR_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class TraceLink:
    """What a trace belongs to: a Timestep session and a DBOS workflow, when known."""

    session_id: str | None
    workflow_id: str | None


@dataclass(frozen=True, slots=True)
class ModelCall:
    """One model call as ``run_agent`` saw it (its hooks), with the exact usage reported."""

    trace_id: str
    parent_span_id: str | None
    link: TraceLink
    agent_name: str
    model: str | None
    provider: str | None
    usage: Any
    response_id: str | None
    started_at: datetime
    ended_at: datetime
    latency_ms: float


@dataclass(frozen=True, slots=True)
class ApprovalEvent:
    """A tool call waiting for approval, or the decision on it (``by`` whom, when known)."""

    trace_id: str
    call_id: str
    tool_name: str
    decision: ApprovalDecision
    at: datetime
    agent_name: str | None = None
    arguments: str | None = None
    by: str | None = None
    message: str | None = None


def workflow_id() -> str | None:
    """The DBOS workflow running this code, if any (read from DBOS's context, never imported)."""
    dbos = sys.modules.get("dbos")
    if dbos is None:
        return None
    try:
        current = dbos.DBOS.workflow_id
    except Exception:
        return None
    return current if isinstance(current, str) else None


def link_of(trace: Trace | None) -> TraceLink:
    """The session and workflow of ``trace``.

    The session is the trace's ``group_id`` (``run_agent`` puts the session id there), else
    ``metadata["timestep.session_id"]``; inside a workflow whose trace names no session, the
    workflow id (durable runs store their state under it).
    """
    workflow = workflow_id()
    session: Any = None
    if trace is not None:
        session = getattr(trace, "group_id", None)
        if not session:
            metadata = getattr(trace, "metadata", None)
            session = metadata.get("timestep.session_id") if isinstance(metadata, dict) else None
    session = session if isinstance(session, str) and session else workflow
    return TraceLink(session_id=session, workflow_id=workflow)


def trace_row(
    trace: Trace,
    *,
    started_at: datetime | None,
    ended_at: datetime | None,
    link: TraceLink,
    redactor: Redactor,
) -> dict[str, Any]:
    """A ``timestep_traces`` row (the processor merges a start and an end of one trace)."""
    metadata = getattr(trace, "metadata", None)
    agent = metadata.get("timestep.agent") if isinstance(metadata, dict) else None
    return {
        "trace_id": trace.trace_id,
        "workflow_name": _cap(redactor.scrub(trace.name)),
        "group_id": _cap(getattr(trace, "group_id", None)),
        "session_id": _cap(link.session_id),
        "agent_name": _cap(agent if isinstance(agent, str) else None),
        "workflow_id": _cap(link.workflow_id),
        "trace_metadata": _json(redactor.scrub_all(metadata)) if metadata else None,
        "started_at": started_at,
        "ended_at": ended_at,
    }


def span_row(span: Span[Any], redactor: Redactor, *, parent_id: str | None) -> dict[str, Any]:
    """A ``timestep_spans`` row: type, a short name, timing, error and the redacted payload.

    ``parent_id`` is the nearest stored ancestor (frame spans are mostly not stored).
    """
    data = span.span_data
    kind, name, body = _describe(data, redactor)
    error = span.error
    stored_error = None
    if error:
        stored_error = {"message": redactor.text(str(error.get("message")), limit=_ERROR_LIMIT)}
        if redactor.mode != "off" and error.get("data"):
            stored_error["data"] = redactor.payload(error.get("data"))
    return {
        "span_id": span.span_id,
        "trace_id": span.trace_id,
        "parent_id": parent_id,
        "span_type": kind,
        "name": _cap(redactor.text(name)),
        "started_at": _when(span.started_at),
        "ended_at": _when(span.ended_at),
        "error": _json(stored_error) if stored_error else None,
        "data": _json(body),
    }


def approval_row(event: ApprovalEvent, redactor: Redactor) -> dict[str, Any]:
    """An approval request or decision, stored as a span of type ``approval`` in its trace."""
    body = {
        "call_id": event.call_id,
        "decision": event.decision,
        "agent": event.agent_name,
        "by": redactor.text(event.by),
        "arguments": redactor.payload(event.arguments),
        "message": redactor.payload(event.message),
    }
    return {
        "span_id": f"approval_{uuid.uuid4().hex}",
        "trace_id": event.trace_id,
        "parent_id": None,
        "span_type": APPROVAL_SPAN_TYPE,
        "name": _cap(event.tool_name),
        "started_at": event.at,
        "ended_at": event.at,
        "error": None,
        "data": _json(body),
    }


def model_call_row(call: ModelCall, prices: Mapping[str, ModelPrice]) -> dict[str, Any]:
    """A ``timestep_model_usage`` row for a call ``run_agent`` observed, priced now."""
    counts = usage_counts(call.usage)
    return _usage_row(
        trace_id=call.trace_id,
        span_id=call.parent_span_id,
        link=call.link,
        agent_name=call.agent_name,
        model=call.model,
        provider=call.provider,
        counts=counts,
        latency_ms=call.latency_ms,
        response_id=call.response_id,
        source="run",
        started_at=call.started_at,
        ended_at=call.ended_at,
        prices=prices,
    )


def span_usage_row(
    span: Span[Any], link: TraceLink, agent_name: str | None, prices: Mapping[str, ModelPrice]
) -> dict[str, Any] | None:
    """Usage reported on a generation or response span (a model the SDK traced itself), or
    ``None`` when the span carries none."""
    data = span.span_data
    response = getattr(data, "response", None)
    usage = getattr(data, "usage", None) or getattr(response, "usage", None)
    if usage is None:
        return None
    model = getattr(response, "model", None) or getattr(data, "model", None)
    model = model if isinstance(model, str) else None
    provider = _provider_of_span(data, model)
    if model and provider and model.startswith(f"{provider}/"):
        model = model.removeprefix(f"{provider}/")
    started, ended = _when(span.started_at), _when(span.ended_at)
    latency = (ended - started).total_seconds() * 1000 if started and ended else None
    return _usage_row(
        trace_id=span.trace_id,
        span_id=span.span_id,
        link=link,
        agent_name=agent_name,
        model=model,
        provider=provider,
        counts=usage_counts(usage),
        latency_ms=latency,
        response_id=getattr(response, "id", None),
        source="span",
        started_at=started,
        ended_at=ended or datetime.now(UTC),
        prices=prices,
    )


def usage_counts(usage: Any) -> dict[str, int]:
    """Token counts from the SDK's ``Usage``, an API usage object or a span's usage dict."""
    input_tokens = _int(_get(usage, "input_tokens"))
    output_tokens = _int(_get(usage, "output_tokens"))
    total = _int(_get(usage, "total_tokens")) or input_tokens + output_tokens
    requests = _get(usage, "requests")
    details = _get(usage, "input_tokens_details")
    return {
        "requests": 1 if requests is None else _int(requests),
        "input_tokens": input_tokens,
        "cached_tokens": _int(_get(details, "cached_tokens")),
        "cache_write_tokens": _int(_get(details, "cache_write_tokens")),
        "output_tokens": output_tokens,
        "reasoning_tokens": _int(_get(_get(usage, "output_tokens_details"), "reasoning_tokens")),
        "total_tokens": total,
    }


def _usage_row(
    *,
    trace_id: str,
    span_id: str | None,
    link: TraceLink,
    agent_name: str | None,
    model: str | None,
    provider: str | None,
    counts: dict[str, int],
    latency_ms: float | None,
    response_id: str | None,
    source: str,
    started_at: datetime | None,
    ended_at: datetime,
    prices: Mapping[str, ModelPrice],
) -> dict[str, Any]:
    cost = cost_nanousd(
        price_for(model, provider, prices),
        input_tokens=counts["input_tokens"],
        output_tokens=counts["output_tokens"],
        cached_tokens=counts["cached_tokens"],
        cache_write_tokens=counts["cache_write_tokens"],
    )
    return {
        "id": uuid.uuid4().hex,
        "trace_id": trace_id,
        "span_id": span_id,
        "session_id": _cap(link.session_id),
        "workflow_id": _cap(link.workflow_id),
        "agent_name": _cap(agent_name),
        "model": _cap(model),
        "provider": _cap(provider, 64),
        **counts,
        "latency_ms": latency_ms,
        "cost_nanousd": cost,
        "response_id": _cap(response_id),
        "source": source,
        "started_at": started_at,
        "ended_at": ended_at,
    }


def _describe(data: Any, redactor: Redactor) -> tuple[str, str | None, dict[str, Any]]:
    """(span type, short name, stored body) for each SDK span kind."""
    kind = str(data.type)
    if kind == "agent":
        return kind, data.name, {"tools": data.tools, "handoffs": data.handoffs}
    if kind == "function":
        body = {
            "input": redactor.payload(data.input),
            "output": redactor.payload(None if data.output is None else str(data.output)),
        }
        if data.mcp_data:
            body["mcp_data"] = redactor.scrub_all(data.mcp_data)
        return kind, data.name, body
    if kind == "generation":
        return (
            kind,
            data.model,
            {
                "model": data.model,
                "model_config": redactor.scrub_all(data.model_config),
                "usage": data.usage,
                "input": redactor.payload(data.input),
                "output": redactor.payload(data.output),
            },
        )
    if kind == "response":
        response = data.response
        return (
            kind,
            getattr(response, "model", None),
            {
                "response_id": getattr(response, "id", None),
                "model": getattr(response, "model", None),
                "usage": data.usage or _dump(getattr(response, "usage", None)),
                "input": redactor.payload(data.input),
                "output": redactor.payload(_dump(getattr(response, "output", None))),
            },
        )
    if kind == "handoff":
        body = {"from_agent": data.from_agent, "to_agent": data.to_agent}
        return kind, f"{data.from_agent} -> {data.to_agent}", body
    if kind == "guardrail":
        return kind, data.name, {"triggered": bool(data.triggered)}
    if kind == "turn":
        body = {"turn": data.turn, "agent_name": data.agent_name, "usage": data.usage}
        return kind, f"turn {data.turn}", body
    if kind == "task":
        return kind, data.name, {"usage": data.usage}
    if kind == "custom":
        return kind, data.name, {"data": redactor.payload(data.data)}
    if kind == "mcp_tools":
        return kind, data.server, {"result": redactor.scrub_all(data.result)}
    # Speech, transcription and whatever the SDK adds later: all of it is payload.
    return kind, kind, {"data": redactor.payload(data.export())}


def _provider_of_span(data: Any, model: str | None) -> str | None:
    if model and "/" in model:
        return model.split("/", 1)[0]
    config = getattr(data, "model_config", None)
    base_url = config.get("base_url") if isinstance(config, Mapping) else None
    if base_url:
        host = urlsplit(str(base_url)).hostname or ""
        return "openai" if host.endswith("openai.com") else host or None
    # Response spans come from the Responses API: OpenAI's unless a base URL says otherwise.
    return "openai" if data.type == "response" else None


def _get(source: Any, name: str) -> Any:
    if source is None:
        return None
    if isinstance(source, Mapping):
        return source.get(name)
    return getattr(source, name, None)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _dump(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, list):
        return [_dump(item) for item in value]
    dump = getattr(value, "model_dump", None)
    return dump(mode="json", exclude_none=True) if callable(dump) else value


def _when(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _cap(value: str | None, limit: int = _NAME_LIMIT) -> str | None:
    return value if value is None or len(value) <= limit else value[:limit]


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
