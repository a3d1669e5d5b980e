"""A run, step by step: model calls, tool calls, approvals, handoffs and guardrail checks.

Built from the stored traces of a run (or a session, or one trace): the SDK's spans, the usage
of each model call and the approval rows, in time order::

    for entry in await timeline(None, "ticket-42"):
        print(entry.at, entry.kind, entry.title, entry.detail)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ..storage import SQLStateBackend, get_backend
from .lookup import TraceRecords, load_records, resolve_trace_ids
from .prices import nanos_to_usd

__all__ = ["KINDS", "TimelineEntry", "build_timeline", "format_cost", "timeline"]

KINDS = ("run", "agent", "guardrail", "model", "handoff", "tool", "approval", "custom", "error")
"""Entry kinds, in the order entries with the same timestamp are listed."""

_PAUSE_WINDOW = timedelta(seconds=5)
_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class TimelineEntry:
    """One step of a run.

    ``kind`` is one of :data:`KINDS`; ``title`` says what happened and ``detail`` adds the
    numbers (tokens and cost, a tool's result, who approved). ``data`` holds the same facts
    for scripts (``--json``).
    """

    at: datetime | None
    kind: str
    title: str
    agent: str | None = None
    detail: str | None = None
    duration_ms: float | None = None
    trace_id: str | None = None
    span_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The entry as JSON-ready values (ISO time, plain numbers)."""
        return {
            "at": self.at.isoformat() if self.at else None,
            "kind": self.kind,
            "title": self.title,
            "agent": self.agent,
            "detail": self.detail,
            "duration_ms": self.duration_ms,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "data": self.data,
        }


async def timeline(backend_url: str | None, run_or_session_id: str) -> list[TimelineEntry]:
    """The steps of a stored run (by run id), a session (every run in it) or a trace id.

    Empty when nothing was recorded (``TIMESTEP_TRACING`` was ``off``, or the run lives in a
    plugin backend, where traces are never written).
    """
    backend = get_backend(backend_url)
    if not isinstance(backend, SQLStateBackend):
        return []
    trace_ids, _ = await resolve_trace_ids(backend, run_or_session_id)
    return build_timeline(await load_records(backend, trace_ids))


def build_timeline(records: TraceRecords) -> list[TimelineEntry]:
    """Timeline entries from stored rows, oldest first."""
    agents = _agents_by_span(records.spans)
    traced_usage = {row["trace_id"] for row in records.usage}
    approvals = _approvals(records.spans)
    entries: list[TimelineEntry] = [_run_entry(row) for row in records.traces]
    for row in records.spans:
        kind = row["span_type"]
        if kind == "approval":
            continue
        if kind in ("generation", "response") and row["trace_id"] in traced_usage:
            continue  # the usage rows describe these calls, with tokens and cost
        if kind == "function" and _is_pause_marker(row, approvals):
            continue  # the approval request below says the same
        entry = _span_entry(row, agents.get(row["parent_id"] or ""))
        if entry is not None:
            entries.append(entry)
    entries += [_model_entry(row) for row in records.usage]
    entries += [_approval_entry(row) for row in approvals]
    order = {kind: index for index, kind in enumerate(KINDS)}
    entries.sort(key=lambda e: (e.at or _NEVER, order[e.kind]))
    return entries


def format_cost(nanos: int | None) -> str:
    """Dollars for display: ``$0.000123``, or ``?`` when the model has no price."""
    usd = nanos_to_usd(nanos)
    return "?" if usd is None else f"${usd:f}"


def _run_entry(row: dict[str, Any]) -> TimelineEntry:
    facts = {
        "session": row["session_id"],
        "workflow": row["workflow_id"],
        "agent": row["agent_name"],
    }
    detail = ", ".join(f"{k} {v}" for k, v in facts.items() if v)
    return TimelineEntry(
        at=row["started_at"],
        kind="run",
        title=f"trace {row['trace_id']} ({row['workflow_name']})",
        agent=row["agent_name"],
        detail=detail or None,
        duration_ms=_duration(row),
        trace_id=row["trace_id"],
        data={k: row[k] for k in ("workflow_name", "session_id", "workflow_id", "group_id")},
    )


def _span_entry(row: dict[str, Any], agent: str | None) -> TimelineEntry | None:
    data: dict[str, Any] = row["data"] or {}
    error = (row["error"] or {}).get("message")
    kind = row["span_type"]
    name = row["name"]
    common: dict[str, Any] = {
        "at": row["started_at"],
        "duration_ms": _duration(row),
        "trace_id": row["trace_id"],
        "span_id": row["span_id"],
    }
    if kind == "agent":
        tools = ", ".join(data.get("tools") or []) or "no tools"
        return TimelineEntry(
            kind="agent", title=f"{name} started", agent=name, detail=tools, data=data, **common
        )
    if kind == "function":
        arguments = _shown(data.get("input"))
        result = f"error: {error}" if error else f"-> {_shown(data.get('output'))}"
        return TimelineEntry(
            kind="tool",
            title=f"{name}({arguments})",
            agent=agent,
            detail=result,
            data={"tool": name, "arguments": data.get("input"), "output": data.get("output")},
            **common,
        )
    if kind == "handoff":
        title = f"handoff {data.get('from_agent')} -> {data.get('to_agent')}"
        return TimelineEntry(
            kind="handoff", title=title, agent=data.get("from_agent"), data=data, **common
        )
    if kind == "guardrail":
        tripped = bool(data.get("triggered"))
        return TimelineEntry(
            kind="guardrail",
            title=f"guardrail {name} {'TRIPPED' if tripped else 'passed'}",
            agent=agent,
            data={"guardrail": name, "triggered": tripped},
            **common,
        )
    if kind in ("generation", "response"):
        return TimelineEntry(
            kind="model",
            title=f"{name or 'model'} call",
            agent=agent,
            detail="no usage reported",
            **common,
        )
    if error:
        return TimelineEntry(kind="error", title=str(error), agent=agent, **common)
    if kind == "custom":
        return TimelineEntry(kind="custom", title=str(name), agent=agent, data=data, **common)
    return None  # task and turn spans frame the others; they add nothing on their own


def _model_entry(row: dict[str, Any]) -> TimelineEntry:
    model = row["model"] or "unknown model"
    cost = format_cost(row["cost_nanousd"])
    tokens = (
        f"{row['input_tokens']} in ({row['cached_tokens']} cached) / "
        f"{row['output_tokens']} out ({row['reasoning_tokens']} reasoning)"
    )
    usd = nanos_to_usd(row["cost_nanousd"])
    return TimelineEntry(
        at=row["started_at"] or row["ended_at"],
        kind="model",
        title=f"{model} ({row['provider'] or '?'})",
        agent=row["agent_name"],
        detail=f"{tokens}, {cost}",
        duration_ms=row["latency_ms"],
        trace_id=row["trace_id"],
        span_id=row["span_id"],
        data={
            "model": row["model"],
            "provider": row["provider"],
            "requests": row["requests"],
            "input_tokens": row["input_tokens"],
            "cached_tokens": row["cached_tokens"],
            "cache_write_tokens": row["cache_write_tokens"],
            "output_tokens": row["output_tokens"],
            "reasoning_tokens": row["reasoning_tokens"],
            "total_tokens": row["total_tokens"],
            "cost_usd": None if usd is None else str(usd),
            "response_id": row["response_id"],
        },
    )


def _approvals(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Approval rows, one per call and decision: a decision recorded with who made it wins
    over the same decision noticed when the run resumed."""
    chosen: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in rows:
        if row["span_type"] != "approval":
            continue
        data = row["data"] or {}
        key = (row["trace_id"], str(data.get("call_id")), str(data.get("decision")))
        kept = chosen.get(key)
        if kept is None or (not (kept["data"] or {}).get("by") and data.get("by")):
            chosen[key] = row
    return list(chosen.values())


def _approval_entry(row: dict[str, Any]) -> TimelineEntry:
    data: dict[str, Any] = row["data"] or {}
    tool, decision = row["name"], data.get("decision")
    if decision == "requested":
        title = f"{tool}({_shown(data.get('arguments'))}) waits for approval"
        detail = f"call {data.get('call_id')}"
    else:
        title = f"{tool} {decision} by {data.get('by') or 'unknown'}"
        message = data.get("message")
        detail = f"call {data.get('call_id')}" + (f": {message}" if message else "")
    return TimelineEntry(
        at=row["started_at"],
        kind="approval",
        title=title,
        agent=data.get("agent"),
        detail=detail,
        trace_id=row["trace_id"],
        span_id=row["span_id"],
        data={"tool": tool, **data},
    )


def _is_pause_marker(row: dict[str, Any], approvals: list[dict[str, Any]]) -> bool:
    """A tool call the SDK traced as it paused for approval: no output, and an approval
    request for the same call follows within moments."""
    data = row["data"] or {}
    if data.get("output") is not None or row["error"] or row["ended_at"] is None:
        return False
    for approval in approvals:
        asked = approval["data"] or {}
        if (
            asked.get("decision") == "requested"
            and approval["trace_id"] == row["trace_id"]
            and approval["name"] == row["name"]
            and asked.get("arguments") == data.get("input")
            and timedelta(0) <= approval["started_at"] - row["ended_at"] <= _PAUSE_WINDOW
        ):
            return True
    return False


def _agents_by_span(rows: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Agent of each agent / turn span, so a tool or guardrail below one is attributed."""
    found: dict[str, str] = {}
    for row in rows:
        if row["span_type"] == "agent" and row["name"]:
            found[row["span_id"]] = row["name"]
        elif row["span_type"] == "turn":
            agent = (row["data"] or {}).get("agent_name")
            if isinstance(agent, str):
                found[row["span_id"]] = agent
    return found


def _duration(row: dict[str, Any]) -> float | None:
    start, end = row.get("started_at"), row.get("ended_at")
    return (end - start).total_seconds() * 1000 if start and end else None


def _shown(value: Any) -> str:
    if value is None:
        return "..."
    return value if isinstance(value, str) else str(value)
