"""Several workers on one database: who is alive, and adopting the runs of workers that died.

DBOS ties every running workflow to the ``executor_id`` of the worker executing it, and at launch
recovers only the unfinished runs of its own id. Timestep adds what a fleet needs on top:

- **Identity.** Unless configured (``executor_id=`` / ``TIMESTEP_EXECUTOR_ID``), every worker
  process gets its own id, ``<hostname>-<8 hex digits>`` (:func:`default_executor_id`), so two
  replicas of one program never share one and never take over each other's runs.
- **Heartbeats.** A launched worker keeps a row in ``timestep_workers`` (executor id, host, pid,
  started at, last heartbeat, and after how long of silence it counts as dead) and refreshes
  its heartbeat every ``heartbeat_interval`` seconds from a thread of its own, so a busy event
  loop does not stop it. Times come from the database's clock.
- **Adoption.** On every beat, a worker also looks for workers of its application whose
  heartbeat is older than their ``dead_after``, counting only silence it watched itself
  while beating without a gap (so a database outage, during which nobody could beat, or the
  worker's own pause, never makes live workers look dead; a worker that just started waits
  one ``dead_after`` before judging anyone). It claims such a row with a compare-and-set
  (``UPDATE ... SET adopted_by = me, adopted_at = now WHERE last_heartbeat = <seen> AND
  adopted_at = <seen>``), so exactly one live worker wins, and the claim is a lease nobody else
  takes for another ``dead_after`` (an adopter dying mid-way loses it in time). It then hands
  the dead worker's PENDING runs to DBOS's own recovery
  (:meth:`DBOS._recover_pending_workflows`). DBOS re-enqueues each run only if it is still
  PENDING under the dead id (its own compare-and-set), and the queue's dequeue admits exactly
  one live worker, which replays the checkpointed steps and continues after the last one. Once
  the dead id holds no PENDING run, its row is deleted.

A dead worker's runs therefore resume within about ``dead_after + heartbeat_interval`` seconds
(30 + 5 by default) when another worker was running, on whichever live worker dequeues them
first; a worker restarted in the same place gets its predecessor's runs back the same way (it
has a new id), within ``dead_after + heartbeat_interval`` of its own start if it is alone.
The price of a lease: a worker that stops heartbeating for longer than ``dead_after`` while
still alive (a frozen VM, a stopped container) is declared dead, and what it was executing may
run again elsewhere. Keep ``dead_after`` well above any pause you expect.

Example::

    for worker in await list_workers():
        print(worker.executor_id, worker.alive, worker.runs)
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
import socket
import threading
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    cast,
    create_engine,
    delete,
    event,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.sql.elements import ColumnElement

from ..storage.schema import apply_migrations, workers

if TYPE_CHECKING:
    from .config import WorkflowSettings

__all__ = [
    "DEFAULT_DEAD_AFTER_SECONDS",
    "DEFAULT_HEARTBEAT_SECONDS",
    "WorkerInfo",
    "default_executor_id",
    "list_workers",
    "worker_status",
]

logger = logging.getLogger("timestep")

DEFAULT_HEARTBEAT_SECONDS = 5.0
"""How often a launched worker refreshes its heartbeat and looks for dead workers."""

DEFAULT_DEAD_AFTER_SECONDS = 30.0
"""How long a worker may stay silent before live workers adopt its unfinished runs."""

_HOST = re.compile(r"[^A-Za-z0-9._-]+")
_process_id: tuple[int, str] | None = None


def default_executor_id() -> str:
    """This process's own executor id: ``<hostname>-<8 hex digits>``, e.g. ``web-1-3f9a0c2e``.

    Chosen once per process (a forked child gets a new one), so replicas of one program never
    share an id, and ``configure_dbos()`` called twice in a process agrees with itself.
    """
    global _process_id
    pid = os.getpid()
    if _process_id is None or _process_id[0] != pid:
        host = _HOST.sub("-", socket.gethostname()).strip("-")[:200] or "worker"
        _process_id = (pid, f"{host}-{uuid.uuid4().hex[:8]}")
    return _process_id[1]


@dataclass(frozen=True)
class WorkerInfo:
    """One worker as ``timestep_workers`` records it (see :func:`list_workers`)::

    WorkerInfo(executor_id="web-1-3f9a0c2e", host="web-1", pid=4121, alive=True, runs=2, ...)

    ``alive`` is whether its last heartbeat is younger than its ``dead_after``; ``adopted_by``
    names the live worker that claimed a dead one's runs; ``runs`` counts the PENDING runs
    the workflow database attributes to it.
    """

    executor_id: str
    app_name: str
    app_version: str
    host: str
    pid: int
    started_at: datetime
    last_heartbeat: datetime
    silent_for: float
    dead_after: float
    alive: bool
    adopted_by: str | None
    runs: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data: ``json.dumps(worker.to_dict())``."""
        return {
            "executor_id": self.executor_id,
            "app_name": self.app_name,
            "app_version": self.app_version,
            "host": self.host,
            "pid": self.pid,
            "started_at": self.started_at.isoformat(),
            "last_heartbeat": self.last_heartbeat.isoformat(),
            "silent_for": round(self.silent_for, 3),
            "dead_after": self.dead_after,
            "alive": self.alive,
            "adopted_by": self.adopted_by,
            "runs": self.runs,
        }


