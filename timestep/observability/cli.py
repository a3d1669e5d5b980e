"""The observability commands of ``timestep``, added to its parser by :func:`add_commands`.

timestep usage [--by day|agent|model|session] [--since 7d]   tokens and cost
timestep traces list [--session S]                           recorded traces
timestep traces export ID [-o FILE]                          OpenTelemetry JSON
timestep gc --older-than 30d [--dry-run]                     retention

``runs show`` gains a run's timeline through :func:`timeline` and :func:`render_timeline`.
Handlers follow ``timestep.cli``: ``async handler(args) -> exit code``; a
:class:`~timestep.TimestepError` they raise is reported by the caller (exit code 2).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from .._terminal import escape
from ..config import redact_url
from ..storage.schema import model_usage, spans, traces
from .export import export_traces
from .gc import collect_garbage, parse_duration
from .lookup import sql_backend, utc
from .prices import NANOS_PER_USD, PRICES_AS_OF
from .timeline import TimelineEntry, format_cost, timeline
from .usage import GROUPINGS, UsageGroup, summarize_usage

__all__ = [
    "TimelineEntry",
    "TraceSummary",
    "add_commands",
    "gc_command",
    "list_traces",
    "render_timeline",
    "timeline",
    "traces_export_command",
    "traces_list_command",
    "usage_command",
]


def add_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``usage``, ``traces list|export`` and ``gc`` to the ``timestep`` parser."""
    usage = commands.add_parser("usage", help="tokens and cost by day, agent, model or session")
    usage.add_argument("--by", choices=GROUPINGS, default="day", help="grouping (default: day)")
    usage.add_argument("--since", metavar="AGE", help="only the last AGE, e.g. 7d, 12h, 90m")
    usage.add_argument("--agent", help="only this agent's model calls")
    usage.add_argument("--model", help="only this model's calls")
    usage.add_argument("--session", help="only this session's calls")
    usage.add_argument("--workflow", help="only this durable workflow's calls")
    usage.add_argument("--url", help="database URL")
    usage.add_argument("--json", action="store_true", help="machine-readable output")
    usage.set_defaults(handler=usage_command)

    trace_commands = commands.add_parser("traces", help="recorded traces").add_subparsers(
        title="traces"
    )
    listing = trace_commands.add_parser("list", help="recorded traces, newest first")
    listing.add_argument("--session", help="only this session's traces")
    listing.add_argument("--limit", type=_positive, default=50)
    listing.add_argument("--url", help="database URL")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=traces_list_command)
    export = trace_commands.add_parser(
        "export", help="a trace, run or session as OpenTelemetry (OTLP) JSON"
    )
    export.add_argument("id", help="trace id, run id or session id")
    export.add_argument("-o", "--output", help="write to this file instead of stdout")
    export.add_argument("--url", help="database URL")
    export.set_defaults(handler=traces_export_command)

    gc = commands.add_parser("gc", help="delete old traces, usage and completed runs")
    gc.add_argument(
        "--older-than", required=True, metavar="AGE", help="age cutoff, e.g. 30d, 12h or 90m"
    )
    gc.add_argument("--dry-run", action="store_true", help="count, delete nothing")
    gc.add_argument("--url", help="database URL")
    gc.add_argument("--json", action="store_true", help="machine-readable output")
    gc.set_defaults(handler=gc_command)


async def usage_command(args: argparse.Namespace) -> int:
    """``timestep usage``: a table (or ``--json``) of tokens and cost per group."""
    since = parse_duration(args.since) if args.since else None
    groups = await summarize_usage(
        args.url,
        by=args.by,
        since=since,
        agent=args.agent,
        model=args.model,
        session=args.session,
        workflow=args.workflow,
    )
    total = _total(groups)
    if args.json:
        print(
            json.dumps(
                {
                    "by": args.by,
                    "groups": [g.to_json() for g in groups],
                    "total": total.to_json(),
                    "prices_as_of": PRICES_AS_OF,
                },
                indent=2,
            )
        )
        return 0
    console = _console()
    url = escape(redact_url(sql_backend(args.url).url))
    if not groups:
        console.print(
            f"No model usage recorded in {url}. Usage is recorded with TIMESTEP_TRACING=db."
        )
        return 0
    table = Table(title=f"Model usage by {args.by} in {url}")
    table.add_column(args.by)
    for column in ("calls", "input", "cached", "output", "reasoning", "total tokens", "cost"):
        table.add_column(column, justify="right")
    for group in [*groups, total]:
        table.add_row(
            "TOTAL" if group is total else escape(group.key or "(none)"),
            f"{group.calls:,}",
            f"{group.input_tokens:,}",
            f"{group.cached_tokens:,}",
            f"{group.output_tokens:,}",
            f"{group.reasoning_tokens:,}",
            f"{group.total_tokens:,}",
            _cost(group),
            end_section=group is groups[-1],
        )
    console.print(table)
    if total.unpriced_calls:
        console.print(
            f"? = {total.unpriced_calls} call(s) of models without a price; add them under "
            "[prices] in timestep.toml (USD per 1M tokens).",
            markup=False,
        )
    return 0


