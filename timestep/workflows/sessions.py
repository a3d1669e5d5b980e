"""Sessions in durable workflows: passed by description, re-created inside the workflow.

Why not pass the SDK ``Session`` itself: DBOS stores a workflow's arguments so that another
process can run it after a crash, and a session object is not serializable (``SQLiteSession``
holds thread-local connections and a lock). So the caller's session is turned into a
:class:`SessionSpec` (its type, its ``session_id`` and what is needed to reopen it) at the call
site, and the workflow re-creates an equivalent session from that spec, in whichever process
runs it.

- ``timestep.TimestepSession`` (history on the Timestep database) and ``agents.SQLiteSession``
  on a file work out of the box (their URL, path, table names and settings are kept). An
  in-memory ``SQLiteSession`` is refused: its history would vanish with the process.
- A ``TimestepSession``'s URL is kept without its password (``user:pw@`` or ``?password=``),
  because DBOS stores the spec in the database. The process running the workflow puts it back
  from its own workflow engine or configuration (the same database), else the driver finds it
  (``PGPASSWORD``, ``~/.pgpass``).
- Any other ``Session`` type needs a factory, registered in every worker::

      register_session_factory(RedisSession, lambda session_id: RedisSession(session_id, url=...))

The workflow reads the history once (a checkpointed step, so a replay sees the same history)
and writes the run's new items once at the end (another step), rather than letting the SDK
write as it goes: writes made by an attempt that crashed would otherwise be repeated.

A worker can still die after that write committed and before DBOS checkpointed its step; the
recovered run then runs the step again. So the write carries an idempotency key, the workflow
id and the step's id (:func:`append_key`), and a session whose ``add_items`` takes an
``idempotency_key`` keyword (``TimestepSession`` does) stores nothing the second time. Other
sessions are appended to as the SDK defines it, and could repeat the run's items in that window.
"""

from __future__ import annotations

import inspect
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypedDict

from agents import SQLiteSession
from agents.memory import Session
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from ..config import QUERY_CREDENTIAL_NAME, load_settings
from ..errors import SessionNotDurableError
from .config import dbos_settings

__all__ = [
    "SessionFactory",
    "SessionSpec",
    "append_key",
    "append_once",
    "close_session",
    "open_session",
    "register_session_factory",
    "session_spec",
]

SessionFactory = Callable[[str], Session]
"""Builds a session from its ``session_id``."""


class SessionSpec(TypedDict):
    """How to re-create a session: its type, id and constructor options::

    SessionSpec(type="agents.memory.sqlite_session.SQLiteSession", session_id="user-42",
                options={"db_path": "/srv/chat.db", ...})
    """

    type: str
    session_id: str
    options: dict[str, Any]


_SQLITE = f"{SQLiteSession.__module__}.{SQLiteSession.__qualname__}"
_lock = threading.Lock()
_factories: dict[str, SessionFactory] = {}


def register_session_factory(session_type: type[Any], factory: SessionFactory) -> None:
    """Let workflows re-create sessions of ``session_type`` from their id.

    Register it in every process that runs workflows, next to ``register_agent``::

        register_session_factory(MySession, lambda session_id: MySession(session_id, url=URL))
    """
    if not isinstance(session_type, type) or not callable(factory):
        raise SessionNotDurableError(
            "register_session_factory(session_type, factory) takes a class and a callable "
            "that builds a session from its session_id."
        )
    with _lock:
        _factories[_type_name(session_type)] = factory


def session_spec(session: Session | None) -> SessionSpec | None:
    """Describe ``session`` so a workflow can re-create it; ``None`` for no session.

    Example: ``spec = session_spec(SQLiteSession("user-42", "chat.db"))``

    Raises:
        SessionNotDurableError: an in-memory ``SQLiteSession``, or a type with no factory.
    """
    if session is None:
        return None
    try:
        session_id = getattr(session, "session_id", None)
    except Exception:
        # A computed id may not exist yet (OpenAIConversationsSession before its first call).
        session_id = None
        if not _has_factory(session):
            raise _no_factory(session) from None
    if not isinstance(session_id, str) or not session_id:
        raise SessionNotDurableError(
            f"A workflow session needs a non-empty string session_id; {type(session).__name__} "
            f"has {session_id!r}."
        )
    if type(session) is SQLiteSession:
        db_path = str(session.db_path)
        if db_path in {"", ":memory:"} or db_path.startswith("file::memory"):
            raise SessionNotDurableError(
                f"SQLiteSession {session_id!r} is in memory, so a worker that restarts would "
                "lose its history. Give it a file: SQLiteSession(session_id, db_path='chat.db')."
            )
        return SessionSpec(
            type=_SQLITE,
            session_id=session_id,
            options={
                "db_path": str(Path(db_path).expanduser().absolute()),
                "sessions_table": session.sessions_table,
                "messages_table": session.messages_table,
            },
        )
    timestep_session = _timestep_session_type()
    if timestep_session is not None and type(session) is timestep_session:
        return SessionSpec(
            type=_type_name(timestep_session),
            session_id=session_id,
            options={
                # DBOS stores the spec in the workflow's inputs: never the database password.
                "url": _without_password(session.url),  # type: ignore[attr-defined]
                "session_settings": session.session_settings,
            },
        )
    name = _has_factory(session)
    if name is None:
        raise _no_factory(session)
    return SessionSpec(type=name, session_id=session_id, options={})


