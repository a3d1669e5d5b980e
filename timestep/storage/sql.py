"""The built-in backend: PostgreSQL (asyncpg) or SQLite (aiosqlite), pooled by SQLAlchemy.

SQLAlchemy owns the engine, the pool and the migrations. Every run-state operation is a single
SQL statement, atomic on its own, so it runs in autocommit on the driver's own connection:
one round trip (PostgreSQL, with asyncpg's cached prepared statements) or one worker-thread hop
(SQLite) per call. Going through SQLAlchemy's statement layer cost 2-3x the bare driver time
(bench/state_store.py); the statements here are fixed strings built once.

When the database goes away (a restart, a failover, a dropped connection) no call hangs and
none fails with anything but :class:`~timestep.StorageUnavailableError`: a pooled connection
the server closed is discarded before use, connecting gives up after
:data:`CONNECT_TIMEOUT_SECONDS`, a statement unanswered after :data:`STATEMENT_TIMEOUT_SECONDS`
counts as a lost connection, a read retries once on a fresh connection, and a write whose
connection died mid-statement is reconciled against the row (see ``SQLStateBackend._write``).
"""

from __future__ import annotations

import asyncio
import enum
import json
import re
import socket
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    DisconnectionError,
    SAWarning,
    SQLAlchemyError,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool
from sqlalchemy.util import await_only

from ..config import normalize_db_url, redact_url
from ..errors import (
    ConfigurationError,
    StateConflictError,
    StorageError,
    StorageUnavailableError,
    TimestepError,
)
from ..hookspecs import hookimpl
from .base import StateRecord, StateStatus, StoredState
from .paths import private_file
from .schema import applied_versions, apply_migrations, needs_migrations, run_states

__all__ = [
    "CONNECT_TIMEOUT_SECONDS",
    "LOCK_TIMEOUT_SECONDS",
    "STATEMENT_TIMEOUT_SECONDS",
    "SQLStateBackend",
    "register_state_backends",
]

CONNECT_TIMEOUT_SECONDS = 10.0
"""How long opening a PostgreSQL connection may take before the database counts as unreachable
(asyncpg's own default is 60 s: a dead host would stall every call for a minute)."""

STATEMENT_TIMEOUT_SECONDS = 60.0
"""How long a PostgreSQL statement may go unanswered (a network path that died without closing
the connection) before it is abandoned like a lost connection: cancelled, the connection
discarded, a read retried once, a write reconciled against the row."""

