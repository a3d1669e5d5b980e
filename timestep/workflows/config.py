"""Configure, launch and shut down the workflow engine (DBOS) on Timestep's database.

DBOS keeps its system tables in the same database Timestep resolves through
:func:`timestep.config.load_settings` (argument > ``TIMESTEP_DB_URL`` > ``PG_CONNECTION_URI`` >
config file > embedded SQLite), so one URL holds run states, sessions and workflows.

Example::

    configure_dbos()                 # same database as RunStateStore
    ensure_dbos_launched()           # heartbeats; adopts the runs of dead workers
    ...
    shutdown_dbos()

Three settings matter for recovery and are pinned here rather than left to DBOS defaults:

- ``application_version``: DBOS only recovers workflows of the version it runs, and by default
  derives the version from a hash of the workflow source, so any code change would strand
  in-flight runs. Timestep pins it to :data:`DEFAULT_APPLICATION_VERSION` (or
  ``TIMESTEP_APP_VERSION``), which changes only when the durable run's step sequence changes.
- ``executor_id``: DBOS ties each running workflow to the executor id of the worker running
  it. Unless one is given (``executor_id=`` or ``TIMESTEP_EXECUTOR_ID``), every worker process
  gets its own (``<hostname>-<8 hex digits>``, see :mod:`.fleet`), so replicas of one program
  never take over each other's runs. Launched workers heartbeat in ``timestep_workers``; when
  one falls silent for ``dead_after`` seconds (``TIMESTEP_WORKER_DEAD_AFTER``, default 30),
  a live worker adopts its unfinished runs through DBOS's recovery, exactly once, and a
  restarted worker gets its predecessor's runs back the same way. A worker launched with an
  explicit id still recovers that id's runs at launch, as DBOS does: an explicit id must be
  unique among live workers.
- ``name``: the DBOS application name; queues and schedules belong to it.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import sqlite3
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from dbos import DBOS, DBOSClient, DBOSConfig
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from ..config import load_settings, redact_url
from ..errors import (
    ConfigurationError,
    StorageUnavailableError,
    TimestepError,
    WorkflowConfigurationError,
    WorkflowNotLaunchedError,
)
from ..storage.paths import private_file
from .fleet import DEFAULT_DEAD_AFTER_SECONDS, DEFAULT_HEARTBEAT_SECONDS, Fleet, default_executor_id

__all__ = [
    "DEFAULT_APPLICATION_VERSION",
    "WorkflowSettings",
    "configure_dbos",
    "dbos_settings",
    "ensure_dbos_launched",
    "shutdown_dbos",
    "system_database_url",
]

DEFAULT_APPLICATION_VERSION = "timestep-workflows-2"
"""The pinned DBOS application version; bump only when the durable run's steps change shape."""


_APP_NAME = re.compile(r"^[a-z0-9_-]{3,256}$")
# Keys configure_dbos sets itself; the rest of DBOSConfig may be passed through.
_OWNED_KEYS = {"name", "system_database_url", "application_version", "executor_id", "log_level"}
_DBOS_KEYS = set(DBOSConfig.__required_keys__) | set(DBOSConfig.__optional_keys__)


@dataclass(frozen=True)
class WorkflowSettings:
    """What the workflow engine was configured with (see :func:`configure_dbos`).

    ``url`` is Timestep's own (async-driver) URL; ``system_database_url`` is the same database
    as DBOS reaches it. Example::

        settings = ensure_dbos_launched()
        print(settings.executor_id, settings.application_version)
    """

    url: str
    system_database_url: str
    name: str
    executor_id: str
    application_version: str
    log_level: str = "WARNING"
    options: Mapping[str, Any] = field(default_factory=dict)
    heartbeat_interval: float = DEFAULT_HEARTBEAT_SECONDS
    dead_after: float = DEFAULT_DEAD_AFTER_SECONDS

    def __repr__(self) -> str:
        return (
            f"WorkflowSettings(url={redact_url(self.url)!r}, name={self.name!r}, "
            f"executor_id={self.executor_id!r}, application_version={self.application_version!r})"
        )

    def dbos_config(self) -> DBOSConfig:
        """The DBOS configuration these settings stand for: ``settings.dbos_config()["name"]``."""
        config = cast(DBOSConfig, dict(self.options))
        config["name"] = self.name
        config["system_database_url"] = self.system_database_url
        config["application_version"] = self.application_version
        config["executor_id"] = self.executor_id
        config["log_level"] = self.log_level
        return config


