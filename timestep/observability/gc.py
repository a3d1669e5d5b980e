"""Retention: ``timestep gc --older-than 30d`` deletes old traces and finished runs.

Deleted: traces, spans and model usage older than the cutoff, and stored run states whose
status is ``completed`` and that were last updated before it. Never deleted: interrupted or
running run states, nor the traces of those runs (their timeline is still needed).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ..errors import ConfigurationError
from ..storage import StateStatus
from ..storage.schema import model_usage, run_states, spans, traces
from .lookup import sql_backend

__all__ = ["GcReport", "collect_garbage", "parse_duration"]

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class GcReport:
    """What a collection deleted (or, with ``dry_run``, would delete)."""

    cutoff: datetime
    traces: int
    spans: int
    model_usage: int
    run_states: int
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        """The counts, with the cutoff as an ISO timestamp."""
        return {**self.__dict__, "cutoff": self.cutoff.isoformat()}


_MAX_AGE = timedelta(days=365_000)


def parse_duration(text: str) -> timedelta:
    """``"30d"``, ``"12h"``, ``"90m"``, ``"2w"`` or ``"45s"`` as a ``timedelta``.

    Raises:
        ConfigurationError: anything else; the message shows the format.
    """
    match = _DURATION.match(text) if isinstance(text, str) else None
    try:
        age = timedelta(**{_UNITS[match.group(2).lower()]: int(match.group(1))}) if match else None
    except (OverflowError, ValueError):
        age = None
    # Ages beyond ~1000 years would overflow the cutoff date.
    if age is None or not timedelta(0) < age <= _MAX_AGE:
        raise ConfigurationError(
            f"{text!r} is not an age: use a positive whole number and a unit, s, m, h, d or w "
            "(e.g. --older-than 30d, 12h or 90m), at most 1000 years."
        )
    return age


async def collect_garbage(
    url: str | None = None,
    *,
    older_than: timedelta | str,
    dry_run: bool = False,
    now: datetime | None = None,
) -> GcReport:
    """Delete what is older than ``older_than`` (a ``timedelta`` or ``"30d"``) in one
    transaction; with ``dry_run`` only count it."""
    age = parse_duration(older_than) if isinstance(older_than, str) else older_than
    if age <= timedelta(0):
        raise ConfigurationError(f"older_than must be a positive age, not {age}.")
    cutoff = (now or datetime.now(UTC)) - age
    backend = sql_backend(url)
    async with backend.transaction() as conn:
        kept = await _traces_of_unfinished_runs(conn)
        conditions = {
            spans: func.coalesce(spans.c.ended_at, spans.c.started_at) < cutoff,
            model_usage: model_usage.c.ended_at < cutoff,
            traces: func.coalesce(traces.c.ended_at, traces.c.started_at) < cutoff,
        }
        counts: dict[str, int] = {}
        for table, old in conditions.items():
            where = and_(old, _not_kept(table, kept)) if kept else old
            counts[table.name] = await _remove(conn, table, where, dry_run)
        finished = and_(
            run_states.c.status == StateStatus.COMPLETED.value, run_states.c.updated_at < cutoff
        )
        counts[run_states.name] = await _remove(conn, run_states, finished, dry_run)
    return GcReport(
        cutoff=cutoff,
        traces=counts[traces.name],
        spans=counts[spans.name],
        model_usage=counts[model_usage.name],
        run_states=counts[run_states.name],
        dry_run=dry_run,
    )


def _not_kept(table: Any, kept: list[str]) -> Any:
    return or_(table.c.trace_id.is_(None), not_(table.c.trace_id.in_(kept)))


async def _remove(conn: AsyncConnection, table: Any, where: Any, dry_run: bool) -> int:
    if dry_run:
        return int(
            (await conn.execute(select(func.count()).select_from(table).where(where))).one()[0]
        )
    return int((await conn.execute(delete(table).where(where))).rowcount or 0)


async def _traces_of_unfinished_runs(conn: AsyncConnection) -> list[str]:
    """Trace ids of interrupted and running runs: the one in each saved state, and every
    trace of their sessions."""
    unfinished = (
        await conn.execute(
            select(run_states.c.session_id, run_states.c.state).where(
                run_states.c.status != StateStatus.COMPLETED.value
            )
        )
    ).all()
    kept: set[str] = set()
    for _session, state in unfinished:
        try:
            trace = json.loads(state).get("trace") or {}
        except (TypeError, ValueError, AttributeError):
            continue
        if isinstance(trace, dict) and isinstance(trace.get("id"), str):
            kept.add(trace["id"])
    sessions = {session for session, _state in unfinished}
    if sessions:
        found = await conn.execute(
            select(traces.c.trace_id).where(
                or_(traces.c.session_id.in_(sessions), traces.c.workflow_id.in_(sessions))
            )
        )
        kept.update(row[0] for row in found)
    return sorted(kept)
