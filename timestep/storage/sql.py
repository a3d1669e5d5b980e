"""The built-in backend: SQLAlchemy Core over asyncpg (PostgreSQL) or aiosqlite (SQLite)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Row, event, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from ..config import normalize_db_url, redact_url
from ..errors import ConfigurationError, StateConflictError, StorageError, StorageUnavailableError
from ..hookspecs import hookimpl
from .base import StateRecord, StateStatus, StoredState
from .schema import apply_migrations, run_states

__all__ = ["SQLStateBackend", "register_state_backends"]

_RETURNED = (
    run_states.c.id,
    run_states.c.version,
    run_states.c.created_at,
    run_states.c.updated_at,
)


class SQLStateBackend:
    """Run states in PostgreSQL or SQLite through SQLAlchemy Core.

    The engine is created on first use and the schema migrated once per backend object;
    :func:`timestep.storage.get_backend` keeps one object per URL per event loop.
    """

    def __init__(self, url: str) -> None:
        self.url = normalize_db_url(url)
        try:
            parsed = make_url(self.url)
        except ArgumentError as error:
            raise ConfigurationError(
                f"Cannot parse database URL {redact_url(url)!r}: {error}. Use e.g. "
                "'sqlite:///path/to/timestep.db' or 'postgresql://user@host:5432/db'."
            ) from None
        self._dialect = parsed.get_backend_name()
        if self._dialect not in {"postgresql", "sqlite"}:
            raise ConfigurationError(
                "SQLStateBackend serves postgresql:// and sqlite:/// URLs, "
                f"not {redact_url(url)!r}."
            )
        self._sqlite_path = parsed.database if self._dialect == "sqlite" else None
        self._insert: Callable[..., Any] = (
            pg_insert if self._dialect == "postgresql" else sqlite_insert
        )
        self._engine: AsyncEngine | None = None
        self._migrated = False
        self._migrate_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"SQLStateBackend({redact_url(self.url)!r})"

    async def save(
        self, record: StateRecord, *, expected_version: int | None, overwrite: bool = False
    ) -> StoredState:
        now = datetime.now(UTC)
        values = _row_values(record, now)
        key = (run_states.c.agent_name == record.agent_name) & (
            run_states.c.session_id == record.session_id
        )
        async with self._transaction() as conn:
            if overwrite:
                statement = self._insert(run_states).values(
                    id=uuid.uuid4().hex, version=1, created_at=now, **values
                )
                statement = statement.on_conflict_do_update(
                    index_elements=[run_states.c.agent_name, run_states.c.session_id],
                    set_={**values, "version": run_states.c.version + 1},
                )
            elif expected_version is None:
                statement = (
                    self._insert(run_states)
                    .values(id=uuid.uuid4().hex, version=1, created_at=now, **values)
                    .on_conflict_do_nothing(
                        index_elements=[run_states.c.agent_name, run_states.c.session_id]
                    )
                )
            else:
                statement = (
                    run_states.update()
                    .where(key & (run_states.c.version == expected_version))
                    .values(version=run_states.c.version + 1, **values)
                )
            row = (await conn.execute(statement.returning(*_RETURNED))).first()
            if row is None:
                actual = (
                    await conn.execute(select(run_states.c.version).where(key))
                ).scalar_one_or_none()
                raise _conflict(record, expected_version, actual)
        return StoredState(
            **record.__dict__,
            id=row.id,
            version=row.version,
            created_at=_utc(row.created_at),
            updated_at=_utc(row.updated_at),
        )

    async def load(self, agent_name: str, session_id: str) -> StoredState | None:
        query = select(run_states).where(
            (run_states.c.agent_name == agent_name) & (run_states.c.session_id == session_id)
        )
        return await self._fetch_one(query)

    async def get(self, state_id: str) -> StoredState | None:
        return await self._fetch_one(select(run_states).where(run_states.c.id == state_id))

    async def delete(self, agent_name: str, session_id: str) -> bool:
        statement = run_states.delete().where(
            (run_states.c.agent_name == agent_name) & (run_states.c.session_id == session_id)
        )
        async with self._transaction() as conn:
            result = await conn.execute(statement)
        return bool(result.rowcount)

    async def list(
        self,
        *,
        status: StateStatus | None = None,
        agent_name: str | None = None,
        session_id: str | None = None,
        limit: int = 100,
    ) -> list[StoredState]:
        query = select(run_states)
        if status is not None:
            query = query.where(run_states.c.status == StateStatus(status).value)
        if agent_name is not None:
            query = query.where(run_states.c.agent_name == agent_name)
        if session_id is not None:
            query = query.where(run_states.c.session_id == session_id)
        query = query.order_by(run_states.c.updated_at.desc(), run_states.c.id).limit(limit)
        async with self._connection() as conn:
            rows = (await conn.execute(query)).all()
        return [_stored(row) for row in rows]

    async def count(self) -> int:
        """How many states are stored (for diagnostics and tests)."""
        async with self._connection() as conn:
            return int(
                (await conn.execute(select(func.count()).select_from(run_states))).scalar_one()
            )

    async def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.dispose()

    async def _fetch_one(self, query: Any) -> StoredState | None:
        async with self._connection() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _stored(row)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection]:
        await self._ensure_migrated()
        async with self._guard(), self._connect() as conn:
            yield conn

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        await self._ensure_migrated()
        async with self._guard(), self._connect() as conn, conn.begin():
            yield conn

    @asynccontextmanager
    async def _connect(self, **options: Any) -> AsyncIterator[AsyncConnection]:
        conn = self._get_engine().connect()
        # Any failure to get a connection means the database is unreachable for us (down,
        # wrong host, missing database, refused credentials), whatever the driver calls it.
        try:
            await conn.start()
        except (DBAPIError, OSError, TimeoutError) as error:
            raise self._unavailable(error) from error
        try:
            if options:
                await conn.execution_options(**options)
            yield conn
        finally:
            await conn.close()

    async def _ensure_migrated(self) -> None:
        if self._migrated:
            return
        async with self._migrate_lock:
            if self._migrated:
                return
            # SQLite: take the write lock up front so concurrent first users queue.
            options = {"timestep_begin": "BEGIN IMMEDIATE"} if self._dialect == "sqlite" else {}
            async with self._guard(), self._connect(**options) as conn, conn.begin():
                await conn.run_sync(apply_migrations)
            self._migrated = True

    def _get_engine(self) -> AsyncEngine:
        if self._engine is None:
            self._engine = self._create_engine()
        return self._engine

    def _create_engine(self) -> AsyncEngine:
        if self._dialect == "postgresql":
            return create_async_engine(self.url, pool_pre_ping=True, pool_size=5, max_overflow=10)
        in_memory = self._sqlite_path in (None, "", ":memory:")
        if not in_memory:
            try:
                Path(str(self._sqlite_path)).expanduser().parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise StorageUnavailableError(
                    f"Cannot create the folder for SQLite database {self._sqlite_path}: {error}. "
                    "Set TIMESTEP_HOME or TIMESTEP_DB_URL to a writable location."
                ) from None
        engine = create_async_engine(
            self.url,
            # An in-memory database lives in one connection; share it.
            **({"poolclass": StaticPool} if in_memory else {}),
            connect_args={"timeout": 30},
        )
        _configure_sqlite(engine)
        return engine

    @asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        """Translate driver failures into Timestep errors that say what to do."""
        try:
            yield
        except (StateConflictError, StorageError):
            raise
        except (OSError, TimeoutError) as error:
            raise self._unavailable(error) from error
        except DBAPIError as error:
            if error.connection_invalidated or _is_connection_error(error):
                raise self._unavailable(error) from error
            raise StorageError(
                f"The database at {redact_url(self.url)} rejected a Timestep statement: "
                f"{error.orig!r}. If the schema was changed by hand, restore it or use a fresh "
                "database."
            ) from error
        except SQLAlchemyError as error:
            raise StorageError(f"Storage failed on {redact_url(self.url)}: {error}") from error

    def _unavailable(self, error: BaseException) -> StorageUnavailableError:
        detail = getattr(error, "orig", None) or error
        return StorageUnavailableError(
            f"Cannot reach the database at {redact_url(self.url)}: "
            f"{type(detail).__name__}: {detail}. Check that it is running and that the URL "
            "(argument, TIMESTEP_DB_URL or PG_CONNECTION_URI) is right; nothing was written."
        )


def _configure_sqlite(engine: AsyncEngine) -> None:
    # pysqlite's implicit transactions start late and break BEGIN IMMEDIATE; take control of
    # BEGIN ourselves (the recipe SQLAlchemy documents for aiosqlite).
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL lets readers in other processes proceed while one process writes.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get("timestep_begin", "BEGIN"))


def _is_connection_error(error: DBAPIError) -> bool:
    """Whether a statement failed because the connection went away mid-use."""
    cause: BaseException | None = error.orig
    while cause is not None:
        if isinstance(cause, OSError | TimeoutError):
            return True
        # asyncpg's classes for a server that closed or is shutting down the connection
        if type(cause).__name__ in {
            "ConnectionDoesNotExistError",
            "ConnectionFailureError",
            "CannotConnectNowError",
            "AdminShutdownError",
        }:
            return True
        cause = cause.__cause__
    return False


def _row_values(record: StateRecord, now: datetime) -> dict[str, Any]:
    return {
        "agent_name": record.agent_name,
        "session_id": record.session_id,
        "status": StateStatus(record.status).value,
        "sdk": record.sdk,
        "schema_version": record.schema_version,
        "state": record.state,
        "current_agent": record.current_agent,
        "interruptions": json.dumps(record.interruptions, separators=(",", ":")),
        "updated_at": now,
    }


def _stored(row: Row[Any]) -> StoredState:
    return StoredState(
        agent_name=row.agent_name,
        session_id=row.session_id,
        status=StateStatus(row.status),
        sdk=row.sdk,
        schema_version=row.schema_version,
        state=row.state,
        current_agent=row.current_agent,
        interruptions=json.loads(row.interruptions),
        id=row.id,
        version=row.version,
        created_at=_utc(row.created_at),
        updated_at=_utc(row.updated_at),
    )


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every Timestep timestamp is written in UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _conflict(record: StateRecord, expected: int | None, actual: int | None) -> StateConflictError:
    if expected is None:
        message = (
            f"A state for agent {record.agent_name!r}, session {record.session_id!r} already "
            f"exists (version {actual}). Load it first so this save builds on it, or pass "
            "overwrite=True to replace it deliberately."
        )
    elif actual is None:
        message = (
            f"The state for agent {record.agent_name!r}, session {record.session_id!r} was "
            f"cleared by another writer after this store read version {expected}. Nothing was "
            "written; load again or save with overwrite=True."
        )
    else:
        message = (
            f"Another writer saved agent {record.agent_name!r}, session {record.session_id!r} "
            f"first (now version {actual}, this store expected {expected}). Nothing was "
            "written; load the new state and apply your change to it."
        )
    return StateConflictError(
        message, session_id=record.session_id, expected_version=expected, actual_version=actual
    )


@hookimpl
def register_state_backends(register: Callable[[str, Callable[[str], Any]], None]) -> None:
    """Serve ``postgresql://``, ``postgres://`` and ``sqlite://`` URLs."""
    for scheme in ("postgresql", "postgres", "sqlite"):
        register(scheme, SQLStateBackend)
