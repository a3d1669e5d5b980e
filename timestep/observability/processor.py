"""The trace processor: the SDK's traces and spans, and Timestep's usage, into the database.

The SDK calls a processor synchronously, inside the run, for every span. So the hot path here
only appends the SDK's objects to an in-memory queue; a daemon writer thread turns them into
rows (redaction, JSON, prices) and writes them in batches, one transaction per batch.

The writer runs its own event loop with its own :class:`~timestep.storage.SQLStateBackend`:
the SQL drivers Timestep ships (asyncpg, aiosqlite) are async-only, an engine belongs to the
loop that opened it, and a separate loop keeps database I/O off the caller's loop entirely (it
also still works at interpreter exit, when no caller loop runs). A batch that fails is retried
three times, then dropped with a warning: tracing never fails a run. ``force_flush`` blocks until
everything queued before it is written; ``shutdown`` flushes, then stops the thread. The SDK
calls ``shutdown`` at exit, and so does an ``atexit`` hook of Timestep's own.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from agents.tracing import Span, Trace, TracingProcessor, get_current_trace
from sqlalchemy import Table, func, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from ..config import TracePayloads, redact_url
from ..storage.schema import model_usage, spans, traces
from ..storage.sql import SQLStateBackend
from .prices import ModelPrice
from .records import (
    ApprovalEvent,
    ModelCall,
    TraceLink,
    approval_row,
    link_of,
    model_call_row,
    span_row,
    span_usage_row,
    trace_row,
    workflow_id,
)
from .redaction import Redactor

__all__ = ["TimestepTraceProcessor"]

logger = logging.getLogger("timestep")

_MODEL_SPANS = frozenset({"generation", "response"})
_AGENT_SPANS = frozenset({"agent", "turn"})
# Spans that only frame others (a whole run, one turn): stored only when they carry an error;
# their children are attached to the nearest stored ancestor instead.
_FRAME_SPANS = frozenset({"task", "turn"})
_WARN_EVERY = 100
_RETRY_DELAYS = (0.05, 0.25, 1.0)
_MAX_OPEN_SPANS = 10_000


class TimestepTraceProcessor(TracingProcessor):
    """Records traces, spans, model usage and approvals in the Timestep database at ``url``.

    Install it through :func:`timestep.observability.configure_tracing` (which reads
    ``TIMESTEP_TRACING``) rather than by hand; tests read what it wrote after
    :meth:`force_flush`.

    Args:
        url: A ``postgresql://`` or ``sqlite:///`` database URL (normalized).
        payloads: How much of span inputs and outputs to keep (see ``redaction``).
        prices: Price overrides by model name, on top of the shipped defaults.
        flush_interval: Seconds between background writes of whatever is queued.
        batch_size: Events per transaction; a full batch wakes the writer early.
        max_queue: Events held in memory at most; beyond it new events are dropped (counted
            in :attr:`dropped`) rather than letting a stuck database grow memory without bound.
    """

    def __init__(
        self,
        url: str,
        *,
        payloads: TracePayloads = "truncated",
        prices: Mapping[str, ModelPrice] | None = None,
        flush_interval: float = 1.0,
        batch_size: int = 1000,
        max_queue: int = 100_000,
    ) -> None:
        self.url = url
        self.payloads: TracePayloads = payloads
        self.prices: Mapping[str, ModelPrice] = dict(prices or {})
        self.dropped = 0
        self.failed_batches = 0
        self.last_error: str | None = None
        self._interval = flush_interval
        self._batch_size = batch_size
        self._max_queue = max_queue
        self._queue: deque[tuple[Any, ...]] = deque()
        self._wake = threading.Event()
        self._start_lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._closed = False
        # Agent name of each open agent / turn span, for usage found on model spans beneath.
        self._agent_of: dict[str, str] = {}
        # Open spans whose model calls run_agent's hooks record: their model spans carry no
        # usage, so nothing is counted twice. Nested runs (agents as tools) have none.
        self._observed: set[str] = set()
        # Parent of each open frame span, to attach its children to a stored span.
        self._frames: dict[str, str | None] = {}

    def __repr__(self) -> str:
        return f"TimestepTraceProcessor({redact_url(self.url)!r}, payloads={self.payloads!r})"

    # The SDK's callbacks: the hot path. Append and return.

    def on_trace_start(self, trace: Trace) -> None:
        """Queue the start of ``trace`` with what it belongs to (session, workflow)."""
        self._put(("trace", trace, datetime.now(UTC), None, link_of(trace)))

    def on_trace_end(self, trace: Trace) -> None:
        """Queue the end of ``trace``."""
        self._put(("trace", trace, None, datetime.now(UTC), None))

    def on_span_start(self, span: Span[Any]) -> None:
        """Note frame spans, and which agent open agent / turn spans belong to."""
        data = span.span_data
        kind = data.type
        if kind in _FRAME_SPANS:
            if len(self._frames) > _MAX_OPEN_SPANS:
                self._frames.clear()  # spans of abandoned runs never end
            self._frames[span.span_id] = span.parent_id
        if kind in _AGENT_SPANS:
            name = getattr(data, "name", None) or getattr(data, "agent_name", None)
            if isinstance(name, str):
                if len(self._agent_of) > _MAX_OPEN_SPANS:
                    self._agent_of.clear()
                self._agent_of[span.span_id] = name

    def on_span_end(self, span: Span[Any]) -> None:
        """Queue the finished span (and, for a model span whose call no hooks recorded, its
        usage)."""
        kind = span.span_data.type
        if kind in _FRAME_SPANS:
            parent = self._frames.pop(span.span_id, span.parent_id)
            self._agent_of.pop(span.span_id, None)
            self._observed.discard(span.span_id)
            if span.error:
                self._put(("span", span, None, None, self.stored_parent(parent)))
            return
        parent = self.stored_parent(span.parent_id)
        if kind in _MODEL_SPANS and span.parent_id not in self._observed:
            agent = self._agent_of.get(span.parent_id or "")
            self._put(("span", span, link_of(get_current_trace()), agent, parent))
            return
        if kind == "agent":
            self._agent_of.pop(span.span_id, None)
            self._observed.discard(span.span_id)
        self._put(("span", span, None, None, parent))

    def calls_recorded_under(self, span_id: str) -> None:
        """Hooks record the usage of the model calls made directly under ``span_id`` (the
        current agent or turn span when ``on_llm_start`` fires); take none from their spans."""
        if len(self._observed) > _MAX_OPEN_SPANS:
            self._observed.clear()  # spans of abandoned runs never end
        self._observed.add(span_id)

    def stored_parent(self, span_id: str | None) -> str | None:
        """The nearest ancestor of ``span_id`` (itself included) that is stored."""
        frames = self._frames
        while span_id is not None and span_id in frames:
            span_id = frames[span_id]
        return span_id

    # Timestep's own records.

    def record_model_call(self, call: ModelCall) -> None:
        """Queue one model call's usage (from ``run_agent``'s hooks)."""
        self._put(("call", call))

    def record_approval(self, event: ApprovalEvent) -> None:
        """Queue an approval request or decision."""
        self._put(("approval", event))

    # Flushing and shutdown.

    def force_flush(self) -> None:
        """Block until everything queued so far is written (at most 30 seconds)."""
        self.flush()

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Block until everything queued so far is written (or ``timeout`` seconds pass).

        Returns whether the writer caught up in time.
        """
        if self._worker is None or not self._worker.is_alive():
            return not self._queue
        done = threading.Event()
        self._queue.append(("flush", done))
        self._wake.set()
        return done.wait(timeout)

    def shutdown(self, timeout: float | None = 30.0) -> None:
        """Write what is queued, then stop the writer thread. Later events are ignored."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.shutdown)
        worker = self._worker
        if worker is None or not worker.is_alive():
            return
        self._queue.append(("stop",))
        self._wake.set()
        worker.join(timeout)

    def _put(self, event: tuple[Any, ...]) -> None:
        if self._closed:
            return
        if len(self._queue) >= self._max_queue:
            self.dropped += 1
            if self.dropped % 10_000 == 1:
                logger.warning(
                    "Timestep tracing dropped %d event(s): the database at %s is not keeping up "
                    "(queue full). Check that it is reachable.",
                    self.dropped,
                    redact_url(self.url),  # a log line never shows the database password
                )
            return
        self._queue.append(event)
        if self._worker is None:
            self._start_worker()
        elif len(self._queue) >= self._batch_size:
            self._wake.set()

    def _start_worker(self) -> None:
        with self._start_lock:
            if self._worker is not None:
                return
            self._worker = threading.Thread(
                target=self._run, name="timestep-trace-writer", daemon=True
            )
            self._worker.start()
            # Daemon threads are not waited for at exit; this flushes them first.
            atexit.register(self.shutdown, 10.0)

    # The writer thread.

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        backend = SQLStateBackend(self.url)
        try:
            while not self._drain(loop, backend):
                self._wake.wait(self._interval)
                self._wake.clear()
        finally:
            try:
                loop.run_until_complete(backend.close())
            finally:
                loop.close()

    def _drain(self, loop: asyncio.AbstractEventLoop, backend: SQLStateBackend) -> bool:
        """Write what was queued when called, in batches; return whether a stop was asked for.

        Events queued meanwhile wait for the next wake-up: chasing them would keep the writer
        busy for as long as runs go on, one small transaction after another.
        """
        pending = len(self._queue)
        while pending > 0:
            batch: list[tuple[Any, ...]] = []
            waiters: list[threading.Event] = []
            stop = False
            while pending > 0 and len(batch) < self._batch_size:
                pending -= 1
                event = self._queue.popleft()
                if event[0] == "flush":
                    waiters.append(event[1])
                elif event[0] == "stop":
                    stop = True
                else:
                    batch.append(event)
            if batch:
                self._write(loop, backend, batch)
            for waiter in waiters:
                waiter.set()
            if stop:
                return True
        return False

    def _write(
        self,
        loop: asyncio.AbstractEventLoop,
        backend: SQLStateBackend,
        batch: list[tuple[Any, ...]],
    ) -> None:
        try:
            rows = _Rows.build(batch, Redactor(self.payloads), self.prices)
            for delay in (*_RETRY_DELAYS, None):
                try:
                    loop.run_until_complete(_write_rows(backend, rows))
                    return
                except Exception:
                    # A failed batch was rolled back and its row ids are fixed, so a retry
                    # cannot write anything twice. SQLite refuses a deferred transaction
                    # whose snapshot went stale at once ("database is locked").
                    if delay is None:
                        raise
                    time.sleep(delay)
        except Exception as error:
            # Tracing must never break a run: report, drop this batch, carry on.
            self.failed_batches += 1
            # Driver errors quote URLs and statement parameters: scrubbed like stored text.
            self.last_error = Redactor().scrub(f"{type(error).__name__}: {error}")
            if self.failed_batches % _WARN_EVERY == 1:
                logger.warning(
                    "Timestep tracing could not write %d event(s) to %s: %s",
                    len(batch),
                    backend,
                    self.last_error,
                )


class _Rows:
    """One batch of queued events as rows per table (a trace's start and end merged)."""

    def __init__(self) -> None:
        self.traces: dict[str, dict[str, Any]] = {}
        self.spans: list[dict[str, Any]] = []
        self.usage: list[dict[str, Any]] = []

    @classmethod
    def build(
        cls, batch: list[tuple[Any, ...]], redactor: Redactor, prices: Mapping[str, ModelPrice]
    ) -> _Rows:
        rows = cls()
        for event in batch:
            kind = event[0]
            if kind == "trace":
                rows._add_trace(event[1], event[2], event[3], event[4], redactor)
            elif kind == "span":
                span, link, agent = event[1], event[2], event[3]
                rows.spans.append(span_row(span, redactor, parent_id=event[4]))
                if link is not None:
                    usage = span_usage_row(span, link, agent, prices)
                    if usage is not None:
                        rows.usage.append(usage)
            elif kind == "call":
                rows.usage.append(model_call_row(event[1], prices))
            elif kind == "approval":
                rows.spans.append(approval_row(event[1], redactor))
        return rows

    def _add_trace(
        self,
        trace: Trace,
        started_at: datetime | None,
        ended_at: datetime | None,
        link: TraceLink | None,
        redactor: Redactor,
    ) -> None:
        row = trace_row(
            trace,
            started_at=started_at,
            ended_at=ended_at,
            link=link or TraceLink(session_id=None, workflow_id=workflow_id()),
            redactor=redactor,
        )
        earlier = self.traces.get(trace.trace_id)
        if earlier is None:
            self.traces[trace.trace_id] = row
        else:
            for column, value in row.items():
                if earlier[column] is None or (column == "ended_at" and value is not None):
                    earlier[column] = value


async def _write_rows(backend: SQLStateBackend, rows: _Rows) -> None:
    async with backend.transaction() as conn:
        if rows.traces:
            await conn.execute(_upsert_traces(conn), list(rows.traces.values()))
        if rows.spans:
            statement = _insert(conn, spans).on_conflict_do_nothing(index_elements=["span_id"])
            await conn.execute(statement, rows.spans)
        if rows.usage:
            await conn.execute(insert(model_usage), rows.usage)


def _insert(conn: AsyncConnection, table: Table) -> Any:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def _upsert_traces(conn: AsyncConnection) -> Any:
    statement = _insert(conn, traces)
    new = statement.excluded
    # A resumed run (in any process) starts its trace again: keep the first start and what
    # was known first, take the latest end.
    kept = {
        column.name: func.coalesce(column, new[column.name])
        for column in traces.c
        if column.name not in ("trace_id", "ended_at")
    }
    return statement.on_conflict_do_update(
        index_elements=["trace_id"],
        set_={**kept, "ended_at": func.coalesce(new.ended_at, traces.c.ended_at)},
    )
