"""Conversation history on the Timestep database: the SDK's ``Session`` protocol.

The same database and connection pool as the run-state store (embedded SQLite or PostgreSQL),
so one URL holds both the paused runs and their conversations. Usable wherever the SDK takes
a session::

    session = TimestepSession("ticket-42")
    result = await run_agent(agent, "clean up /tmp/x", session=session)

A paused run resumed with the same session continues the same history: items already stored
are not stored again. ``add_items(items, idempotency_key=...)`` appends at most once per key,
which is how a durable run's append survives a crash between its write and its checkpoint.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from agents import TResponseInputItem
from agents.memory import SessionSettings
from agents.memory.session_settings import resolve_session_limit
from sqlalchemy import delete, func, insert, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .config import load_settings, redact_url
from .errors import ConfigurationError
from .state import check_session_id
from .storage import SQLStateBackend, backend_factory, get_backend
from .storage.schema import session_items, sessions

__all__ = ["TimestepSession"]

logger = logging.getLogger("timestep")


class TimestepSession:
    """A conversation history stored in the Timestep database.

    Args:
        session_id: Which conversation; generated when omitted (see :attr:`session_id`).
        url: Database URL; defaults to the configured one (embedded SQLite unless set).
        session_settings: The SDK's settings, e.g. ``SessionSettings(limit=50)`` to send only
            the latest 50 items to the model.
    """

    session_settings: SessionSettings | None

    def __init__(
        self,
        session_id: str | None = None,
        *,
        url: str | None = None,
        session_settings: SessionSettings | None = None,
    ) -> None:
        self.session_id = check_session_id(uuid.uuid4().hex if session_id is None else session_id)
        self.url = load_settings(url).db_url
        if backend_factory(self.url) is not SQLStateBackend:
            raise ConfigurationError(
                f"TimestepSession stores history in PostgreSQL or SQLite; {redact_url(self.url)!r} "
                "is served by a plugin backend. Use a postgresql:// or sqlite:/// URL for sessions."
            )
        self.session_settings = session_settings

    def __repr__(self) -> str:
        return f"TimestepSession({self.session_id!r})"

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """The history, oldest first; with a limit, only the latest ``limit`` items."""
        limit = resolve_session_limit(limit, self.session_settings)
        query = select(session_items.c.id, session_items.c.item).where(
            session_items.c.session_id == self.session_id
        )
        if limit is not None:
            query = query.order_by(session_items.c.id.desc()).limit(max(limit, 0))
        else:
            query = query.order_by(session_items.c.id)
        async with self._backend().transaction() as conn:
            rows = list((await conn.execute(query)).all())
        if limit is not None:
            rows.reverse()
        return [item for row_id, text in rows if (item := self._decode(row_id, text)) is not None]

    async def add_items(
        self, items: list[TResponseInputItem], *, idempotency_key: str | None = None
    ) -> None:
        """Append ``items`` in one transaction.

        With an ``idempotency_key``, the append happens at most once per session: a call with
        a key this session already stored items under stores nothing (the first call's items
        stand). Retry an append with the same key after a crash or a lost connection::

            await session.add_items(items, idempotency_key=f"order-7:reply-{turn}")

        Durable runs key their append by workflow id and step, so a replayed step writes
        nothing twice.
        """
        if idempotency_key is not None and (
            not isinstance(idempotency_key, str) or not idempotency_key
        ):
            raise ConfigurationError(
                f"idempotency_key must be a non-empty string or None, not {idempotency_key!r}."
            )
        if not items:
            return
        now = datetime.now(UTC)
        async with self._backend().transaction() as conn:
            # The session row first: its lock queues this session's writers, so the check
            # below sees an append with the same key that committed meanwhile.
            await self._touch(conn, now)
            if idempotency_key is not None and await self._stored(conn, idempotency_key):
                return
            await conn.execute(
                insert(session_items),
                [
                    {
                        "session_id": self.session_id,
                        "item": json.dumps(item),
                        "created_at": now,
                        "append_key": idempotency_key,
                        "append_position": None if idempotency_key is None else position,
                    }
                    for position, item in enumerate(items)
                ],
            )

    async def pop_item(self) -> TResponseInputItem | None:
        """Remove and return the newest item (``None`` when the history is empty)."""
        newest = (
            select(session_items.c.id)
            .where(session_items.c.session_id == self.session_id)
            .order_by(session_items.c.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        statement = (
            delete(session_items)
            .where(session_items.c.id == newest)
            .returning(session_items.c.id, session_items.c.item)
        )
        async with self._backend().transaction() as conn:
            row = (await conn.execute(statement)).first()
        return None if row is None else self._decode(row.id, row.item)

    async def clear_session(self) -> None:
        """Delete the whole history of this session."""
        async with self._backend().transaction() as conn:
            await conn.execute(
                delete(session_items).where(session_items.c.session_id == self.session_id)
            )
            await conn.execute(delete(sessions).where(sessions.c.session_id == self.session_id))

    async def count(self) -> int:
        """How many items the history holds."""
        query = select(func.count()).where(session_items.c.session_id == self.session_id)
        async with self._backend().transaction() as conn:
            return int((await conn.execute(query)).scalar_one())

    def _backend(self) -> SQLStateBackend:
        backend = get_backend(self.url)
        assert isinstance(backend, SQLStateBackend)
        return backend

    async def _touch(self, conn: Any, now: datetime) -> None:
        # One upsert, not "update, else insert": two first writers of a new session would both
        # find no row, and the second insert would fail. On PostgreSQL the row lock it takes
        # also queues the session's writers until this transaction ends.
        upsert = postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert
        statement = upsert(sessions).values(
            session_id=self.session_id, created_at=now, updated_at=now
        )
        await conn.execute(
            statement.on_conflict_do_update(
                index_elements=[sessions.c.session_id],
                set_={"updated_at": statement.excluded.updated_at},
            )
        )

    async def _stored(self, conn: Any, idempotency_key: str) -> bool:
        """Whether this session holds items appended under ``idempotency_key``."""
        query = (
            select(session_items.c.id)
            .where(
                session_items.c.session_id == self.session_id,
                session_items.c.append_key == idempotency_key,
            )
            .limit(1)
        )
        return (await conn.execute(query)).first() is not None

    def _decode(self, row_id: int, text: str) -> TResponseInputItem | None:
        try:
            item: TResponseInputItem = json.loads(text)
        except json.JSONDecodeError:
            # One damaged row must not make the whole conversation unusable.
            logger.warning("Skipping unreadable item %s of session %r", row_id, self.session_id)
            return None
        return item