class _Engine:
    """Process-wide state: DBOS itself is a process-wide singleton."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.settings: WorkflowSettings | None = None
        self.launched = False
        self.queues: set[str] = set()
        self.client: tuple[str, DBOSClient] | None = None
        self.fleet: Fleet | None = None


_engine = _Engine()


def system_database_url(url: str) -> str:
    """The URL DBOS uses for the database Timestep reaches at ``url``.

    DBOS talks to PostgreSQL through psycopg and to SQLite through the standard library, so the
    async drivers Timestep uses are dropped: ``postgresql+asyncpg://h/db`` becomes
    ``postgresql://h/db`` and ``sqlite+aiosqlite:///x.db`` becomes ``sqlite:////abs/x.db``.

    Raises:
        WorkflowConfigurationError: not a PostgreSQL or SQLite file URL.
    """
    from ..config import normalize_db_url

    try:
        normalized = normalize_db_url(url)
        parsed = make_url(normalized)
    except (ConfigurationError, ArgumentError) as error:
        raise WorkflowConfigurationError(
            f"Cannot use {redact_url(url)!r} for durable workflows: {error}"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    if backend == "sqlite":
        database = parsed.database
        if not database or database == ":memory:" or database.startswith("file::memory"):
            raise WorkflowConfigurationError(
                "Durable workflows need a database that outlives the process; "
                f"{redact_url(url)!r} is in memory. Use a file, e.g. 'sqlite:///./timestep.db', "
                "or PostgreSQL."
            )
        path = Path(database).expanduser().absolute()
        query = f"?{parsed.render_as_string().partition('?')[2]}" if parsed.query else ""
        return f"sqlite:///{path}{query}"
    raise WorkflowConfigurationError(
        f"Durable workflows run on PostgreSQL or SQLite, not {redact_url(url)!r}. Use a "
        "'postgresql://...' or 'sqlite:///...' URL (argument, TIMESTEP_DB_URL or config file)."
    )


def configure_dbos(
    url: str | None = None,
    name: str = "timestep",
    *,
    executor_id: str | None = None,
    application_version: str | None = None,
    log_level: str = "WARNING",
    heartbeat_interval: float | None = None,
    dead_after: float | None = None,
    **dbos_options: Any,
) -> WorkflowSettings:
    """Configure DBOS on Timestep's database. Safe to call again.

    Calling it again with the same settings changes nothing. With different settings it
    reconfigures, unless DBOS is already launched: then call :func:`shutdown_dbos` first.

    Args:
        url: Database URL; resolved like every Timestep URL when omitted.
        name: DBOS application name (3-256 of ``a-z 0-9 _ -``); queues and schedules belong to it.
        executor_id: This worker's id (default ``TIMESTEP_EXECUTOR_ID``, else one of this
            process's own, see :func:`~timestep.workflows.fleet.default_executor_id`). An
            explicit id must be unique among live workers; a worker restarted with the same id
            recovers that id's runs at launch.
        application_version: Pinned DBOS application version (default ``TIMESTEP_APP_VERSION``,
            else :data:`DEFAULT_APPLICATION_VERSION`).
        log_level: DBOS's log level; ``WARNING`` keeps start-up chatter quiet.
        heartbeat_interval: Seconds between this worker's heartbeats, and between its looks for
            dead workers (default ``TIMESTEP_WORKER_HEARTBEAT``, else 5).
        dead_after: Seconds of silence after which live workers adopt this worker's unfinished
            runs (default ``TIMESTEP_WORKER_DEAD_AFTER``, else 30); at least twice
            ``heartbeat_interval``. Keep it above the longest pause the worker can have.
        dbos_options: Other ``DBOSConfig`` keys, e.g.
            ``notification_listener_polling_interval_sec=0.1``.

    Example::

        configure_dbos(executor_id="worker-2")
        ensure_dbos_launched()

    Raises:
        WorkflowConfigurationError: a bad URL, name or option, or different settings while
            DBOS is launched.
    """
    settings = _build_settings(
        url,
        name,
        executor_id,
        application_version,
        log_level,
        dbos_options,
        heartbeat_interval=heartbeat_interval,
        dead_after=dead_after,
    )
    with _engine.lock:
        current = _engine.settings
        if current == settings:
            return current
        if _engine.launched:
            assert current is not None
            raise WorkflowConfigurationError(
                f"DBOS is already launched with {current!r}; it cannot switch to {settings!r} "
                "while running. Call shutdown_dbos() first, or configure once at start-up."
            )
        if current is not None:
            DBOS.destroy()
        _prepare_database(settings.system_database_url)
        try:
            DBOS(config=settings.dbos_config())
        except Exception as error:
            _engine.settings = None
            raise WorkflowConfigurationError(f"DBOS rejected {settings!r}: {error}") from error
        _engine.settings = settings
        return settings


def ensure_dbos_launched() -> WorkflowSettings:
    """Launch DBOS (configuring it with defaults first if needed). Safe to call again.

    Launching recovers the unfinished workflows of this worker's executor id, and starts the
    heartbeat that lets live workers adopt the runs of dead ones (see :mod:`.fleet`), so
    register every agent (:func:`~timestep.workflows.register_agent`) before calling it.

    Example::

        register_agent(assistant)
        ensure_dbos_launched()

    Raises:
        StorageUnavailableError: the database cannot be reached.
    """
    with _engine.lock:
        settings = _engine.settings or configure_dbos()
        if _engine.launched:
            return settings
        fleet = Fleet(settings)
        try:
            fleet.join()
            DBOS.launch()
        except Exception as error:
            fleet.stop()
            # A half-launched DBOS cannot be launched again; start from scratch next time.
            DBOS.destroy()
            _engine.settings = None
            if isinstance(error, TimestepError):
                raise  # e.g. workers tables newer than this install: it says what to do
            raise StorageUnavailableError(
                f"Cannot launch durable workflows on {redact_url(settings.url)}: "
                f"{type(error).__name__}: {error}. Check that the database is running and "
                "the URL is right."
            ) from error
        fleet.start()
        _engine.fleet = fleet
        _engine.launched = True
        return settings


def shutdown_dbos(*, workflow_completion_timeout_sec: int = 0) -> None:
    """Stop DBOS in this process. Safe to call when it is not running.

    Unfinished workflows stay in the database; once this worker's heartbeat is older than its
    ``dead_after``, a live worker adopts them (a launch with the same executor id recovers
    them too). ``workflow_completion_timeout_sec`` gives running ones time to finish.

    Example::

        shutdown_dbos(workflow_completion_timeout_sec=10)
    """
    with _engine.lock:
        client, _engine.client = _engine.client, None
        if client is not None:
            client[1].destroy()
        if _engine.settings is not None:
            DBOS.destroy(workflow_completion_timeout_sec=workflow_completion_timeout_sec)
        # Heartbeats stop only now: runs still finishing above must not look abandoned.
        fleet, _engine.fleet = _engine.fleet, None
        if fleet is not None:
            fleet.stop()
        _engine.settings = None
        _engine.launched = False
        _engine.queues.clear()
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    # DBOS made its (now stopped) thread pool this loop's default executor; anything else
    # using asyncio.to_thread on this loop afterwards needs a live one.
    loop.set_default_executor(ThreadPoolExecutor(thread_name_prefix="timestep-after-dbos"))


def dbos_settings() -> WorkflowSettings | None:
    """The settings DBOS was configured with in this process, or ``None``.

    Example::

        if dbos_settings() is None:
            configure_dbos()
    """
    return _engine.settings


def launched_settings(action: str) -> WorkflowSettings:
    """The settings of the launched engine; raises when ``action`` needs it and it is not.

    Example::

        url = launched_settings("queue_agent_workflow").url
    """
    settings = _engine.settings
    if settings is None or not _engine.launched:
        raise WorkflowNotLaunchedError(
            f"{action} needs the workflow engine running in this process. Call "
            "configure_dbos() and ensure_dbos_launched() at start-up (after register_agent)."
        )
    return settings


def is_launched() -> bool:
    """Whether DBOS is launched in this process, e.g. ``if not is_launched(): ...``."""
    return _engine.launched


def mark_queue_registered(name: str) -> bool:
    """Remember that ``name`` is registered; ``False`` if it already was.

    Example::

        if mark_queue_registered("support"):
            ...  # first time in this process
    """
    with _engine.lock:
        if name in _engine.queues:
            return False
        _engine.queues.add(name)
        return True


def forget_queue(name: str) -> None:
    """Forget a queue registration (it failed, or was deleted), e.g. ``forget_queue("q")``."""
    with _engine.lock:
        _engine.queues.discard(name)


async def client_for(url: str | None) -> DBOSClient:
    """A DBOS client on ``url``'s database, for processes that do not run workflows.

    One client is kept per process (for the last URL asked); :func:`shutdown_dbos` closes it.

    Example::

        client = await client_for("postgresql://app@db/agents")
    """
    target = system_database_url(url or load_settings().db_url)
    with _engine.lock:
        cached = _engine.client
    if cached is not None and cached[0] == target:
        return cached[1]

    def connect() -> DBOSClient:
        return DBOSClient(system_database_url=target, application_name=None)

    try:
        fresh = await asyncio.to_thread(connect)
    except Exception as error:
        raise StorageUnavailableError(
            f"Cannot reach the workflow database at {redact_url(target)}: {error}. Check the "
            "URL, and that a worker has launched on it (it creates the workflow tables)."
        ) from error
    with _engine.lock:
        old, _engine.client = _engine.client, (target, fresh)
    if old is not None:
        await asyncio.to_thread(old[1].destroy)
    return fresh


def _build_settings(
    url: str | None,
    name: str,
    executor_id: str | None,
    application_version: str | None,
    log_level: str,
    options: dict[str, Any],
    *,
    heartbeat_interval: float | None,
    dead_after: float | None,
) -> WorkflowSettings:
    if not isinstance(name, str) or not _APP_NAME.match(name):
        raise WorkflowConfigurationError(
            f"name must be 3-256 characters of a-z, 0-9, '_' and '-', not {name!r} "
            "(DBOS's rule for application names), e.g. configure_dbos(name='support-bot')."
        )
    executor = executor_id or os.environ.get("TIMESTEP_EXECUTOR_ID") or default_executor_id()
    version = (
        application_version or os.environ.get("TIMESTEP_APP_VERSION") or DEFAULT_APPLICATION_VERSION
    )
    for label, value in (("executor_id", executor), ("application_version", version)):
        if not isinstance(value, str) or not value.strip():
            raise WorkflowConfigurationError(f"{label} must be a non-empty string, not {value!r}.")
    allowed = ", ".join(sorted(_DBOS_KEYS - _OWNED_KEYS))
    owned = sorted(set(options) & _OWNED_KEYS)
    unknown = sorted(set(options) - _DBOS_KEYS)
    if owned or unknown:
        raise WorkflowConfigurationError(
            f"configure_dbos does not take {', '.join(owned + unknown)} as a DBOS option. "
            "Pass url=, name=, executor_id=, application_version= and log_level= as arguments; "
            f"other options must be DBOSConfig keys ({allowed})."
        )
    beat = _seconds(
        "heartbeat_interval",
        heartbeat_interval,
        "TIMESTEP_WORKER_HEARTBEAT",
        DEFAULT_HEARTBEAT_SECONDS,
    )
    dead = _seconds(
        "dead_after", dead_after, "TIMESTEP_WORKER_DEAD_AFTER", DEFAULT_DEAD_AFTER_SECONDS
    )
    if dead < 2 * beat:
        raise WorkflowConfigurationError(
            f"dead_after ({dead:g} s) must be at least twice heartbeat_interval ({beat:g} s), or "
            "one late heartbeat would get a live worker's runs adopted. Raise dead_after "
            "(TIMESTEP_WORKER_DEAD_AFTER) or lower heartbeat_interval (TIMESTEP_WORKER_HEARTBEAT)."
        )
    timestep_url = load_settings(url).db_url
    return WorkflowSettings(
        url=timestep_url,
        system_database_url=system_database_url(timestep_url),
        name=name,
        executor_id=executor,
        application_version=version,
        log_level=log_level,
        options=dict(options),
        heartbeat_interval=beat,
        dead_after=dead,
    )


def _seconds(label: str, value: float | None, variable: str, default: float) -> float:
    source = f"{label}={value!r}"
    if value is None:
        raw = os.environ.get(variable)
        if raw is None or not raw.strip():
            return default
        source = f"{variable}={raw!r}"
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise WorkflowConfigurationError(
            f"{source} is not a positive number of seconds; use e.g. 5 or 0.5."
        )
    return float(value)


def _prepare_database(url: str) -> None:
    if not url.startswith("sqlite"):
        return
    path = Path(make_url(url).database or "")
    try:
        private_file(path)
        # WAL is a property of the file: set it before DBOS and Timestep open their pools so
        # readers in other processes are never blocked by a writer.
        with sqlite3.connect(path, timeout=30) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
        conn.close()
    except (OSError, sqlite3.Error) as error:
        raise StorageUnavailableError(
            f"Cannot open SQLite database {path} for durable workflows: {error}. Set "
            "TIMESTEP_HOME or TIMESTEP_DB_URL to a writable location."
        ) from None
