"""Stored traces as OpenTelemetry JSON (``timestep traces export ID``).

The document is an OTLP ``ExportTraceServiceRequest`` in its JSON encoding (the body an OTLP
HTTP collector accepts at ``/v1/traces``, and what ``otel-cli`` / Jaeger / Tempo import):
``resourceSpans`` -> ``scopeSpans`` -> ``spans``, hex ids, times in Unix nanoseconds as
strings. Attributes follow the OpenTelemetry GenAI conventions where one exists
(``gen_ai.operation.name``, ``gen_ai.agent.name``, ``gen_ai.tool.name``,
``gen_ai.request.model``, ``gen_ai.usage.input_tokens`` ...); the rest are ``timestep.*`` and
``openai_agents.*``. Each model call Timestep measured becomes a ``chat`` span; the SDK's
original ids are kept as attributes.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from ..errors import TraceNotFoundError
from .lookup import TraceRecords, load_records, resolve_trace_ids, sql_backend
from .prices import nanos_to_usd

__all__ = ["export_traces", "otlp_document"]

_TRACE_HEX = re.compile(r"^trace_([0-9a-f]{32})$")
_KIND_INTERNAL, _KIND_CLIENT = 1, 3
_STATUS_ERROR = 2
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_OPERATION = {
    "agent": "invoke_agent",
    "function": "execute_tool",
    "generation": "chat",
    "response": "chat",
}


async def export_traces(url: str | None, ident: str) -> dict[str, Any]:
    """OTLP JSON for a trace id, a stored run (its traces) or a session (all its traces).

    Raises:
        TraceNotFoundError: nothing was recorded for ``ident``.
    """
    backend = sql_backend(url)
    trace_ids, _ = await resolve_trace_ids(backend, ident)
    records = await load_records(backend, trace_ids)
    if not records.spans and not records.usage:
        raise TraceNotFoundError(
            f"No recorded trace for {ident!r}: it is not a trace id, run id or session with "
            "spans in this database. Traces are recorded with TIMESTEP_TRACING=db (or all); "
            "`timestep traces list` shows the recorded ones.",
            ident=ident,
        )
    return otlp_document(records)


def otlp_document(records: TraceRecords) -> dict[str, Any]:
    """The OTLP JSON document for ``records``."""
    by_trace = {row["trace_id"]: row for row in records.traces}
    span_ids = {row["span_id"] for row in records.spans}
    from_spans = {row["span_id"]: row for row in records.usage if row["source"] == "span"}
    exported = [
        _span(row, by_trace.get(row["trace_id"]), from_spans.get(row["span_id"]), span_ids)
        for row in records.spans
    ]
    exported += [
        _usage_span(row, by_trace.get(row["trace_id"]), span_ids)
        for row in records.usage
        if row["source"] != "span"
    ]
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": _attributes(
                        {"service.name": "timestep", "telemetry.sdk.name": "timestep"}
                    )
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "timestep.observability", "version": _version()},
                        "spans": exported,
                    }
                ],
            }
        ]
    }


def _span(
    row: dict[str, Any],
    trace: dict[str, Any] | None,
    usage: dict[str, Any] | None,
    known: set[str],
) -> dict[str, Any]:
    data: dict[str, Any] = row["data"] or {}
    kind = row["span_type"]
    operation = _OPERATION.get(kind)
    name = row["name"] or kind
    attributes: dict[str, Any] = {
        "openai_agents.span_type": kind,
        "openai_agents.span_id": row["span_id"],
        **_trace_attributes(row["trace_id"], trace),
    }
    if operation:
        attributes["gen_ai.operation.name"] = operation
    if kind == "agent":
        attributes["gen_ai.agent.name"] = name
        attributes["openai_agents.tools"] = data.get("tools") or []
    elif kind == "function":
        attributes["gen_ai.tool.name"] = name
        attributes["gen_ai.tool.call.arguments"] = data.get("input")
        attributes["gen_ai.tool.call.result"] = data.get("output")
    elif kind == "handoff":
        attributes["openai_agents.handoff.from"] = data.get("from_agent")
        attributes["openai_agents.handoff.to"] = data.get("to_agent")
    elif kind == "guardrail":
        attributes["openai_agents.guardrail.name"] = name
        attributes["openai_agents.guardrail.triggered"] = bool(data.get("triggered"))
    elif kind == "approval":
        attributes.update({f"timestep.approval.{k}": v for k, v in data.items()})
    elif kind in ("generation", "response"):
        attributes["gen_ai.request.model"] = data.get("model")
    if usage is not None:
        attributes.update(_usage_attributes(usage))
    span = _base(row["trace_id"], row["span_id"], row["parent_id"], known)
    span.update(
        name=f"{operation} {name}" if operation else f"{kind} {name}",
        kind=_KIND_CLIENT if kind in ("generation", "response") else _KIND_INTERNAL,
        startTimeUnixNano=_nanos(row["started_at"]),
        endTimeUnixNano=_nanos(row["ended_at"] or row["started_at"]),
        attributes=_attributes(attributes),
    )
    error = (row["error"] or {}).get("message")
    if error:
        span["status"] = {"code": _STATUS_ERROR, "message": str(error)}
    return span


def _usage_span(
    row: dict[str, Any], trace: dict[str, Any] | None, known: set[str]
) -> dict[str, Any]:
    span = _base(row["trace_id"], f"usage_{row['id']}", row["span_id"], known)
    span.update(
        name=f"chat {row['model'] or 'unknown'}",
        kind=_KIND_CLIENT,
        startTimeUnixNano=_nanos(row["started_at"] or row["ended_at"]),
        endTimeUnixNano=_nanos(row["ended_at"]),
        attributes=_attributes(
            {
                "gen_ai.operation.name": "chat",
                **_usage_attributes(row),
                **_trace_attributes(row["trace_id"], trace),
            }
        ),
    )
    return span


def _usage_attributes(row: dict[str, Any]) -> dict[str, Any]:
    usd = nanos_to_usd(row["cost_nanousd"])
    return {
        "gen_ai.agent.name": row["agent_name"],
        "gen_ai.request.model": row["model"],
        "gen_ai.provider.name": row["provider"],
        "gen_ai.response.id": row["response_id"],
        "gen_ai.usage.input_tokens": row["input_tokens"],
        "gen_ai.usage.output_tokens": row["output_tokens"],
        "timestep.usage.cached_tokens": row["cached_tokens"],
        "timestep.usage.cache_write_tokens": row["cache_write_tokens"],
        "timestep.usage.reasoning_tokens": row["reasoning_tokens"],
        "timestep.usage.requests": row["requests"],
        "timestep.cost_usd": None if usd is None else str(usd),
        "timestep.latency_ms": row["latency_ms"],
    }


def _trace_attributes(trace_id: str, trace: dict[str, Any] | None) -> dict[str, Any]:
    facts: dict[str, Any] = {"openai_agents.trace_id": trace_id}
    if trace is not None:
        facts["session.id"] = trace["session_id"]
        facts["timestep.workflow_id"] = trace["workflow_id"]
        facts["timestep.workflow_name"] = trace["workflow_name"]
    return facts


def _base(trace_id: str, span_id: str, parent_id: str | None, known: set[str]) -> dict[str, Any]:
    span: dict[str, Any] = {"traceId": _trace_hex(trace_id), "spanId": _span_hex(span_id)}
    # A parent that was not exported (deleted by gc, or never ended) would dangle.
    if parent_id and parent_id in known:
        span["parentSpanId"] = _span_hex(parent_id)
    return span


def _trace_hex(trace_id: str) -> str:
    match = _TRACE_HEX.match(trace_id)
    return match.group(1) if match else hashlib.sha256(trace_id.encode()).hexdigest()[:32]


def _span_hex(span_id: str) -> str:
    return hashlib.sha256(span_id.encode()).hexdigest()[:16]


def _nanos(moment: datetime | None) -> str:
    # OTLP JSON writes 64-bit integers as decimal strings.
    if moment is None:
        return "0"
    return str((moment - _EPOCH) // timedelta(microseconds=1) * 1000)


def _attributes(values: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"key": key, "value": _any_value(value)}
        for key, value in values.items()
        if value is not None
    ]


def _any_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, list | tuple):
        return {"arrayValue": {"values": [_any_value(v) for v in value if v is not None]}}
    return {"stringValue": json.dumps(value, separators=(",", ":"), default=str)}


def _version() -> str:
    try:
        return version("timestep")
    except PackageNotFoundError:
        return "0"
