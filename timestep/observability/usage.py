"""Tokens and cost, summed by day, agent, model or session (``timestep usage``).

Example::

    for group in await summarize_usage(by="model", since=timedelta(days=7)):
        print(group.key, group.total_tokens, group.cost_usd, group.unpriced_calls)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, get_args

from sqlalchemy import Integer, case, cast, func, select

from ..errors import ConfigurationError
from ..storage.schema import model_usage
from .lookup import sql_backend
from .prices import nanos_to_usd

__all__ = ["GROUPINGS", "Grouping", "UsageGroup", "summarize_usage"]

Grouping = Literal["day", "agent", "model", "session"]
GROUPINGS: tuple[Grouping, ...] = get_args(Grouping)

_TOKENS = (
    "requests",
    "input_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "total_tokens",
)


@dataclass(frozen=True)
class UsageGroup:
    """Usage of the model calls sharing one ``key`` (a day ``YYYY-MM-DD``, an agent, ...).

    ``cost_usd`` sums the calls whose model has a price (``None`` when none has);
    ``unpriced_calls`` counts the others, so a partial sum is never mistaken for a total.
    """

    key: str | None
    calls: int
    requests: int
    input_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int
    total_tokens: int
    cost_usd: Decimal | None
    unpriced_calls: int

    def to_json(self) -> dict[str, Any]:
        """The group with the cost as a decimal string (exact) or ``None``."""
        values = dict(self.__dict__)
        values["cost_usd"] = None if self.cost_usd is None else str(self.cost_usd)
        return values


async def summarize_usage(
    url: str | None = None,
    *,
    by: Grouping = "day",
    since: datetime | timedelta | None = None,
    agent: str | None = None,
    model: str | None = None,
    session: str | None = None,
    workflow: str | None = None,
) -> list[UsageGroup]:
    """Model usage grouped ``by`` day (UTC), agent, model or session.

    ``since`` is a moment or an age (``timedelta(days=7)``: the last week). Days come oldest
    first; other groupings most expensive first, then by tokens.

    Raises:
        ConfigurationError: ``by`` is not one of :data:`GROUPINGS`.
    """
    if by not in GROUPINGS:
        raise ConfigurationError(
            f"Usage can be grouped by {', '.join(GROUPINGS)}, not {by!r} (e.g. --by model)."
        )
    backend = sql_backend(url)
    async with backend.transaction() as conn:
        key = _key(by, conn.dialect.name)
        cost = func.sum(model_usage.c.cost_nanousd)
        unpriced = func.sum(cast(case((model_usage.c.cost_nanousd.is_(None), 1), else_=0), Integer))
        query = select(
            key.label("key"),
            func.count().label("calls"),
            *(func.sum(model_usage.c[name]).label(name) for name in _TOKENS),
            cost.label("cost"),
            unpriced.label("unpriced"),
        ).group_by(key)
        if since is not None:
            moment = datetime.now(UTC) - since if isinstance(since, timedelta) else since
            query = query.where(model_usage.c.ended_at >= moment)
        for column, value in (
            ("agent_name", agent),
            ("model", model),
            ("session_id", session),
            ("workflow_id", workflow),
        ):
            if value is not None:
                query = query.where(model_usage.c[column] == value)
        rows = (await conn.execute(query)).all()
    groups = [
        UsageGroup(
            key=row.key,
            calls=int(row.calls),
            **{name: int(getattr(row, name) or 0) for name in _TOKENS},
            cost_usd=nanos_to_usd(None if row.cost is None else int(row.cost)),
            unpriced_calls=int(row.unpriced or 0),
        )
        for row in rows
    ]
    if by == "day":
        return sorted(groups, key=lambda g: g.key or "")
    return sorted(groups, key=lambda g: (-(g.cost_usd or 0), -g.total_tokens, g.key or ""))


def _key(by: Grouping, dialect: str) -> Any:
    if by == "day":
        if dialect == "postgresql":
            return func.to_char(func.timezone("UTC", model_usage.c.ended_at), "YYYY-MM-DD")
        # SQLite stores UTC timestamps as text: the day is its first ten characters.
        return func.substr(model_usage.c.ended_at, 1, 10)
    return model_usage.c[{"agent": "agent_name", "model": "model", "session": "session_id"}[by]]