async def list_workers(*, url: str | None = None) -> list[WorkerInfo]:
    """Every worker that heartbeats on the workflow database, live ones first.

    Readable from any process (a launched worker, the CLI, an admin script). Example::

        for worker in await list_workers():
            print(worker.executor_id, "alive" if worker.alive else "dead", worker.runs)
    """
    from .inspection import pending_runs_by_executor

    found = await asyncio.to_thread(_read_workers, _database_url(url), None)
    if not found:
        return []
    runs = await pending_runs_by_executor(url=url)
    return sorted(
        (replace(worker, runs=runs.get(worker.executor_id, 0)) for worker in found),
        key=lambda w: (not w.alive, w.executor_id),
    )


async def worker_status(executor_id: str, *, url: str | None = None) -> WorkerInfo | None:
    """The heartbeat row of ``executor_id``, or ``None`` when it has none (``runs`` is 0).

    Example::

        owner = await worker_status(run.executor_id)
        if owner is not None and owner.alive: ...
    """
    found = await asyncio.to_thread(_read_workers, _database_url(url), executor_id)
    return found[0] if found else None


def _database_url(url: str | None) -> str:
    from ..config import load_settings
    from .config import dbos_settings, system_database_url

    if url is None and (settings := dbos_settings()) is not None:
        return settings.system_database_url
    return system_database_url(url or load_settings().db_url)


def _read_workers(database_url: str, executor_id: str | None) -> list[WorkerInfo]:
    engine = _sync_engine(database_url)
    try:
        with engine.connect() as conn:
            if not conn.dialect.has_table(conn, workers.name):
                return []
            now = _now_ms(conn)
            query = select(workers, now.label("now"))
            if executor_id is not None:
                query = query.where(workers.c.executor_id == executor_id)
            rows = conn.execute(query).mappings().all()
    finally:
        engine.dispose()
    found = []
    for row in rows:
        silent_ms = max(0, int(row["now"]) - int(row["last_heartbeat"]))
        found.append(
            WorkerInfo(
                executor_id=row["executor_id"],
                app_name=row["app_name"],
                app_version=row["app_version"],
                host=row["host"],
                pid=int(row["pid"]),
                started_at=_moment(int(row["started_at"])),
                last_heartbeat=_moment(int(row["last_heartbeat"])),
                silent_for=silent_ms / 1000,
                dead_after=int(row["dead_after_ms"]) / 1000,
                alive=row["adopted_by"] is None and silent_ms < int(row["dead_after_ms"]),
                adopted_by=row["adopted_by"],
            )
        )
    return found


