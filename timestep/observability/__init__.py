"""Observability in the Timestep database: traces, spans, usage and cost, offline.

``TIMESTEP_TRACING=db`` records every ``run_agent`` run (streamed or not, paused and resumed,
in any process) in the same database as its run state: the SDK's spans (agents, model calls,
tools, handoffs, guardrails), the exact usage and cost of each model call, and approvals. Then
ask the database what a run did and what it cost::

    result = await run_agent(agent, "clean up /tmp/x", session=TimestepSession("ticket-42"))
    flush_tracing()                                    # tests and scripts; exit flushes too
    for step in await timeline(None, "ticket-42"):
        print(step.kind, step.title, step.detail)
    print(await summarize_usage(by="model"))

The CLI: ``timestep runs show ID`` (with its timeline), ``timestep usage``, ``timestep traces
list|export`` and ``timestep gc``. See ``docs/observability.md``.

Modules: :mod:`.install` (the ``TIMESTEP_TRACING`` modes), :mod:`.processor` (the trace
processor and its writer thread), :mod:`.records` (rows), :mod:`.redaction`, :mod:`.prices`,
:mod:`.observer` (``run_agent``'s usage hooks and approvals), :mod:`.approvals`,
:mod:`.lookup`, :mod:`.timeline`, :mod:`.usage`, :mod:`.export` (OpenTelemetry JSON),
:mod:`.gc` (retention), :mod:`.cli`.
"""

from .approvals import approve, reject
from .export import export_traces, otlp_document
from .gc import GcReport, collect_garbage, parse_duration
from .install import TracingSetup, active_processor, configure_tracing, flush_tracing
from .prices import DEFAULT_PRICES, PRICES_AS_OF, ModelPrice, cost_nanousd, price_for
from .processor import TimestepTraceProcessor
from .redaction import Redactor
from .timeline import TimelineEntry, timeline
from .usage import UsageGroup, summarize_usage

__all__ = [
    "DEFAULT_PRICES",
    "PRICES_AS_OF",
    "GcReport",
    "ModelPrice",
    "Redactor",
    "TimelineEntry",
    "TimestepTraceProcessor",
    "TracingSetup",
    "UsageGroup",
    "active_processor",
    "approve",
    "collect_garbage",
    "configure_tracing",
    "cost_nanousd",
    "export_traces",
    "flush_tracing",
    "otlp_document",
    "parse_duration",
    "price_for",
    "reject",
    "summarize_usage",
    "timeline",
]