LOCK_TIMEOUT_SECONDS = 50.0
"""How long a PostgreSQL statement waits for a lock another transaction holds (a row an
operator's session left locked) before the server cancels it, when the server sets no
``lock_timeout`` of its own. Shorter than :data:`STATEMENT_TIMEOUT_SECONDS`, so such a wait ends
as a definite "nothing was written" naming the lock, not as an unanswered statement."""

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
        self._command_timeout = STATEMENT_TIMEOUT_SECONDS
        # The driver connections the engine has open (pool "connect" / "close" events), so a
        # pool whose event loop ended without close() can still be cut loose (_abandon).
        self._opened: dict[int, Any] = {}
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
        new_id = uuid.uuid4().hex
        create = (new_id, *key, *written, stamp, stamp)
        write = _Write(record, now, new_id)
        if overwrite:
            replace = (*written, stamp, *key)
            rows = await self._write(self._sql.replace, replace, write, _Expect.ANY)
            if not rows:
                rows = await self._write(self._sql.create, create, write, _Expect.ANY)
            if not rows:  # another writer created the row in between: replace theirs
                rows = await self._write(self._sql.replace, replace, write, _Expect.ANY)
        elif expected_version is None:
            rows = await self._write(self._sql.create, create, write, _Expect.ABSENT)
        else:
            params = (*written, stamp, *key, expected_version)
            rows = await self._write(self._sql.update, params, write, expected_version)
        if not rows:
            found = await self._run(self._sql.version, key)
            raise _conflict(
                record, expected_version, found[0][0] if found else None, write.uncertain
            )
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
        try:
            rows = await self._run(self._sql.delete, (agent_name, session_id), retry=False)
        except _ConnectionLost as lost:
            # Unlike a save, a delete leaves nothing to recognise it by: say so.
            error = self._unavailable(lost.error, outcome="the state may or may not be deleted")
            raise error from lost.error
        return bool(rows)

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

    def _abandon(self) -> None:
        """Release the pool of an event loop that was closed without :meth:`close`.

        Its connections cannot be closed politely any more (that needs their loop), so cut
        them: a PostgreSQL socket is shut down, which ends the server's session at once, and an
        aiosqlite connection's thread closes its file and exits. Python still reports each
        asyncpg transport as unclosed (a ResourceWarning) when it is collected: the loop was
        closed with it open. Later calls open a new pool on their own loop.
        """
        engine, self._engine = self._engine, None
        opened = list(self._opened.values())
        self._opened.clear()
        if engine is not None:
            engine.sync_engine.dispose(close=False)
        for driver in opened:
            try:
                if self._postgres:
                    transport = driver._transport
                    if transport is not None:
                        transport.get_extra_info("socket").shutdown(socket.SHUT_RDWR)
                else:
                    _stopping.add(driver)
                    stopped = driver.stop()
                    if stopped is None:
                        continue
                    # Held until its thread has closed the file: collected before that, it
                    # would warn that it was never closed.
                    stopped.add_done_callback(lambda _, held=driver: _stopping.discard(held))
            except Exception:
                continue  # already gone

    async def _run(self, sql: str, params: Sequence[Any], *, retry: bool = True) -> Sequence[Any]:
        """Execute one statement in autocommit and return its rows.

        Pooled connections the server closed while idle never get here (see
        :func:`_discard_closed`). When the connection dies during the statement it is
        discarded; a read then tries once more on a fresh connection, and a write
        (``retry=False``) raises :class:`_ConnectionLost`, since it may have committed.
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
                    # A connection the server closed under us can fail with any driver error
                    # (asyncpg: "another operation is in progress" after an unsolicited
                    # shutdown notice), so ask the connection too, as SQLAlchemy does.
                    lost: BaseException = error
                    if isinstance(error, TimeoutError):  # asyncpg's command_timeout
                        lost = _Unanswered(self._command_timeout)
                    elif not _is_connection_error(error):
                        if not (self._postgres and raw.is_closed()):
                            raise
                        lost = ConnectionAbortedError("the server closed the connection")
                    await conn.invalidate()
                    if not retry:
                        raise _ConnectionLost(lost) from error
                    if attempt == 2:
                        raise self._unavailable(lost) from error
        raise AssertionError("unreachable")

    async def _write(
        self, sql: str, params: Sequence[Any], write: _Write, expect: int | _Expect
    ) -> Sequence[Any]:
        """Run one save statement; if its connection dies mid-statement, find out what it did.

        The statement may or may not have committed before the connection went. On a fresh
        connection the row is read back:

        - it holds exactly this save (every written column and this call's ``updated_at``, and
          for a create this call's new row id): the save landed, and its outcome is returned;
        - it is still in the state the statement required (``expect``: no row for a create,
          the expected version for an update): the save did not land, and the statement runs
          once more. It is the same conditional statement, so it can apply at most once
          overall (both attempts require that same state, and applying it changes it);
        - anything else: another writer got there first, or this save landed and was already
          superseded; no rows are returned so the caller raises the conflict (``uncertain``).

        An unconditional overwrite (``_Expect.ANY``) is not re-run when the row is not this
        save: it might have landed and been replaced since, and running it again would undo
        that later save. Whenever the outcome stays unknown (the database is still away), the
        error says so instead of "nothing was written".
        """
        try:
            return await self._run(sql, params, retry=False)
        except _ConnectionLost as lost:
            first = lost.error
        record = write.record
        try:
            current = await self.load(record.agent_name, record.session_id)
        except StorageUnavailableError as error:
            raise self._unavailable(first, outcome=_UNKNOWN_SAVE) from error
        if current is not None and write.landed(current, expect):
            return [(current.id, _landed_version(current, expect), current.created_at, write.now)]
        if expect is _Expect.ANY or not _still(current, expect):
            write.uncertain = True
            if expect is _Expect.ANY:
                raise self._unavailable(first, outcome=_UNKNOWN_SAVE)
            return []
        try:
            return await self._run(sql, params, retry=False)
        except _ConnectionLost as lost:
            raise self._unavailable(lost.error, outcome=_UNKNOWN_SAVE) from lost.error

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """A SQLAlchemy Core connection in a transaction on this backend's engine.

        For features that share the database (sessions, stored agents) and maintenance.
        Driver failures become :class:`~timestep.StorageError` subclasses; a connection lost
        while committing says the change may or may not have been written.
        """
        await self._ensure_migrated()
        committing = False
        try:
            async with self._guard(), self._connect(**self._transactional) as conn, conn.begin():
                yield conn
                committing = True
        except StorageUnavailableError as error:
            if not committing:
                raise
            cause = error.__cause__ or error
            raise self._unavailable(cause, outcome=_UNKNOWN_COMMIT) from cause

    @property
    def _transactional(self) -> dict[str, Any]:
        # The engine autocommits; a transaction has to ask for a real isolation level.
        return {"isolation_level": "READ COMMITTED"} if self._postgres else {}

    @asynccontextmanager
    async def _connect(self, **options: Any) -> AsyncIterator[AsyncConnection]:
        # Any failure to get a connection means the database is unreachable for us (down,
        # wrong host, missing database, refused credentials), whatever the driver calls it.
        try:
            conn = self._get_engine().connect()
            await conn.start()
        except TimestepError:
            raise
        except (DBAPIError, OSError, TimeoutError) as error:
            raise self._unavailable(error) from error
        except (TypeError, ValueError, OverflowError) as error:
            # The driver's own check of the URL's query options (?timeout=abc, ?foo=bar).
            raise ConfigurationError(
                f"The database URL {redact_url(self.url)!r} has options its driver does not "
                f"accept ({type(error).__name__}: {error}). Fix or remove the part after '?'."
            ) from None
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
            # Nearly every first use finds the schema current. Check with a plain read, which
            # waits for no writer (SQLite in WAL mode) and no other migrator (the advisory
            # lock), so a fresh process reads while another writes; lock only to migrate.
            async with self._guard(), self._connect() as conn, conn.begin():
                if not needs_migrations(await conn.run_sync(applied_versions)):
                    self._migrated = True
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
            # Read at creation, like every other engine setting (tests shorten it).
            self._command_timeout = STATEMENT_TIMEOUT_SECONDS
            self._engine = self._create_engine()
        return self._engine

    def _create_engine(self) -> AsyncEngine:
        # Connections go back to the pool outside any transaction (every run-state statement
        # autocommits), so there is nothing to reset on return.
        common: dict[str, Any] = {"pool_reset_on_return": None}
        if self._postgres:
            engine = create_async_engine(
                self.url,
                isolation_level="AUTOCOMMIT",
                pool_size=5,
                max_overflow=10,
                connect_args={
                    "timeout": CONNECT_TIMEOUT_SECONDS,
                    "command_timeout": self._command_timeout,
                },
                **common,
            )
            # Not pool_pre_ping: that costs a round trip per call, this an attribute read.
            event.listen(engine.sync_engine, "checkout", _discard_closed)
            event.listen(engine.sync_engine, "connect", _bound_lock_waits)
            self._track_connections(engine)
            return engine
        in_memory = self._sqlite_path in (None, "", ":memory:")
        if not in_memory:
            try:
                private_file(Path(str(self._sqlite_path)).expanduser())
            except OSError as error:
                raise StorageUnavailableError(
                    f"Cannot create SQLite database {self._sqlite_path}: {error}. "
                    "Set TIMESTEP_HOME or TIMESTEP_DB_URL to a writable location."
                ) from None
        with warnings.catch_warnings():
            # SQLAlchemy only warns that SQLite ignores a query option: it is a mistake all
            # the same (sslmode= on the wrong URL, a typo), so say so.
            warnings.simplefilter("error", SAWarning)
            try:
                engine = create_async_engine(
                    self.url,
                    # An in-memory database lives in one connection; share it.
                    **({"poolclass": StaticPool} if in_memory else {}),
                    connect_args={"timeout": _SQLITE_BUSY_SECONDS},
                    **common,
                )
            except SAWarning as warning:
                raise ConfigurationError(
                    f"The SQLite URL {redact_url(self.url)!r} has options SQLite does not take "
                    f"({str(warning).split(';')[0]}). Remove them from the part after '?'."
                ) from None
        _configure_sqlite(engine)
        self._track_connections(engine)
        return engine

    def _track_connections(self, engine: AsyncEngine) -> None:
        opened = self._opened

        def connected(dbapi_connection: Any, _record: Any) -> None:
            opened[id(dbapi_connection)] = dbapi_connection.driver_connection

        def closed(dbapi_connection: Any, *_record: Any) -> None:
            opened.pop(id(dbapi_connection), None)

        event.listen(engine.sync_engine, "connect", connected)
        event.listen(engine.sync_engine, "close", closed)
        event.listen(engine.sync_engine, "close_detached", closed)

    def _timestamp(self, moment: datetime) -> datetime | str:
        # asyncpg takes datetimes for timestamptz; SQLite stores the text form SQLAlchemy
        # reads back as a DateTime.
        return moment if self._postgres else moment.strftime("%Y-%m-%d %H:%M:%S.%f")

    @asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        """Translate driver failures into Timestep errors that say what to do."""
        try:
            yield
        except (StateConflictError, StorageError, _ConnectionLost):
            raise
        except (OSError, TimeoutError) as error:
            raise self._unavailable(error) from error
        except DBAPIError as error:
            if error.connection_invalidated or _is_connection_error(error):
                raise self._unavailable(error) from error
            raise self._explained(error) or self._rejected(error.orig or error) from error
        except SQLAlchemyError as error:
            if _is_connection_error(error):
                raise self._unavailable(error) from error
            raise StorageError(f"Storage failed on {redact_url(self.url)}: {error}") from error
        except Exception as error:
            # A driver error from a run-state statement (asyncpg / sqlite3 classes).
            if type(error).__module__.split(".")[0] in {"asyncpg", "sqlite3", "aiosqlite"}:
                if _is_connection_error(error):
                    raise self._unavailable(error) from error
                raise self._explained(error) or self._rejected(error) from error
            raise

    def _explained(self, error: BaseException) -> StorageError | None:
        """The error for a driver failure that is the database's own state, not the schema's:
        out of space, locked, or a server-side time limit. ``None`` for anything else.

        Each of these fails the statement (or the transaction) as a whole, so nothing of it
        was written.
        """
        detail = _driver_error(error)
        sqlite_name = str(getattr(detail, "sqlite_errorname", ""))
        sqlstate = str(getattr(detail, "sqlstate", "") or "")
        where = redact_url(self.url)
        if sqlite_name == "SQLITE_FULL" or sqlstate == _DISK_FULL:
            limit = " (or the file reached SQLite's max_page_count)" if sqlite_name else ""
            return StorageError(
                f"The database at {where} is full: the disk it is stored on has no space "
                f"left{limit} ({type(detail).__name__}: {detail}). Free disk space, or move "
                "the database to a larger disk, and try again; nothing was written."
            )
        if sqlite_name == "SQLITE_BUSY_SNAPSHOT":
            return StorageUnavailableError(
                f"The SQLite database at {where} was changed by another connection after "
                f"this transaction read it, so SQLite refused its write ({detail}). Try "
                "again; nothing was written."
            )
        if sqlite_name.startswith("SQLITE_BUSY"):
            return StorageUnavailableError(
                f"The SQLite database at {where} is locked: another connection held its "
                f"write lock for longer than the {_SQLITE_BUSY_SECONDS:g} s busy timeout "
                f"({detail}). Another process (or an open sqlite3 shell) is keeping a write "
                "transaction open: let it finish or stop it, then try again; nothing was "
                "written."
            )
        if sqlstate == _QUERY_CANCELED:
            if "statement timeout" in str(detail):
                return StorageUnavailableError(
                    f"The PostgreSQL server at {where} cancelled a Timestep statement that ran "
                    f"past its statement_timeout ({detail}). Usually the statement was waiting "
                    "for a lock another transaction holds (see pg_stat_activity, "
                    "wait_event_type = 'Lock'); otherwise raise statement_timeout for "
                    "Timestep's role or database. Try again; nothing was written."
                )
            return StorageUnavailableError(
                f"A Timestep statement on {where} was cancelled on the server ({detail}), "
                "by an operator (pg_cancel_backend) or a server setting. Try again; nothing "
                "was written."
            )
        if sqlstate == _LOCK_NOT_AVAILABLE:
            return StorageUnavailableError(
                f"A Timestep statement on {where} waited for a lock that another transaction "
                f"holds until lock_timeout ran out ({detail}; Timestep sets "
                f"{LOCK_TIMEOUT_SECONDS:g} s when the server sets none). Find the session "
                "holding it (pg_stat_activity: state 'idle in transaction', or "
                "pg_blocking_pids()) and let it commit or end it, then try again; nothing was "
                "written."
            )
        return None

    def _rejected(self, error: BaseException) -> StorageError:
        return StorageError(
            f"The database at {redact_url(self.url)} rejected a Timestep statement: "
            f"{error!r}. If the schema was changed by hand, restore it or use a fresh "
            "database."
        )

    def _unavailable(
        self, error: BaseException, *, outcome: str = "nothing was written"
    ) -> StorageUnavailableError:
        detail = _driver_error(error)
        if isinstance(detail, _Unanswered):
            return StorageUnavailableError(
                f"A statement on the database at {redact_url(self.url)} got no answer within "
                f"{detail.seconds:g} s. Either the connection stalled (a network path that "
                "died without closing it: check the server is reachable), or the statement "
                "waited that long on the server, most often for a lock another transaction "
                "holds (look for it in pg_stat_activity: wait_event_type = 'Lock', or state "
                f"'idle in transaction'); {outcome}."
            )
        text = str(detail)
        if not text and isinstance(detail, TimeoutError):
            text = f"no answer within {CONNECT_TIMEOUT_SECONDS:g} s"
        return StorageUnavailableError(
            f"Cannot reach the database at {redact_url(self.url)}: "
            f"{type(detail).__name__}: {text}. Check that it is running and that the URL "
            f"(argument, TIMESTEP_DB_URL or PG_CONNECTION_URI) is right; {outcome}."
        )


def _configure_sqlite(engine: AsyncEngine) -> None:
    # pysqlite's implicit transactions start late and break BEGIN IMMEDIATE; take control of
    # BEGIN ourselves (the recipe SQLAlchemy documents for aiosqlite).
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(_SQLITE_BUSY_SECONDS * 1000)}")
        _use_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get("timestep_begin", "BEGIN"))


def _use_wal(cursor: Any) -> None:
    """Put the database in WAL mode (readers in other processes proceed while one writes).

    The mode is stored in the file, so only a fresh database needs the switch. The switch
    wants an exclusive lock and SQLite answers "database is locked" at once, without waiting
    for the busy timeout, when another first user holds a lock: several processes opening a
    new database together. Wait and try again (on the event loop: this runs in a greenlet).
    """
    cursor.execute("PRAGMA journal_mode")
    if str(cursor.fetchone()[0]).lower() == "wal":
        return
    for attempt in range(200):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as error:
            if "locked" not in str(error) or attempt == 199:
                raise
            await_only(asyncio.sleep(0.05))


# aiosqlite connections of abandoned pools whose threads are still closing them.
_stopping: set[Any] = set()

_UNKNOWN_COMMIT = (
    "the connection was lost while committing, so the change may or may not have been "
    "written: read it back to see which"
)
_UNKNOWN_SAVE = (
    "the connection was lost mid-save, so this save may or may not have been written: load "
    "the state to see which"
)


class _Unanswered(TimeoutError):
    """asyncpg's command timeout: a statement got no answer in time."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"a statement got no answer within {seconds:g} s")
        self.seconds = seconds


class _ConnectionLost(Exception):
    """A write's connection died mid-statement: it may or may not have committed."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class _Expect(enum.Enum):
    """What a save statement requires of the row, besides an expected version."""

    ABSENT = "absent"  # a create: no row yet
    ANY = "any"  # an overwrite: whatever is there


class _Write:
    """One save call, as its statements leave it in the row (to recognise it after a loss)."""

    def __init__(self, record: StateRecord, now: datetime, new_id: str) -> None:
        self.record = record
        self.now = now
        self.new_id = new_id
        # Set when a lost connection leaves it unknown whether this save was written.
        self.uncertain = False

    def landed(self, row: StoredState, expect: int | _Expect) -> bool:
        """Whether ``row`` is this save, as written by the statement run with ``expect``."""
        if expect is _Expect.ABSENT:
            # A new row's id is this call's uuid: only this call can have created it.
            return row.id == self.new_id
        if isinstance(expect, int) and row.version != expect + 1:
            return False
        # Every column the statement wrote, and this call's microsecond timestamp.
        written = self.record
        return (
            row.updated_at == self.now
            and row.status == StateStatus(written.status)
            and (row.sdk, row.schema_version, row.state, row.current_agent)
            == (written.sdk, written.schema_version, written.state, written.current_agent)
            and row.interruptions == json.loads(json.dumps(written.interruptions))
            and (row.portable_state, row.portable_sdk, row.portable_schema_version)
            == (written.portable_state, written.portable_sdk, written.portable_schema_version)
            and (row.portable_error, row.signature) == (written.portable_error, written.signature)
        )


def _still(row: StoredState | None, expect: int | _Expect) -> bool:
    """Whether the row is still as the statement required it (so it did not apply)."""
    if expect is _Expect.ABSENT:
        return row is None
    return row is not None and row.version == expect


def _landed_version(row: StoredState, expect: int | _Expect) -> int:
    # A create lands at version 1 even if another writer has since built on it.
    return 1 if expect is _Expect.ABSENT else row.version


def _discard_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Pool checkout hook: hand out no connection the server has already closed.

    After a restart every idle pooled connection is dead; asyncpg notices the server's
    goodbye while idle, so ``is_closed()`` (an attribute read, no round trip) tells. Raising
    DisconnectionError makes SQLAlchemy discard it and open a fresh one for this checkout.
    """
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("the server closed this pooled connection")


# SQLSTATEs that are the server's own state, not the statement's fault: disk full,
# query_canceled (statement_timeout, pg_cancel_backend), lock_not_available (lock_timeout).
_DISK_FULL = "53100"
_QUERY_CANCELED = "57014"
_LOCK_NOT_AVAILABLE = "55P03"

_SQLITE_BUSY_SECONDS = 30.0


def _bound_lock_waits(dbapi_connection: Any, _record: Any) -> None:
    """New PostgreSQL connection: give up a lock wait after :data:`LOCK_TIMEOUT_SECONDS`
    unless the server, database or role already sets a ``lock_timeout`` (theirs wins)."""
    cursor = dbapi_connection.cursor()
    cursor.execute(
        "SELECT set_config('lock_timeout', $1, false) WHERE current_setting('lock_timeout') = '0'",
        (f"{int(LOCK_TIMEOUT_SECONDS * 1000)}ms",),
    )
    cursor.close()


# SQLSTATEs of a connection that failed or that the server is closing: class 08 (connection
# exception), 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now
# ("the database system is starting up / shutting down").
_GONE_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def _is_connection_error(error: BaseException) -> bool:
    """Whether a statement failed because the connection is gone or the server is away."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, OSError | TimeoutError | DisconnectionError):
            return True
        if isinstance(cause, DBAPIError) and cause.connection_invalidated:
            return True
        if str(getattr(cause, "sqlstate", None) or "").startswith(_GONE_SQLSTATES):
            return True
        # asyncpg refusing a call on a connection it already knows is closed
        if type(cause).__name__ == "InterfaceError" and "connection is closed" in str(cause):
            return True
        cause = getattr(cause, "orig", None) or cause.__cause__
    return False


def _driver_error(error: BaseException) -> BaseException:
    """The driver's own exception under SQLAlchemy's wrappers, for a message naming it."""
    while True:
        inner = getattr(error, "orig", None)
        if inner is None and type(error).__module__.startswith("sqlalchemy"):
            inner = error.__cause__
        if inner is None or inner is error:
            return error
        error = inner


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


def _conflict(
    record: StateRecord, expected: int | None, actual: int | None, uncertain: bool = False
) -> StateConflictError:
    if uncertain:
        message = (
            f"The connection was lost while saving agent {record.agent_name!r}, session "
            f"{record.session_id!r}, and the row has since changed (now version {actual}, this "
            f"store expected {expected}): another writer saved first, or this save landed and "
            "was already built on. Load the state and apply your change to it if it is missing."
        )
    elif expected is None:
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
