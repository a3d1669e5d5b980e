"""Reading what the processor wrote: which traces belong to a run, a session or a trace id.

A run and its traces find each other three ways: a saved ``RunState`` carries its trace id
(``state["trace"]["id"]``, reused when the run resumes, in any process); a trace records the
session (its ``group_id``, which ``run_agent`` sets from ``session=``, or the workflow id of a
durable run); and the trace records the starting agent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ..config import redact_url
from ..errors import ConfigurationError
from ..storage import SQLStateBackend, StoredState, get_backend
from ..storage.schema import model_usage, spans, traces

__all__ = ["TraceRecords", "load_records", "resolve_trace_ids", "sql_backend", "utc"]


@dataclass(frozen=True)
class TraceRecords:
    """Rows of some traces: the traces, their spans and their model usage, oldest first."""

    traces: list[dict[str, Any]]
    spans: list[dict[str, Any]]
    usage: list[dict[str, Any]]
    run: StoredState | None = None


def sql_backend(url: str | None) -> SQLStateBackend:
    """The SQL backend for ``url`` (the configured database when ``None``).

    Raises:
        ConfigurationError: the URL is served by a plugin backend, which holds no traces.
    """
    backend = get_backend(url)
    if not isinstance(backend, SQLStateBackend):
        raise ConfigurationError(
            f"Traces and usage live in a SQL database; {redact_url(backend.url)!r} is served by "
            f"{type(backend).__name__}. Pass --url with the postgresql:// or sqlite:/// "
            "database TIMESTEP_TRACING=db writes to."
        )
    return backend


async def resolve_trace_ids(
    backend: SQLStateBackend, ident: str
) -> tuple[list[str], StoredState | None]:
    """Trace ids for ``ident``: a trace id, a stored run's id, or a session id.

    Returns the ids (oldest first) and the stored run when ``ident`` named one.
    """
    async with backend.transaction() as conn:
        if await _exists(conn, ident):
            return [ident], None
    run = await backend.get(ident)
    runs = [run] if run is not None else await backend.list(session_id=ident, limit=100)
    from_states = [trace_id for row in runs if (trace_id := _state_trace_id(row)) is not None]
    session = run.session_id if run is not None else ident
    query = select(traces.c.trace_id).where(traces.c.session_id == session)
    if run is not None:
        query = query.where(
            or_(traces.c.agent_name == run.agent_name, traces.c.agent_name.is_(None))
        )
    async with backend.transaction() as conn:
        by_session = [row[0] for row in await conn.execute(query.order_by(traces.c.started_at))]
    return list(dict.fromkeys([*from_states, *by_session])), run


async def load_records(backend: SQLStateBackend, trace_ids: Sequence[str]) -> TraceRecords:
    """Every stored row of ``trace_ids``."""
    if not trace_ids:
        return TraceRecords([], [], [])
    ids = list(trace_ids)
    async with backend.transaction() as conn:
        trace_rows = await _rows(
            conn, select(traces).where(traces.c.trace_id.in_(ids)).order_by(traces.c.started_at)
        )
        span_rows = await _rows(
            conn,
            select(spans)
            .where(spans.c.trace_id.in_(ids))
            .order_by(spans.c.started_at, spans.c.span_id),
        )
        usage_rows = await _rows(
            conn,
            select(model_usage)
            .where(model_usage.c.trace_id.in_(ids))
            .order_by(model_usage.c.ended_at, model_usage.c.id),
        )
    return TraceRecords(trace_rows, span_rows, usage_rows)


def utc(value: datetime | str | None) -> datetime | None:
    """A stored timestamp as an aware UTC datetime (SQLite hands back naive ones)."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _exists(conn: AsyncConnection, trace_id: str) -> bool:
    for table in (traces, spans):
        found = await conn.execute(select(table.c.trace_id).where(table.c.trace_id == trace_id))
        if found.first() is not None:
            return True
    return False


async def _rows(conn: AsyncConnection, query: Any) -> list[dict[str, Any]]:
    result = await conn.execute(query)
    rows = [dict(row._mapping) for row in result]
    for row in rows:
        for column in ("started_at", "ended_at"):
            if column in row:
                row[column] = utc(row[column])
        for column in ("data", "error", "trace_metadata"):
            if row.get(column):
                row[column] = json.loads(row[column])
    return rows


def _state_trace_id(row: StoredState) -> str | None:
    try:
        data = json.loads(row.state)
    except (TypeError, ValueError, RecursionError):
        return None
    trace = data.get("trace") if isinstance(data, dict) else None
    trace_id = trace.get("id") if isinstance(trace, dict) else None
    return trace_id if isinstance(trace_id, str) else None