class Fleet:
    """This process's membership of the fleet: its heartbeat row and the adoption loop.

    Created and driven by :func:`~timestep.workflows.ensure_dbos_launched` and
    :func:`~timestep.workflows.shutdown_dbos`; not for direct use.
    """

    def __init__(self, settings: WorkflowSettings) -> None:
        self.settings = settings
        self.me = settings.executor_id
        self.engine = _sync_engine(settings.system_database_url)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Database time (ms) since which this worker has been heartbeating without a gap, and
        # its last successful beat. A worker judges another dead only if it watched the whole
        # of that one's dead_after window: after a database outage (nobody could beat) or its
        # own pause, every other row looks stale until their owners have had time to beat.
        self._watching_since: int | None = None
        self._last_beat: int | None = None
        self._adopting_ms = 0.0

    def join(self) -> None:
        """Create the table if needed and (re)write this worker's row; call before launch.

        A worker must be on record before DBOS can hand it a run, or a crash right after
        launch would leave runs with an owner nobody ever declares dead.
        """
        with self._begin() as conn:
            apply_migrations(conn)
        self._register()

    def start(self) -> None:
        """Start heartbeating and adopting (in a daemon thread); call after launch."""
        self._thread = threading.Thread(
            target=self._loop, name=f"timestep-fleet-{self.me}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop heartbeating. The row stays: if runs are left unfinished, they get adopted."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.engine.dispose()

    def beat(self) -> None:
        """Refresh this worker's heartbeat; re-register if it was declared dead meanwhile."""
        with self._begin() as conn:
            now = conn.execute(select(_now_ms(conn))).scalar_one()
            done = conn.execute(
                update(workers)
                .where(workers.c.executor_id == self.me, workers.c.adopted_by.is_(None))
                .values(last_heartbeat=now)
            )
        self._watched(int(now))
        if done.rowcount == 0:
            # Silent for longer than dead_after (a long pause): another worker may have taken
            # over runs this one was executing. Nothing can un-adopt them; carry on as live.
            logger.error(
                "Worker %s was silent for more than %.0f s and was declared dead; its "
                "unfinished runs were handed to other workers. Raise dead_after "
                "(TIMESTEP_WORKER_DEAD_AFTER) above the longest pause this worker can have.",
                self.me,
                self.settings.dead_after,
            )
            self._register()

    def adopt(self) -> list[str]:
        """Claim every dead worker of this application and recover its runs; their ids."""
        from dbos import DBOS

        if self._watching_since is None:
            return []
        with self._begin() as conn:
            now = _now_ms(conn)
            stale = conn.execute(
                select(workers.c.executor_id, workers.c.last_heartbeat, workers.c.adopted_at).where(
                    workers.c.executor_id != self.me,
                    workers.c.app_name == self.settings.name,
                    workers.c.last_heartbeat < now - workers.c.dead_after_ms,
                    literal(self._watching_since, BigInteger) <= now - workers.c.dead_after_ms,
                    # A claim is a lease too: an adopter that died mid-way loses it in time.
                    or_(
                        workers.c.adopted_at.is_(None),
                        workers.c.adopted_at < now - workers.c.dead_after_ms,
                    ),
                )
            ).all()
        adopted = []
        for executor_id, seen, seen_claim in stale:
            with self._begin() as conn:
                claimed = conn.execute(
                    update(workers)
                    .where(
                        workers.c.executor_id == executor_id,
                        workers.c.last_heartbeat == seen,
                        workers.c.adopted_at.is_not_distinct_from(seen_claim),
                    )
                    .values(adopted_by=self.me, adopted_at=_now_ms(conn))
                ).rowcount
            if claimed != 1:
                continue  # another live worker claimed it first
            handles = DBOS._recover_pending_workflows([executor_id])
            if handles:
                logger.warning(
                    "Worker %s adopted %d unfinished run(s) of dead worker %s.",
                    self.me,
                    len(handles),
                    executor_id,
                )
            left = DBOS.list_workflows(
                status="PENDING",
                executor_id=executor_id,
                limit=1,
                load_input=False,
                load_output=False,
            )
            if not left:
                with self._begin() as conn:
                    conn.execute(
                        delete(workers).where(
                            workers.c.executor_id == executor_id,
                            workers.c.adopted_by == self.me,
                        )
                    )
            adopted.append(executor_id)
        return adopted

    def _loop(self) -> None:
        # Adopt at once: a worker starting next to a dead one need not wait a whole interval.
        while True:
            try:
                self.beat()
                began = time.monotonic()
                try:
                    self.adopt()
                finally:
                    self._adopting_ms = (time.monotonic() - began) * 1000
            except Exception as error:
                # The database may be down for a while; every worker retries on its next beat.
                self._watching_since = None
                logger.warning("Worker %s could not heartbeat: %s", self.me, error)
            if self._stop.wait(self.settings.heartbeat_interval):
                return

    def _register(self) -> None:
        values = {
            "app_name": self.settings.name,
            "app_version": self.settings.application_version,
            "host": socket.gethostname()[:255],
            "pid": os.getpid(),
            "dead_after_ms": math.ceil(self.settings.dead_after * 1000),
            "adopted_by": None,
            "adopted_at": None,
        }
        with self._begin() as conn:
            now = conn.execute(select(_now_ms(conn))).scalar_one()
            stamped = {**values, "started_at": now, "last_heartbeat": now}
            done = conn.execute(
                update(workers).where(workers.c.executor_id == self.me).values(**stamped)
            )
            if done.rowcount == 0:
                conn.execute(insert(workers).values(executor_id=self.me, **stamped))
        self._watched(int(now))

    def _watched(self, now: int) -> None:
        # A beat later than two intervals (time spent adopting aside) means this worker, or
        # the database, stalled: what happened meanwhile was not watched, so start over.
        allowed = 2 * self.settings.heartbeat_interval * 1000 + self._adopting_ms
        late = self._last_beat is not None and now - self._last_beat > allowed
        if self._watching_since is None or self._last_beat is None or late:
            self._watching_since = now
        self._last_beat = now

    def _begin(self) -> Any:
        return self.engine.begin()


def _now_ms(conn: Connection) -> ColumnElement[int]:
    """The database's current time in epoch milliseconds, as a SQL expression."""
    if conn.dialect.name == "sqlite":
        return cast((func.julianday("now") - literal(2440587.5)) * 86400000.0, BigInteger)
    return cast(func.extract("epoch", func.clock_timestamp()) * 1000, BigInteger)


def _sync_engine(database_url: str) -> Engine:
    parsed = make_url(database_url)
    if parsed.get_backend_name() == "postgresql":
        # A URL's own connect_timeout wins; without one, an unreachable host fails in 10 s.
        timeout = {} if "connect_timeout" in parsed.query else {"connect_timeout": 10}
        return create_engine(
            parsed.set(drivername="postgresql+psycopg"),
            pool_size=1,
            max_overflow=1,
            pool_pre_ping=True,
            connect_args=timeout,
        )
    engine = create_engine(parsed, pool_size=1, max_overflow=1)

    # pysqlite starts transactions lazily; take the write lock at BEGIN instead, so the
    # compare-and-set claims of two workers sharing the file are serialised.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA busy_timeout=30000")

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _moment(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
