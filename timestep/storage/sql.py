"""The built-in backend: PostgreSQL (asyncpg) or SQLite (aiosqlite), pooled by SQLAlchemy.

SQLAlchemy owns the engine, the pool and the migrations. Every run-state operation is a single
SQL statement, atomic on its own, so it runs in autocommit on the driver's own connection:
one round trip (PostgreSQL, with asyncpg's cached prepared statements) or one worker-thread hop
(SQLite) per call. Going through SQLAlchemy's statement layer cost 2-3x the bare driver time
(bench/state_store.py); the statements here are fixed strings built once.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event
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

_TABLE = run_states.name
_COLUMNS = (
    "id",
    "agent_name",
    "session_id",
    "status",
    "sdk",
    "schema_version",
    "state",
    "current_agent",
    "interruptions",
    "portable_state",
    "portable_sdk",
    "portable_schema_version",
    "portable_error",
    "signature",
    "version",
    "created_at",
    "updated_at",
)
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM {_TABLE}"
_KEY = "agent_name = ? AND session_id = ?"
_RETURNING = "RETURNING id, version, created_at, updated_at"
_WRITTEN = (
    "status, sdk, schema_version, state, current_agent, interruptions, "
    "portable_state, portable_sdk, portable_schema_version, portable_error, signature"
)
# Every column is a parameter except `version`, which a new row starts at 1.
_INSERT = (
    f"INSERT INTO {_TABLE} ({', '.join(_COLUMNS)}) "
    f"VALUES ({', '.join('1' if c == 'version' else '?' for c in _COLUMNS)}) "
    "ON CONFLICT (agent_name, session_id) DO "
)


class _Statements:
    """The fixed SQL of every run-state operation, in the driver's parameter style."""

    def __init__(self, numbered: bool) -> None:
        def sql(text: str) -> str:
            if not numbered:
                return text
            count = iter(range(1, 1000))
            return re.sub(r"\?", lambda _: f"${next(count)}", text)

        update = (
            f"UPDATE {_TABLE} SET {', '.join(f'{c} = ?' for c in _WRITTEN.split(', '))}, "
            f"version = version + 1, updated_at = ? WHERE {_KEY}"
        )
        self.create = sql(f"{_INSERT}NOTHING {_RETURNING}")
        # An overwrite is an unconditional UPDATE, then a create if there was no row: SQLite's
        # INSERT ... ON CONFLICT DO UPDATE on this table costs ~20x a plain UPDATE.
        self.replace = sql(f"{update} {_RETURNING}")
        self.update = sql(f"{update} AND version = ? {_RETURNING}")
        self.version = sql(f"SELECT version FROM {_TABLE} WHERE {_KEY}")
        self.load = sql(f"{_SELECT} WHERE {_KEY}")
        self.get = sql(f"{_SELECT} WHERE id = ?")
        self.delete = sql(f"DELETE FROM {_TABLE} WHERE {_KEY} RETURNING id")
        self._sql = sql

    def listing(self, filters: dict[str, str]) -> str:
        where = " AND ".join(f"{column} = ?" for column in filters) or "1 = 1"
        return self._sql(f"{_SELECT} WHERE {where} ORDER BY updated_at DESC, id LIMIT ?")


