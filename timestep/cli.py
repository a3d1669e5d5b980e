"""The ``timestep`` command.

timestep demo                      pause, save, resume in a new process (embedded SQLite)
timestep runs list [--status S]    stored runs, newest first
timestep runs show ID              one run: metadata, approvals, conversation, timeline
timestep state export SESSION --to js|python [-o FILE]   a run as the other SDK reads it
timestep state import FILE [--session ID]                store a state file of either SDK
timestep workflows list [--status S]   durable agent runs (DBOS workflows), newest first
timestep workflows show ID             one durable run: its checkpointed steps, what it waits for
timestep workflows cancel|resume ID    stop a durable run / let a worker carry it on
timestep workers                       workflow workers: last heartbeat, runs held, alive or not
timestep approve|reject WORKFLOW_ID    decide what a parked durable run waits for
timestep usage [--by day|agent|model|session]   tokens and cost from the database
timestep traces list | export ID       recorded traces; OpenTelemetry-compatible JSON
timestep gc --older-than 30d           drop old traces and completed runs (never paused ones)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import reprlib
import sys
from collections.abc import AsyncIterator, Awaitable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ._terminal import escape
from .config import load_settings, redact_url
from .errors import ConfigurationError, StateNotFoundError, StorageError, TimestepError
from .integrity import StateSigner
from .observability.cli import add_commands as add_observability_commands
from .observability.cli import render_timeline, timeline
from .state import pending_in
from .storage import StateStatus, StoredState, close_backends, get_backend

__all__ = ["main"]

# Wide enough for full run ids when output goes to a pipe or file.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the CLI; exits with 0 on success, 2 on a Timestep error."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help()
        raise SystemExit(2)
    try:
        _check_text_arguments(args)
        code = asyncio.run(_with_cleanup(args.handler(args)))
    except TimestepError as error:
        # escape(): messages quote user input (ids, URLs, paths), which may look like markup.
        Console(stderr=True, highlight=False).print(f"[red]error:[/] {escape(str(error))}")
        raise SystemExit(2) from None
    raise SystemExit(code)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="timestep", description="Durable OpenAI Agents.")
    commands = parser.add_subparsers(title="commands")

    demo = commands.add_parser("demo", help="pause for approval, save, resume in a new process")
    demo.add_argument("--url", help="database URL (default: configured or embedded SQLite)")
    demo.add_argument(
        "--offline", action="store_true", help="use the scripted model even with OPENAI_API_KEY"
    )
    demo.set_defaults(handler=_demo)

    runs = commands.add_parser("runs", help="inspect stored runs").add_subparsers(title="runs")
    listing = runs.add_parser("list", help="stored runs, newest first")
    listing.add_argument("--status", choices=[s.value for s in StateStatus])
    listing.add_argument("--agent", help="only this agent's runs")
    listing.add_argument("--session", help="only this session's runs")
    listing.add_argument("--limit", type=_positive, default=50)
    listing.add_argument("--url", help="database URL")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=_runs_list)

    show = runs.add_parser("show", help="one run in detail, by id or session id")
    show.add_argument("id", help="run id (from `timestep runs list`) or session id")
    show.add_argument("--url", help="database URL")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(handler=_runs_show)

    state = commands.add_parser(
        "state", help="move a run between Python and TypeScript"
    ).add_subparsers(title="state")
    export = state.add_parser(
        "export", help="a stored run as JSON for RunState.fromString / from_string"
    )
    export.add_argument("session", help="the run's session id")
    export.add_argument("--to", required=True, choices=["js", "python"], help="the SDK to read it")
    export.add_argument("--agent", help="the run's agent, when several share the session")
    export.add_argument("--url", help="database URL")
    export.add_argument("-o", "--output", help="write to this file instead of standard output")
    export.set_defaults(handler=_state_export)

    imported = state.add_parser("import", help="store a RunState file written by either SDK")
    imported.add_argument("file", help="a state.toString() / to_string() JSON file")
    imported.add_argument("--agent", help="the run's starting agent (default: from the state)")
    imported.add_argument("--session", help="session id (default: the file name without .json)")
    imported.add_argument("--url", help="database URL")
    imported.add_argument(
        "--overwrite", action="store_true", help="replace an unfinished run of the session"
    )
    imported.add_argument(
        "--signature", help="the export signature file (default: FILE.sig, when it exists)"
    )
    imported.add_argument(
        "--trust-unsigned",
        action="store_true",
        help="with TIMESTEP_STATE_KEY set, import content without a valid export signature "
        "(logged)",
    )
    imported.set_defaults(handler=_state_import)
    _add_workflow_commands(commands)
    add_observability_commands(commands)
    return parser


async def _with_cleanup(work: Awaitable[int]) -> int:
    try:
        return await work
    finally:
        await close_backends()


async def _demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    return await run_demo(args.url, offline=args.offline)


async def _runs_list(args: argparse.Namespace) -> int:
    backend = get_backend(args.url)
    rows = await backend.list(
        status=StateStatus(args.status) if args.status else None,
        agent_name=args.agent,
        session_id=args.session,
        limit=args.limit,
    )
    signer = StateSigner.from_settings(load_settings(backend.url))
    # Rows that fail their signature list no approvals: nothing in them can be trusted.
    trusted = {row.id: signer is None or signer.status(row) == "valid" for row in rows}
    if args.json:
        print(json.dumps([_summary(row, trusted[row.id]) for row in rows], indent=2))
        return 0
    if not rows:
        console.print(f"No stored runs in {escape(redact_url(backend.url))}.")
        return 0
    table = Table(title=f"Runs in {escape(redact_url(backend.url))}")
    for column in ("id", "agent", "session", "status", "waiting for", "ver", "sdk", "updated"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            escape(row.id),
            escape(row.agent_name),
            escape(row.session_id),
            _status(row.status),
            escape(_approvals(row)) if trusted[row.id] else "[red]signature fails[/]",
            str(row.version),
            escape(row.sdk),
            _when(row),
        )
    console.print(table)
    return 0


async def _runs_show(args: argparse.Namespace) -> int:
    backend = get_backend(args.url)
    row = await backend.get(args.id)
    if row is None:
        matches = await backend.list(session_id=args.id, limit=2)
        if len(matches) > 1:
            raise StateNotFoundError(
                f"Session {args.id!r} has runs of several agents; pass a run id from "
                "`timestep runs list --session ...` instead.",
                session_id=args.id,
            )
        row = matches[0] if matches else None
    if row is None:
        raise StateNotFoundError(
            f"No run with id or session {args.id!r} in {redact_url(backend.url)}. "
            "`timestep runs list` shows what is stored.",
            session_id=args.id,
        )
    steps = await timeline(args.url, row.id)
    signer = StateSigner.from_settings(load_settings(backend.url))
    # Whether `load()` would accept the row (None: no TIMESTEP_STATE_KEY to check with).
    verdict = signer.status(row) if signer is not None else None
    details = {
        **_summary(row, trusted=verdict in (None, "valid")),
        "signature": verdict,
        "items": _items(row),
        "timeline": [s.to_json() for s in steps],
    }
    if args.json:
        print(json.dumps(details, indent=2))
        return 0
    meta = Table(show_header=False, title=f"Run {escape(row.id)}")
    for key in ("agent", "session", "status", "current_agent", "version", "sdk", "schema"):
        meta.add_row(key, escape(str(details[key])))
    if details["signature"] is not None:
        verdict = details["signature"]
        meta.add_row("signature", verdict if verdict == "valid" else f"[red]{verdict}[/]")
    meta.add_row("created", str(details["created_at"]))
    meta.add_row("updated", str(details["updated_at"]))
    console.print(meta)
    if details["waiting_for"] is None:
        console.print(
            f"[red]Pending approvals not shown: the row's signature is {verdict}[/], so "
            "nothing in it can be trusted, and `load()` refuses to resume it."
        )
    elif details["waiting_for"]:
        approvals = Table(title="Waiting for approval")
        for column in ("tool", "arguments", "agent", "call id"):
            approvals.add_column(column)
        for pending in details["waiting_for"]:
            approvals.add_row(
                escape(_short(pending.get("tool_name"))),
                escape(_short(pending.get("arguments"))),
                escape(_short(pending.get("agent"))),
                escape(_short(pending.get("call_id"))),
            )
        console.print(approvals)
    items = Table(title="Conversation")
    items.add_column("#")
    items.add_column("kind")
    items.add_column("content")
    for number, (kind, content) in enumerate(details["items"], start=1):
        items.add_row(str(number), escape(kind), escape(content))
    console.print(items)
    render_timeline(console, steps)
    return 0


async def _state_export(args: argparse.Namespace) -> int:
    from .state_transfer import export_signature, export_state

    backend = get_backend(args.url)
    text = await export_state(backend, args.session, to=args.to, agent_name=args.agent)
    if args.output is None:
        print(text)
        return 0
    signature = export_signature(text, url=backend.url)
    written = [(args.output, text + "\n")]
    if signature is not None:
        written.append((f"{args.output}.sig", signature + "\n"))
    for path, content in written:
        try:
            await asyncio.to_thread(Path(path).write_text, content, encoding="utf-8")
        except (OSError, ValueError) as error:  # ValueError: a NUL byte in the path
            raise ConfigurationError(f"Cannot write {path!r}: {error}.") from None
    signed = f" and its signature to {args.output}.sig" if signature else ""
    Console(stderr=True, highlight=False).print(
        escape(f"Wrote the {args.to} state of session {args.session!r} to {args.output}{signed}.")
    )
    return 0


async def _state_import(args: argparse.Namespace) -> int:
    from .state_transfer import import_state

    path = Path(args.file)
    # Only a regular file: reading /dev/zero, a FIFO or a terminal would never end.
    if not await asyncio.to_thread(path.is_file):
        raise ConfigurationError(f"Cannot read {args.file!r}: it is not a regular file.")
    try:
        document = await asyncio.to_thread(path.read_text, encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigurationError(f"Cannot read {args.file!r}: {error}.") from None
    signature_path = Path(args.signature or f"{args.file}.sig")
    signature = None
    if args.signature or await asyncio.to_thread(signature_path.is_file):
        try:
            signature = await asyncio.to_thread(signature_path.read_text, encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigurationError(f"Cannot read {str(signature_path)!r}: {error}.") from None
    if args.trust_unsigned:
        # The warning import_state logs goes to the operator's terminal too.
        logging.getLogger("timestep").addHandler(logging.StreamHandler(sys.stderr))
    stored = await import_state(
        get_backend(args.url),
        document,
        agent_name=args.agent,
        session_id=args.session or path.stem,
        overwrite=args.overwrite,
        signature=signature,
        trust_unsigned=args.trust_unsigned,
    )
    console.print(
        escape(
            f"Imported the {stored.sdk} state (schema {stored.schema_version}) as agent "
            f"{stored.agent_name!r}, session {stored.session_id!r}: "
        )
        + f"{_status(stored.status)}, version {stored.version}."
    )
    if stored.portable_state is None:
        console.print(
            f"[yellow]No {stored.portable_sdk} form:[/] {escape(str(stored.portable_error))}"
        )
    return 0


def _summary(row: StoredState, trusted: bool = True) -> dict[str, Any]:
    """The row for ``--json``. What an approver decides on (``waiting_for``) comes from the
    state, never from the listing column the signature does not cover; ``None`` when the row
    is not ``trusted`` (it fails its signature check)."""
    return {
        "id": row.id,
        "agent": row.agent_name,
        "session": row.session_id,
        "status": row.status.value,
        "current_agent": row.current_agent,
        "version": row.version,
        "sdk": row.sdk,
        "schema": row.schema_version,
        "waiting_for": _pending(row) if trusted else None,
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "updated_at": row.updated_at.isoformat() if row.updated_at else None,
    }


def _items(row: StoredState) -> list[tuple[str, str]]:
    """The conversation as (kind, short text) pairs, read from the stored payload."""
    try:
        data = json.loads(row.state)
    # ValueError: not JSON, or a number too long to convert; RecursionError: nested too deep.
    except (ValueError, RecursionError):
        return [("unreadable", "the stored payload is not valid JSON")]
    if not isinstance(data, dict):
        return [("unreadable", "the stored payload is not a run state")]
    shown: list[tuple[str, str]] = []
    # Python writes snake_case keys, the JS SDK camelCase ones.
    original = data.get("original_input", data.get("originalInput"))
    if isinstance(original, str):
        shown.append(("user", original))
    items = data.get("generated_items") or data.get("generatedItems") or []
    # A payload edited outside Timestep may hold anything: show what is readable, skip the rest.
    for item in items if isinstance(items, list) else []:
        item = item if isinstance(item, dict) else {}
        raw = item.get("raw_item") or item.get("rawItem")
        kind = item.get("type")
        kind = kind if isinstance(kind, str) else "?"
        shown.append((kind.removesuffix("_item"), _item_text(raw if isinstance(raw, dict) else {})))
    return shown


def _item_text(raw: dict[str, Any]) -> str:
    if raw.get("type") == "function_call":
        return _short(f"{_short(raw.get('name'))}({_short(raw.get('arguments'))})")
    if "output" in raw:
        output = raw["output"]
        if isinstance(output, dict) and output.get("type") == "text":
            output = output.get("text")
        return _short(output)
    content = raw.get("content")
    parts = content if isinstance(content, list) else []
    texts = [_short(part.get("text", "")) for part in parts if isinstance(part, dict)]
    return " ".join(texts)[:200] or _short(raw.get("type", ""))


def _short(value: object) -> str:
    """At most 200 characters of ``value``; bounded even for deeply nested values."""
    return (value if isinstance(value, str) else _REPR.repr(value))[:200]


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 4, 200, 200
_REPR.maxlist = _REPR.maxdict = 20


def _approvals(row: StoredState) -> str:
    return ", ".join(
        f"{_short(p.get('tool_name'))}({_short(p.get('arguments'))})" for p in _pending(row)
    )


def _pending(row: StoredState) -> list[dict[str, Any]]:
    """The calls the row's state waits on, read from the state (which a signature covers),
    not from its ``interruptions`` column (which anyone with database access may edit)."""
    return pending_in(row) if row.status == StateStatus.INTERRUPTED else []


def _status(status: StateStatus) -> str:
    colour = {"interrupted": "yellow", "completed": "green"}.get(status.value, "cyan")
    return f"[{colour}]{status.value}[/]"


def _when(row: StoredState) -> str:
    return row.updated_at.strftime("%Y-%m-%d %H:%M:%S") if row.updated_at else ""


def _positive(text: str) -> int:
    value = int(text)
    # The databases' integers are 64-bit; a larger limit would fail inside the driver.
    if not 1 <= value <= _MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"must be a number from 1 to {_MAX_LIMIT}")
    return value


_MAX_LIMIT = 2**63 - 1
# Arguments naming files keep undecodable bytes (surrogate escapes), as the OS gave them.
_PATH_ARGUMENTS = frozenset({"file", "output"})


def _check_text_arguments(args: argparse.Namespace) -> None:
    """Refuse an id, name or URL that is not valid text before it reaches a database.

    Bytes that are not UTF-8 on the command line arrive as lone surrogates (Python's
    surrogateescape), which no database driver can encode.
    """
    for name, value in vars(args).items():
        if name in _PATH_ARGUMENTS or not isinstance(value, str):
            continue
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigurationError(
                f"The {name.replace('_', '-')} argument {value!r} is not valid UTF-8 text."
            ) from None


# --- Durable workflows (timestep.workflows): `workflows ...`, `approve`, `reject` -------------
# These never launch DBOS: they read and write the workflow database through a DBOS client, so
# they are safe to run next to live workers (and start none).

_WORKFLOW_STATUS_COLOURS = {
    "SUCCESS": "green",
    "PENDING": "cyan",
    "ENQUEUED": "blue",
    "DELAYED": "blue",
    "CANCELLED": "yellow",
    "ERROR": "red",
    "MAX_RECOVERY_ATTEMPTS_EXCEEDED": "red",
}


def _add_workflow_commands(commands: Any) -> None:
    workflows = commands.add_parser(
        "workflows", help="inspect and control durable agent runs (DBOS workflows)"
    ).add_subparsers(title="workflows")
    listing = workflows.add_parser("list", help="durable agent runs, newest first")
    # Checked by list_agent_workflows, so building the parser never imports DBOS.
    listing.add_argument(
        "--status",
        type=str.upper,
        help="ENQUEUED, DELAYED, PENDING, SUCCESS, ERROR, CANCELLED or "
        "MAX_RECOVERY_ATTEMPTS_EXCEEDED",
    )
    listing.add_argument("--limit", type=_positive, default=50)
    listing.add_argument("--url", help="database URL")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=_workflows_list)

    show = workflows.add_parser("show", help="one durable run: steps and pending approvals")
    show.add_argument("id", help="workflow id (from `timestep workflows list`)")
    show.add_argument("--url", help="database URL")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(handler=_workflows_show)

    cancel = workflows.add_parser("cancel", help="stop a durable run at its next step")
    cancel.add_argument("id", help="workflow id")
    cancel.add_argument("--url", help="database URL")
    cancel.set_defaults(handler=_workflows_cancel)

    resume = workflows.add_parser(
        "resume", help="enqueue a cancelled run; a launched worker carries it on"
    )
    resume.add_argument("id", help="workflow id")
    resume.add_argument(
        "--force",
        action="store_true",
        help="resume even a run its (live) worker is executing: its current step runs twice",
    )
    resume.add_argument("--url", help="database URL")
    resume.set_defaults(handler=_workflows_resume)

    workers = commands.add_parser(
        "workers", help="workflow workers on the database: heartbeats and the runs they hold"
    )
    workers.add_argument("--url", help="database URL")
    workers.add_argument("--json", action="store_true", help="machine-readable output")
    workers.set_defaults(handler=_workers_list)

    for name, verb in (("approve", "approve"), ("reject", "reject")):
        decide = commands.add_parser(
            name, help=f"{verb} the tool calls a parked durable run waits for"
        )
        decide.add_argument("workflow_id", help="the parked run's workflow id")
        decide.add_argument("--call-id", help="decide only this tool call (default: all)")
        if name == "reject":
            decide.add_argument("--message", help="what the model is told instead of the output")
        decide.add_argument("--by", help="who decides, shown in the run's timeline")
        decide.add_argument("--url", help="database URL")
        decide.set_defaults(handler=_workflow_decide, approve=name == "approve")


async def _workflows_list(args: argparse.Namespace) -> int:
    from .workflows import list_agent_workflows

    async with _workflow_client():
        runs = await list_agent_workflows(status=args.status, limit=args.limit, url=args.url)
    if args.json:
        print(json.dumps([run.to_dict() for run in runs], indent=2))
        return 0
    if not runs:
        console.print(
            "No durable agent runs" + (f" with status {args.status}." if args.status else ".")
        )
        return 0
    table = Table(title="Durable agent runs")
    for column in ("workflow id", "status", "agent", "queue", "executor", "created", "updated"):
        table.add_column(column)
    for run in runs:
        table.add_row(
            escape(run.workflow_id),
            _workflow_status(run.status),
            escape(run.agent or ""),
            escape(run.queue or ""),
            escape(run.executor_id or ""),
            _moment(run.created_at),
            _moment(run.updated_at),
        )
    console.print(table)
    return 0


async def _workflows_show(args: argparse.Namespace) -> int:
    from .workflows import show_agent_workflow

    async with _workflow_client():
        details = await show_agent_workflow(args.id, url=args.url)
    if args.json:
        print(json.dumps(details.to_dict(), indent=2))
        return 0
    run = details.workflow
    meta = Table(show_header=False, title=f"Workflow {escape(run.workflow_id)}")
    meta.add_row("status", _workflow_status(run.status))
    for key, value in (
        ("agent", run.agent),
        ("kind", run.kind),
        ("queue", run.queue),
        ("executor", run.executor_id),
        ("app version", run.app_version),
        ("created", _moment(run.created_at)),
        ("updated", _moment(run.updated_at)),
        ("error", details.error),
    ):
        if value:
            meta.add_row(key, escape(str(value)))
    console.print(meta)
    steps = Table(title="Checkpointed steps")
    for column in ("#", "step", "outcome", "ms"):
        steps.add_column(column)
    for step in details.steps:
        took = ""
        if step.started_at is not None and step.completed_at is not None:
            took = f"{(step.completed_at - step.started_at).total_seconds() * 1000:.0f}"
        summary = escape(step.summary)
        outcome = f"[red]{summary}[/]" if step.error else summary
        steps.add_row(str(step.step_id), escape(step.name), outcome, took)
    console.print(steps)
    if details.pending_approvals:
        waiting = Table(title="Waiting for approval (timestep approve|reject ID)")
        for column in ("tool", "arguments", "agent", "call id"):
            waiting.add_column(column)
        for pending in details.pending_approvals:
            waiting.add_row(
                *(escape(str(value)) for value in (pending.tool_name, pending.arguments)),
                escape(str(pending.agent)),
                escape(pending.call_id),
            )
        console.print(waiting)
    return 0


async def _workflows_cancel(args: argparse.Namespace) -> int:
    from .workflows import cancel_agent_workflow

    async with _workflow_client():
        status = await cancel_agent_workflow(args.id, url=args.url)
    if status == "CANCELLED":
        console.print(
            f"Cancelled workflow {escape(args.id)}; `timestep workflows resume` carries it on."
        )
    else:
        console.print(
            f"Workflow {escape(args.id)} had already finished: {_workflow_status(status)}."
        )
    return 0


async def _workflows_resume(args: argparse.Namespace) -> int:
    from .workflows import resume_agent_workflow

    async with _workflow_client():
        handle = await resume_agent_workflow(args.id, url=args.url, force=args.force)
        status = await handle.get_status()
    if status in ("SUCCESS", "ERROR"):
        console.print(
            f"Workflow {escape(args.id)} had already finished: {_workflow_status(status)}."
        )
    else:
        console.print(
            f"Resumed workflow {escape(args.id)}: {_workflow_status(status)}; a launched worker "
            "on this database carries it on from its last checkpointed step."
        )
    return 0


async def _workers_list(args: argparse.Namespace) -> int:
    from .workflows import list_workers

    async with _workflow_client():
        found = await list_workers(url=args.url)
    if args.json:
        print(json.dumps([worker.to_dict() for worker in found], indent=2))
        return 0
    if not found:
        console.print("No workflow workers have launched on this database.")
        return 0
    table = Table(title="Workflow workers")
    for column in ("executor", "state", "host", "pid", "started", "last heartbeat", "runs"):
        table.add_column(column)
    for worker in found:
        if worker.alive:
            state = "[green]alive[/]"
        elif worker.adopted_by:
            state = f"[red]dead[/], adopted by {escape(worker.adopted_by)}"
        else:
            state = "[red]dead[/], runs not yet adopted" if worker.runs else "[red]dead[/]"
        table.add_row(
            escape(worker.executor_id),
            state,
            escape(worker.host),
            str(worker.pid),
            _moment(worker.started_at),
            f"{_moment(worker.last_heartbeat)} ({worker.silent_for:.0f} s ago)",
            str(worker.runs),
        )
    console.print(table)
    return 0


async def _workflow_decide(args: argparse.Namespace) -> int:
    from .workflows import approve_workflow, pending_approvals

    async with _workflow_client():
        tools = {
            p.call_id: p.tool_name for p in await pending_approvals(args.workflow_id, url=args.url)
        }
        decided = await approve_workflow(
            args.workflow_id,
            approve=args.approve,
            call_id=args.call_id,
            rejection_message=getattr(args, "message", None),
            by=args.by,
            url=args.url,
        )
    verb = "Approved" if args.approve else "Rejected"
    calls = ", ".join(f"{tools.get(call_id, '?')} ({call_id})" for call_id in decided)
    console.print(
        escape(f"{verb} {calls} in workflow {args.workflow_id}; its worker resumes the run.")
    )
    return 0


@contextlib.asynccontextmanager
async def _workflow_client() -> AsyncIterator[None]:
    from sqlalchemy.exc import SQLAlchemyError

    from .workflows import shutdown_dbos

    try:
        yield
    except SQLAlchemyError as error:
        # DBOS reads its own tables directly: on a database no worker has launched on, they do
        # not exist yet (or the schema is not DBOS's).
        detail = str(getattr(error, "orig", None) or error).splitlines()[0]
        raise StorageError(
            f"Cannot read durable workflows from the database ({type(error).__name__}: "
            f"{detail}). A worker creates the workflow tables when it launches "
            "(ensure_dbos_launched()); check that --url (or TIMESTEP_DB_URL) names that database."
        ) from None
    finally:
        # Closes the DBOS client's connection pool (the CLI never launches DBOS itself).
        shutdown_dbos()


def _workflow_status(status: str) -> str:
    return f"[{_WORKFLOW_STATUS_COLOURS.get(status, 'cyan')}]{status}[/]"


def _moment(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment is not None else ""


if __name__ == "__main__":
    main(sys.argv[1:])