def _has_factory(session: Session) -> str | None:
    """The registered type name ``session`` is re-created by, if any (its class or a base)."""
    for klass in type(session).__mro__:
        name = _type_name(klass)
        with _lock:
            if name in _factories:
                return name
    return None


def _no_factory(session: Session) -> SessionNotDurableError:
    kind = type(session).__name__
    return SessionNotDurableError(
        f"Workflows cannot re-create a {kind} after a restart. Call "
        f"register_session_factory({kind}, lambda session_id: ...) in every worker, or use an "
        "agents.SQLiteSession on a file or a timestep.TimestepSession."
    )


def open_session(spec: SessionSpec, *, workflow_id: str | None = None) -> Session:
    """Re-create the session ``spec`` describes: ``session = open_session(spec)``.

    Raises:
        SessionNotDurableError: no factory is registered for its type in this process.
    """
    if spec["type"] == _SQLITE:
        return SQLiteSession(spec["session_id"], **spec["options"])
    timestep_session = _timestep_session_type()
    if timestep_session is not None and spec["type"] == _type_name(timestep_session):
        options = {**spec["options"], "url": _with_password(spec["options"].get("url"))}
        session: Session = timestep_session(spec["session_id"], **options)
        return session
    with _lock:
        factory = _factories.get(spec["type"])
    if factory is None:
        raise SessionNotDurableError(
            f"Workflow {workflow_id!r} uses a {spec['type']} session, and no factory for it is "
            "registered in this process. Call register_session_factory(...) at start-up, "
            "before ensure_dbos_launched().",
            workflow_id=workflow_id,
        )
    return factory(spec["session_id"])


def append_key(workflow_id: str, step_id: int | None) -> str:
    """The idempotency key of a durable run's session write: ``"workflow:order-7:step:9"``.

    The same on every replay of that step, since DBOS numbers a workflow's steps in order.
    """
    return f"workflow:{workflow_id}:step:{step_id}"


async def append_once(session: Session, items: list[Any], key: str) -> None:
    """``session.add_items(items)``, at most once per ``key`` when the session supports it.

    A session supports it when its ``add_items`` takes an ``idempotency_key`` keyword (as
    ``TimestepSession.add_items`` does) and stores nothing for a key it already holds.
    Example: ``await append_once(session, new_items, append_key(workflow_id, step_id))``
    """
    if _takes_idempotency_key(session):
        await session.add_items(items, idempotency_key=key)  # type: ignore[call-arg]
    else:
        await session.add_items(items)


def _takes_idempotency_key(session: Session) -> bool:
    try:
        parameters = inspect.signature(session.add_items).parameters
    except (TypeError, ValueError):
        return False
    parameter = parameters.get("idempotency_key")
    # Named, not swallowed by **kwargs: a session that ignored the key would repeat silently.
    return parameter is not None and parameter.kind in (
        inspect.Parameter.KEYWORD_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    )


async def close_session(session: Session) -> None:
    """Release what a re-created session holds (SQLite connections), if it can.

    Example: ``await close_session(open_session(spec))``
    """
    close = getattr(session, "close", None)
    if callable(close):
        closing = close()
        if inspect.isawaitable(closing):
            await closing


def _timestep_session_type() -> type[Any] | None:
    # Imported late: sessions on the Timestep database are optional for workflows.
    try:
        from ..sessions import TimestepSession
    except ImportError:
        return None
    return TimestepSession


def _without_password(url: str) -> str:
    """``url`` without its password, whether after the user name or as a query parameter
    (``?password=``, ``&sslpassword=``; any credential-named one), else the URL itself."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return url
    secret = [name for name in parsed.query if _CREDENTIAL_QUERY.fullmatch(name)]
    if parsed.password is None and not secret:
        return url
    stripped = parsed._replace(password=None).difference_update_query(secret)
    return stripped.render_as_string(hide_password=False)


def _with_password(url: str | None) -> str | None:
    """The URL this process knows for the database ``url`` names, password included.

    A spec keeps no password, so the process running the workflow supplies it: its workflow
    engine's URL, else its configured one (``TIMESTEP_DB_URL`` ...), when either is the same
    database. Otherwise ``url`` as stored, and the driver's own sources apply (``PGPASSWORD``,
    ``~/.pgpass``).
    """
    if url is None:
        return url
    engine = dbos_settings()
    if engine is not None and _same_without_password(engine.url, url):
        return engine.url
    try:
        configured = load_settings().db_url
    except Exception:
        return url  # no usable configuration here: the stored URL is all there is
    return configured if _same_without_password(configured, url) else url


_CREDENTIAL_QUERY = re.compile(QUERY_CREDENTIAL_NAME, re.IGNORECASE)


def _same_without_password(candidate: str, stored: str) -> bool:
    return candidate != stored and _without_password(candidate) == stored


def _type_name(klass: type[Any]) -> str:
    return f"{klass.__module__}.{klass.__qualname__}"
