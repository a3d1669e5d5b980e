"""The ``timestep`` command.

timestep demo                      pause, save, resume in a new process (embedded SQLite)
timestep runs list [--status S]    stored runs, newest first
timestep runs show ID              one run: metadata, pending approvals, conversation
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from .config import redact_url
from .errors import StateNotFoundError, TimestepError
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
        code = asyncio.run(_with_cleanup(args.handler(args)))
    except TimestepError as error:
        Console(stderr=True, highlight=False).print(f"[red]error:[/] {error}")
        raise SystemExit(2) from None
    raise SystemExit(code)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="timestep", description="Durable OpenAI Agents.")
    commands = parser.add_subparsers(title="commands")

    demo = commands.add_parser("demo", help="pause for approval, save, resume in a new process")
    demo.add_argument("--url", help="database URL (default: configured or embedded SQLite)")
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
    return parser


async def _with_cleanup(work: Awaitable[int]) -> int:
    try:
        return await work
    finally:
        await close_backends()


async def _demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    return await run_demo(args.url)


async def _runs_list(args: argparse.Namespace) -> int:
    backend = get_backend(args.url)
    rows = await backend.list(
        status=StateStatus(args.status) if args.status else None,
        agent_name=args.agent,
        session_id=args.session,
        limit=args.limit,
    )
    if args.json:
        print(json.dumps([_summary(row) for row in rows], indent=2))
        return 0
    if not rows:
        console.print(f"No stored runs in {redact_url(backend.url)}.")
        return 0
    table = Table(title=f"Runs in {redact_url(backend.url)}")
    for column in ("id", "agent", "session", "status", "waiting for", "ver", "sdk", "updated"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.id,
            row.agent_name,
            row.session_id,
            _status(row.status),
            _approvals(row),
            str(row.version),
            row.sdk,
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
    details = {**_summary(row), "items": _items(row)}
    if args.json:
        print(json.dumps(details, indent=2))
        return 0
    meta = Table(show_header=False, title=f"Run {row.id}")
    for key in ("agent", "session", "status", "current_agent", "version", "sdk", "schema"):
        meta.add_row(key, str(details[key]))
    meta.add_row("created", str(details["created_at"]))
    meta.add_row("updated", str(details["updated_at"]))
    console.print(meta)
    if row.interruptions:
        approvals = Table(title="Waiting for approval")
        for column in ("tool", "arguments", "agent", "call id"):
            approvals.add_column(column)
        for pending in row.interruptions:
            approvals.add_row(
                str(pending.get("tool_name")),
                str(pending.get("arguments")),
                str(pending.get("agent")),
                str(pending.get("call_id")),
            )
        console.print(approvals)
    items = Table(title="Conversation")
    items.add_column("#")
    items.add_column("kind")
    items.add_column("content")
    for number, (kind, content) in enumerate(details["items"], start=1):
        items.add_row(str(number), kind, content)
    console.print(items)
    return 0


def _summary(row: StoredState) -> dict[str, Any]:
    return {
        "id": row.id,
        "agent": row.agent_name,
        "session": row.session_id,
        "status": row.status.value,
        "current_agent": row.current_agent,
        "version": row.version,
        "sdk": row.sdk,
        "schema": row.schema_version,
        "waiting_for": row.interruptions,
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "updated_at": row.updated_at.isoformat() if row.updated_at else None,
    }


def _items(row: StoredState) -> list[tuple[str, str]]:
    """The conversation as (kind, short text) pairs, read from the stored payload."""
    try:
        data = json.loads(row.state)
    except json.JSONDecodeError:
        return [("unreadable", "the stored payload is not valid JSON")]
    if not isinstance(data, dict):
        return [("unreadable", "the stored payload is not a run state")]
    shown: list[tuple[str, str]] = []
    original = data.get("original_input")
    if isinstance(original, str):
        shown.append(("user", original))
    for item in data.get("generated_items") or []:
        raw = item.get("raw_item") or {} if isinstance(item, dict) else {}
        kind = str(item.get("type", "?")) if isinstance(item, dict) else "?"
        shown.append((kind.removesuffix("_item"), _item_text(raw)))
    return shown


def _item_text(raw: dict[str, Any]) -> str:
    if raw.get("type") == "function_call":
        return f"{raw.get('name')}({raw.get('arguments')})"
    if "output" in raw:
        return str(raw["output"])[:200]
    texts = [part.get("text", "") for part in raw.get("content") or [] if isinstance(part, dict)]
    return " ".join(texts)[:200] or str(raw.get("type", ""))


def _approvals(row: StoredState) -> str:
    return ", ".join(f"{p.get('tool_name')}({p.get('arguments')})" for p in row.interruptions)


def _status(status: StateStatus) -> str:
    colour = {"interrupted": "yellow", "completed": "green"}.get(status.value, "cyan")
    return f"[{colour}]{status.value}[/]"


def _when(row: StoredState) -> str:
    return row.updated_at.strftime("%Y-%m-%d %H:%M:%S") if row.updated_at else ""


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be a positive number")
    return value


if __name__ == "__main__":
    main(sys.argv[1:])
