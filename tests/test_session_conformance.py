"""TimestepSession passes the SDK's session tests, on SQLite and PostgreSQL.

The same suite runs over the SDK's own ``SQLiteSession`` and ``SQLAlchemySession``, which shows
it asks for what the SDK's sessions do, not for Timestep's choices.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from agents import SQLiteSession
from agents.extensions.memory import SQLAlchemySession
from agents.memory import Session, SessionSettings
from sqlalchemy import func, select, update

from timestep import TimestepSession
from timestep.storage import get_backend
from timestep.storage.schema import session_items
from timestep.testing import SessionConformance, SessionFactory, UnreadableItemWriter

UNREADABLE = "not valid json {{{"


class TestTimestepSession(SessionConformance):
    @pytest.fixture
    def session_factory(self, db_url: str) -> SessionFactory:
        def make(
            session_id: str, *, session_settings: SessionSettings | dict[str, Any] | None = None
        ) -> Session:
            return TimestepSession(session_id, url=db_url, session_settings=session_settings)

        return make

    @pytest.fixture
    def write_unreadable_item(self, db_url: str) -> UnreadableItemWriter:
        async def write(session: Session) -> None:
            # A normal append, then its text damaged in place, as a bad disk or hand edit would.
            await session.add_items([{"role": "user", "content": "soon unreadable"}])
            newest = (
                select(func.max(session_items.c.id))
                .where(session_items.c.session_id == session.session_id)
                .scalar_subquery()
            )
            async with get_backend(db_url).transaction() as conn:  # type: ignore[attr-defined]
                await conn.execute(
                    update(session_items)
                    .where(session_items.c.id == newest)
                    .values(item=UNREADABLE)
                )

        return write


class TestSDKSQLiteSession(SessionConformance):
    @pytest.fixture
    def session_factory(self, tmp_path: Path) -> Iterator[SessionFactory]:
        made: list[SQLiteSession] = []

        def make(
            session_id: str, *, session_settings: SessionSettings | dict[str, Any] | None = None
        ) -> Session:
            made.append(
                SQLiteSession(session_id, tmp_path / "sdk.db", session_settings=session_settings)
            )
            return made[-1]

        yield make
        for session in made:
            session.close()

    @pytest.fixture
    def write_unreadable_item(self, tmp_path: Path) -> UnreadableItemWriter:
        return sdk_unreadable_item_writer(tmp_path / "sdk.db")


class TestSDKSQLAlchemySession(SessionConformance):
    @pytest.fixture
    async def session_factory(self, tmp_path: Path) -> AsyncIterator[SessionFactory]:
        made: list[SQLAlchemySession] = []
        url = f"sqlite+aiosqlite:///{tmp_path / 'sdk.db'}"

        def make(
            session_id: str, *, session_settings: SessionSettings | dict[str, Any] | None = None
        ) -> Session:
            made.append(
                SQLAlchemySession.from_url(
                    session_id, url=url, create_tables=True, session_settings=session_settings
                )
            )
            return made[-1]

        yield make
        for session in made:
            await session.engine.dispose()

    @pytest.fixture
    def write_unreadable_item(self, tmp_path: Path) -> UnreadableItemWriter:
        return sdk_unreadable_item_writer(tmp_path / "sdk.db")


def sdk_unreadable_item_writer(path: Path) -> UnreadableItemWriter:
    """Both SDK sessions keep items in ``agent_messages`` by default."""

    async def write(session: Session) -> None:
        await session.get_items()  # SQLAlchemySession creates its tables on first use
        conn = sqlite3.connect(path)
        try:
            with conn:
                conn.execute(
                    "INSERT INTO agent_messages (session_id, message_data) VALUES (?, ?)",
                    (session.session_id, UNREADABLE),
                )
        finally:
            conn.close()

    return write