async def traces_list_command(args: argparse.Namespace) -> int:
    """``timestep traces list``: recorded traces with their span count, tokens and cost."""
    found = await list_traces(args.url, session=args.session, limit=args.limit)
    if args.json:
        print(json.dumps([t.to_json() for t in found], indent=2))
        return 0
    console = _console()
    if not found:
        console.print(
            f"No traces recorded in {escape(redact_url(sql_backend(args.url).url))}. "
            "Set TIMESTEP_TRACING=db to record them."
        )
        return 0
    table = Table(title="Traces")
    for column in ("trace", "started", "agent", "session", "workflow", "spans", "calls", "tokens"):
        table.add_column(column)
    table.add_column("cost", justify="right")
    for item in found:
        table.add_row(
            escape(item.trace_id),
            item.started_at.strftime("%Y-%m-%d %H:%M:%S") if item.started_at else "",
            escape(item.agent_name or ""),
            escape(item.session_id or ""),
            escape(item.workflow_id or ""),
            str(item.spans),
            str(item.model_calls),
            f"{item.total_tokens:,}",
            format_cost(item.cost_nanousd)
            + ("+?" if item.unpriced_calls and item.cost_nanousd else ""),
        )
    console.print(table)
    return 0


async def traces_export_command(args: argparse.Namespace) -> int:
    """``timestep traces export ID``: OTLP JSON to stdout or ``--output``."""
    document = await export_traces(args.url, args.id)
    text = json.dumps(document, indent=2)
    if args.output:
        await asyncio.to_thread(Path(args.output).write_text, text + "\n", encoding="utf-8")
        count = len(document["resourceSpans"][0]["scopeSpans"][0]["spans"])
        _console().print(f"Wrote {count} spans of {args.id} to {args.output}.", markup=False)
    else:
        print(text)
    return 0


async def gc_command(args: argparse.Namespace) -> int:
    """``timestep gc --older-than AGE``: delete (or with ``--dry-run`` count) old records."""
    report = await collect_garbage(
        args.url, older_than=parse_duration(args.older_than), dry_run=args.dry_run
    )
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
        return 0
    verb = "Would delete" if report.dry_run else "Deleted"
    _console().print(
        f"{verb} {report.traces} trace(s), {report.spans} span(s), {report.model_usage} "
        f"model call record(s) and {report.run_states} completed run(s) older than "
        f"{report.cutoff:%Y-%m-%d %H:%M:%S} UTC. Interrupted and running runs are kept."
    )
    return 0


def render_timeline(
    console: Console, entries: Sequence[TimelineEntry], *, title: str = "Timeline"
) -> None:
    """Print a run's timeline as a table (``timestep runs show``)."""
    if not entries:
        console.print(
            "No timeline: nothing was recorded for this run (set TIMESTEP_TRACING=db to record "
            "model calls, tool calls, approvals, handoffs and guardrails)."
        )
        return
    table = Table(title=title)
    for column in ("time (UTC)", "kind", "agent", "what", "details"):
        table.add_column(column)
    table.add_column("ms", justify="right")
    styles = {"approval": "yellow", "error": "red", "guardrail": "magenta", "model": "cyan"}
    for entry in entries:
        style = styles.get(entry.kind)
        if entry.kind == "guardrail" and not entry.data.get("triggered"):
            style = None
        table.add_row(
            entry.at.strftime("%H:%M:%S.%f")[:-3] if entry.at else "",
            entry.kind,
            escape(entry.agent or ""),
            escape(entry.title),
            escape(entry.detail or ""),
            "" if entry.duration_ms is None else f"{entry.duration_ms:,.1f}",
            style=style,
        )
    console.print(table)