class SQLStateBackend:
    """Run states in PostgreSQL or SQLite.

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
        self._postgres = self._dialect == "postgresql"
        self._sqlite_path = None if self._postgres else parsed.database
        self._sql = _Statements(numbered=self._postgres)
        self._engine: AsyncEngine | None = None
        self._migrated = False
        self._migrate_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"SQLStateBackend({redact_url(self.url)!r})"

    async def save(
        self, record: StateRecord, *, expected_version: int | None, overwrite: bool = False
    ) -> StoredState:
        now = datetime.now(UTC)
        stamp = self._timestamp(now)
        written = (
            StateStatus(record.status).value,
            record.sdk,
            record.schema_version,
            record.state,
            record.current_agent,
            json.dumps(record.interruptions, separators=(",", ":")),
            record.portable_state,
            record.portable_sdk,
            record.portable_schema_version,
            record.portable_error,
            record.signature,
        )
        key = (record.agent_name, record.session_id)
        create = (uuid.uuid4().hex, *key, *written, stamp, stamp)
        if overwrite:
            replace = (*written, stamp, *key)
            rows = await self._run(self._sql.replace, replace, retry=False)
            if not rows:
                rows = await self._run(self._sql.create, create, retry=False)
            if not rows:  # another writer created the row in between: replace theirs
                rows = await self._run(self._sql.replace, replace, retry=False)
        elif expected_version is None:
            rows = await self._run(self._sql.create, create, retry=False)
        else:
            params = (*written, stamp, *key, expected_version)
            rows = await self._run(self._sql.update, params, retry=False)
        if not rows:
            found = await self._run(self._sql.version, key, retry=False)
            raise _conflict(record, expected_version, found[0][0] if found else None)
        state_id, version, created_at, updated_at = rows[0]
        return StoredState(
            **record.__dict__,
            id=state_id,
            version=version,
            created_at=_utc(created_at),
            updated_at=_utc(updated_at),
        )

    async def load(self, agent_name: str, session_id: str) -> StoredState | None:
        rows = await self._run(self._sql.load, (agent_name, session_id))
        return _stored(rows[0]) if rows else None

    async def get(self, state_id: str) -> StoredState | None:
        rows = await self._run(self._sql.get, (state_id,))
        return _stored(rows[0]) if rows else None

    async def delete(self, agent_name: str, session_id: str) -> bool:
        return bool(await self._run(self._sql.delete, (agent_name, session_id), retry=False))

    async def list(
        self,
        *,
        status: StateStatus | None = None,
        agent_name: str | None = None,
        session_id: str | None = None,
        limit: int = 100,
    ) -> list[StoredState]:
        filters = {
            column: value
            for column, value in (
                ("status", None if status is None else StateStatus(status).value),
                ("agent_name", agent_name),
                ("session_id", session_id),
            )
            if value is not None
        }
        rows = await self._run(self._sql.listing(filters), (*filters.values(), max(limit, 0)))
        return [_stored(row) for row in rows]

    async def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.dispose()

    async def _run(self, sql: str, params: Sequence[Any], *, retry: bool = True) -> Sequence[Any]:
        """Execute one statement in autocommit and return its rows.

        A pooled connection the server has dropped (a restart, an idle timeout) is discarded;
        reads then try once more on a fresh connection. Writes do not, since the first attempt
        may have committed.
        """
        await self._ensure_migrated()
        for attempt in (1, 2):
            async with self._guard(), self._connect() as conn:
                raw: Any = (await conn.get_raw_connection()).driver_connection
                try:
                    if self._postgres:
                        return list(await raw.fetch(sql, *params))
                    return list(await raw.execute_fetchall(sql, params))
                except Exception as error:
                    if not _is_connection_error(error):
                        raise
                    await conn.invalidate()
                    if not retry or attempt == 2:
                        raise self._unavailable(error) from error
        raise AssertionError("unreachable")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A SQLAlchemy Core connection in a transaction on this backend's engine.

        For features that share the database (sessions, stored agents) and maintenance.
        Driver failures become :class:`~timestep.StorageError` subclasses.
        """
        await self._ensure_migrated()
        async with self._guard(), self._connect(**self._transactional) as conn, conn.begin():
            yield conn

    @property
    def _transactional(self) -> dict[str, Any]:
        # The engine autocommits; a transaction has to ask for a real isolation level.
        return {"isolation_level": "READ COMMITTED"} if self._postgres else {}

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
            options = (
                self._transactional if self._postgres else {"timestep_begin": "BEGIN IMMEDIATE"}
            )
            async with self._guard(), self._connect(**options) as conn, conn.begin():
                await conn.run_sync(apply_migrations)
            self._migrated = True

    def _get_engine(self) -> AsyncEngine:
        if self._engine is None:
            self._engine = self._create_engine()
        return self._engine

    def _create_engine(self) -> AsyncEngine:
        # Connections go back to the pool outside any transaction (every run-state statement
        # autocommits), so there is nothing to reset on return.
        common: dict[str, Any] = {"pool_reset_on_return": None}
        if self._postgres:
            return create_async_engine(
                self.url, isolation_level="AUTOCOMMIT", pool_size=5, max_overflow=10, **common
            )
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
            **common,
        )
        _configure_sqlite(engine)
        return engine

    def _timestamp(self, moment: datetime) -> datetime | str:
        # asyncpg takes datetimes for timestamptz; SQLite stores the text form SQLAlchemy
        # reads back as a DateTime.
        return moment if self._postgres else moment.strftime("%Y-%m-%d %H:%M:%S.%f")

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
            raise self._rejected(error.orig or error) from error
        except SQLAlchemyError as error:
            raise StorageError(f"Storage failed on {redact_url(self.url)}: {error}") from error
        except Exception as error:
            # A driver error from a run-state statement (asyncpg / sqlite3 classes).
            if type(error).__module__.split(".")[0] in {"asyncpg", "sqlite3", "aiosqlite"}:
                raise self._rejected(error) from error
            raise

    def _rejected(self, error: BaseException) -> StorageError:
        return StorageError(
            f"The database at {redact_url(self.url)} rejected a Timestep statement: "
            f"{error!r}. If the schema was changed by hand, restore it or use a fresh "
            "database."
        )

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


def _is_connection_error(error: BaseException) -> bool:
    """Whether a statement failed because the connection went away mid-use."""
    cause: BaseException | None = getattr(error, "orig", None) or error
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


def _stored(row: Sequence[Any]) -> StoredState:
    values = dict(zip(_COLUMNS, row, strict=True))
    return StoredState(
        agent_name=values["agent_name"],
        session_id=values["session_id"],
        status=StateStatus(values["status"]),
        sdk=values["sdk"],
        schema_version=values["schema_version"],
        state=values["state"],
        current_agent=values["current_agent"],
        interruptions=json.loads(values["interruptions"]),
        portable_state=values["portable_state"],
        portable_sdk=values["portable_sdk"],
        portable_schema_version=values["portable_schema_version"],
        portable_error=values["portable_error"],
        signature=values["signature"],
        id=values["id"],
        version=values["version"],
        created_at=_utc(values["created_at"]),
        updated_at=_utc(values["updated_at"]),
    )


def _utc(value: datetime | str) -> datetime:
    # SQLite hands back text or naive datetimes; every Timestep timestamp is written in UTC.
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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
