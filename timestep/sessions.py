"""Conversation history on the Timestep database: the SDK's ``Session`` protocol.

The same database and connection pool as the run-state store (embedded SQLite or PostgreSQL),
so one URL holds both the paused runs and their conversations. Usable wherever the SDK takes
a session::

    session = TimestepSession("ticket-42")
    result = await run_agent(agent, "clean up /tmp/x", session=session)

A paused run resumed with the same session continues the same history: items already stored
are not stored again. ``add_items(items, idempotency_key=...)`` appends at most once per key,
which is how a durable run's append survives a crash between its write and its checkpoint.

Otherwise it behaves as the SDK's own sessions do (``SessionConformance`` in
:mod:`timestep.testing` ports their tests): an item that cannot be decoded is skipped by
``get_items`` and dropped by ``pop_item``, limits count readable items only, and
``session_settings`` is a ``SessionSettings`` (a dict is converted and checked at once).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from agents import TResponseInputItem
from agents.memory import SessionSettings
from agents.memory.session_settings import coerce_session_settings, resolve_session_limit
from pydantic import ValidationError
from sqlalchemy import delete, func, insert, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from .config import load_settings, redact_url
from .errors import ConfigurationError, SessionSettingsError
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
        session_settings: The SDK's settings, e.g. ``SessionSettings(limit=50)`` or
            ``{"limit": 50}`` to send only the latest 50 items to the model; an empty
            ``SessionSettings()`` when omitted.

    Raises:
        SessionSettingsError: ``session_settings`` is neither a ``SessionSettings`` nor a dict
            of its fields with valid values.
    """

    session_settings: SessionSettings

    def __init__(
        self,
        session_id: str | None = None,
        *,
        url: str | None = None,
        session_settings: SessionSettings | dict[str, Any] | None = None,
    ) -> None:
        self.session_id = check_session_id(uuid.uuid4().hex if session_id is None else session_id)
        self.url = load_settings(url).db_url
        if backend_factory(self.url) is not SQLStateBackend:
            raise ConfigurationError(
                f"TimestepSession stores history in PostgreSQL or SQLite; {redact_url(self.url)!r} "
                "is served by a plugin backend. Use a postgresql:// or sqlite:/// URL for sessions."
            )
        self.session_settings = _settings(session_settings)

    def __repr__(self) -> str:
        return f"TimestepSession({self.session_id!r})"

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        """The history, oldest first; with a limit, only the latest ``limit`` items.

        An item that cannot be decoded is skipped (with a warning) and does not count toward
        the limit, as in the SDK's sessions.
        """
        limit = resolve_session_limit(limit, self.session_settings)
        mine = session_items.c.session_id == self.session_id
        row = (session_items.c.id, session_items.c.item)
        async with self._backend().transaction() as conn:
            if limit is None:
                rows = (await conn.execute(select(*row).where(mine).order_by(row[0]))).all()
                return [i for row_id, text in rows if (i := self._decode(row_id, text)) is not None]
            newest_first: list[TResponseInputItem] = []
            older_than: int | None = None
            # Newest first, a page at a time from where the last page ended, until ``limit``
            # readable items: each damaged row is read (and reported) once.
            while len(newest_first) < limit:
                wanted = limit - len(newest_first)
                query = select(*row).where(mine).order_by(row[0].desc()).limit(wanted)
                if older_than is not None:
                    query = query.where(row[0] < older_than)
                rows = (await conn.execute(query)).all()
                newest_first += [
                    item for i, text in rows if (item := self._decode(i, text)) is not None
                ]
                if len(rows) < wanted:
                    break
                older_than = rows[-1][0]
        return newest_first[::-1]

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
        """Remove and return the newest item (``None`` when the history is empty).

        Newest items that cannot be decoded are removed on the way (with a warning), as in the
        SDK's sessions: the newest readable item is returned.
        """
        mine = session_items.c.session_id == self.session_id
        newest = (
            select(session_items.c.id)
            .where(mine)
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
            while True:
                row = (await conn.execute(statement)).first()
                if row is None:
                    # On PostgreSQL a concurrent pop can delete the row this statement chose
                    # and leave it nothing: only an empty history means there is no item.
                    remaining = select(session_items.c.id).where(mine).limit(1)
                    if (await conn.execute(remaining)).first() is None:
                        return None
                    continue
                if (item := self._decode(row.id, row.item)) is not None:
                    return item

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


def _settings(value: SessionSettings | dict[str, Any] | None) -> SessionSettings:
    """``value`` as ``SessionSettings``, checked now rather than at the first ``get_items``."""
    if value is None:
        return SessionSettings()
    try:
        return coerce_session_settings(value)
    except (TypeError, ValueError) as error:
        # The SDK raises TypeError (wrong type, unknown keys) or pydantic's ValidationError
        # (a bad value); SessionSettingsError is both a TypeError and a ValueError.
        fields = ", ".join(field.name for field in dataclasses.fields(SessionSettings))
        if isinstance(error, ValidationError):
            problem = "; ".join(
                f"{'.'.join(map(str, detail['loc']))}: {detail['msg']}" for detail in error.errors()
            )
        else:
            problem = str(error)
        raise SessionSettingsError(
            f"session_settings {value!r} is not valid ({problem}). Pass SessionSettings(...) or "
            f"a dict of its fields ({fields}), e.g. session_settings={{'limit': 50}}."
        ) from error