@dataclass(frozen=True)
class TraceSummary:
    """One recorded trace with its span count and model usage totals."""

    trace_id: str
    started_at: datetime | None
    workflow_name: str | None
    agent_name: str | None
    session_id: str | None
    workflow_id: str | None
    spans: int
    model_calls: int
    total_tokens: int
    cost_nanousd: int | None
    unpriced_calls: int

    def to_json(self) -> dict[str, Any]:
        """JSON-ready: ISO time, cost in dollars as a decimal string."""
        values = dict(self.__dict__)
        values["started_at"] = self.started_at.isoformat() if self.started_at else None
        cost = values.pop("cost_nanousd")
        values["cost_usd"] = None if cost is None else str(Decimal(cost) / NANOS_PER_USD)
        return values


async def list_traces(
    url: str | None = None, *, session: str | None = None, limit: int = 50
) -> list[TraceSummary]:
    """Recorded traces, newest first, optionally of one session (or workflow)."""
    backend = sql_backend(url)
    async with backend.transaction() as conn:
        query = select(traces).order_by(traces.c.started_at.desc()).limit(limit)
        if session is not None:
            query = query.where(
                (traces.c.session_id == session) | (traces.c.workflow_id == session)
            )
        rows = [dict(row._mapping) for row in await conn.execute(query)]
        ids = [row["trace_id"] for row in rows]
        span_counts: dict[str, int] = dict(
            (
                await conn.execute(
                    select(spans.c.trace_id, func.count())
                    .where(spans.c.trace_id.in_(ids))
                    .group_by(spans.c.trace_id)
                )
            ).all()
        )
        usage = {
            row[0]: row[1:]
            for row in await conn.execute(
                select(
                    model_usage.c.trace_id,
                    func.count(),
                    func.sum(model_usage.c.total_tokens),
                    func.sum(model_usage.c.cost_nanousd),
                    func.count() - func.count(model_usage.c.cost_nanousd),
                )
                .where(model_usage.c.trace_id.in_(ids))
                .group_by(model_usage.c.trace_id)
            )
        }
    summaries = []
    for row in rows:
        calls, tokens, cost, unpriced = usage.get(row["trace_id"], (0, 0, None, 0))
        summaries.append(
            TraceSummary(
                trace_id=row["trace_id"],
                started_at=utc(row["started_at"]),
                workflow_name=row["workflow_name"],
                agent_name=row["agent_name"],
                session_id=row["session_id"],
                workflow_id=row["workflow_id"],
                spans=int(span_counts.get(row["trace_id"], 0)),
                model_calls=int(calls),
                total_tokens=int(tokens or 0),
                cost_nanousd=None if cost is None else int(cost),
                unpriced_calls=int(unpriced or 0),
            )
        )
    return summaries


def _total(groups: Sequence[UsageGroup]) -> UsageGroup:
    costs = [g.cost_usd for g in groups if g.cost_usd is not None]
    return UsageGroup(
        key=None,
        calls=sum(g.calls for g in groups),
        requests=sum(g.requests for g in groups),
        input_tokens=sum(g.input_tokens for g in groups),
        cached_tokens=sum(g.cached_tokens for g in groups),
        cache_write_tokens=sum(g.cache_write_tokens for g in groups),
        output_tokens=sum(g.output_tokens for g in groups),
        reasoning_tokens=sum(g.reasoning_tokens for g in groups),
        total_tokens=sum(g.total_tokens for g in groups),
        cost_usd=sum(costs, Decimal(0)) if costs else None,
        unpriced_calls=sum(g.unpriced_calls for g in groups),
    )


def _cost(group: UsageGroup) -> str:
    if group.cost_usd is None:
        return "?"
    shown = f"${group.cost_usd:f}"
    return f"{shown} + ?" if group.unpriced_calls else shown


def _console() -> Console:
    # Made per command so output goes to whatever sys.stdout is now (tests capture it).
    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def _positive(text: str) -> int:
    value = int(text)
    # The databases' integers are 64-bit; a larger limit would fail inside the driver.
    if not 1 <= value <= 2**63 - 1:
        raise argparse.ArgumentTypeError("must be a positive number below 2**63")
    return value
