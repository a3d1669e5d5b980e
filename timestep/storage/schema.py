"""Tables and the versioned migrations that create them.

Migrations form one chain per component (``run_states``, and later ``sessions``, ``agents``,
...), so features add and evolve their own tables without renumbering each other. Each step is
frozen once released: a later change is a new step at the end of its chain, never an edit.
``apply_migrations`` runs the missing steps in a single transaction, under a lock, so
concurrent first users of a fresh database agree.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    select,
    text,
)

from ..errors import StorageError

__all__ = [
    "MIGRATIONS",
    "Migration",
    "agent_versions",
    "agents",
    "applied_versions",
    "apply_migrations",
    "metadata",
    "migrations",
    "model_usage",
    "needs_migrations",
    "run_states",
    "session_items",
    "sessions",
    "spans",
    "traces",
    "workers",
    "workflow_decisions",
]

Migration = Callable[[Connection], None]

metadata = MetaData()

migrations = Table(
    "timestep_schema_migrations",
    metadata,
    Column("component", String(64), nullable=False),
    Column("version", Integer, nullable=False, autoincrement=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("component", "version", name="pk_timestep_schema_migrations"),
)


def _run_states_v1(target: MetaData) -> Table:
    # The version-1 shape. It stays as released: a later step changes the table in a function
    # of its own, and `run_states` below is rebuilt from these steps.
    return Table(
        "timestep_run_states",
        target,
        Column("id", String(32), primary_key=True),
        Column("agent_name", String(255), nullable=False),
        Column("session_id", String(255), nullable=False),
        Column("status", String(16), nullable=False),
        Column("sdk", String(16), nullable=False),
        Column("schema_version", String(16), nullable=False),
        Column("state", Text, nullable=False),
        Column("current_agent", String(255)),
        Column("interruptions", Text, nullable=False),
        Column("version", Integer, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
        UniqueConstraint("agent_name", "session_id", name="uq_timestep_run_states_agent_session"),
        Index("ix_timestep_run_states_status_updated", "status", "updated_at"),
    )


def _run_states_v2_columns() -> list[Column[Any]]:
    # Version 2: the portable form of each state, translated for the other Agents SDK
    # (timestep.interop), written in the same statement as the native `state`.
    return [
        Column("portable_state", Text),
        Column("portable_sdk", String(16)),
        Column("portable_schema_version", String(16)),
        Column("portable_error", Text),
    ]


def _run_states_v3_columns() -> list[Column[Any]]:
    # Version 3: the HMAC signature of the row (timestep.integrity), when TIMESTEP_STATE_KEY
    # is set.
    return [Column("signature", String(128))]


run_states = _run_states_v1(metadata)
for _column in (*_run_states_v2_columns(), *_run_states_v3_columns()):
    run_states.append_column(_column)


def _create_run_states(conn: Connection) -> None:
    _run_states_v1(MetaData()).create(conn)


def _add_portable_state(conn: Connection) -> None:
    _add_run_state_columns(conn, _run_states_v2_columns())


def _add_signature(conn: Connection) -> None:
    _add_run_state_columns(conn, _run_states_v3_columns())


def _add_run_state_columns(conn: Connection, columns: list[Column[Any]]) -> None:
    for column in columns:
        column_type = column.type.compile(dialect=conn.dialect)
        conn.execute(
            text(f"ALTER TABLE timestep_run_states ADD COLUMN {column.name} {column_type}")
        )


def _sessions_v1(target: MetaData) -> tuple[Table, Table]:
    sessions = Table(
        "timestep_sessions",
        target,
        Column("session_id", String(255), primary_key=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
    )
    items = Table(
        "timestep_session_items",
        target,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column(
            "session_id",
            String(255),
            ForeignKey("timestep_sessions.session_id", ondelete="CASCADE"),
            nullable=False,
        ),
        Column("item", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Index("ix_timestep_session_items_session_id", "session_id", "id"),
    )
    return sessions, items


def _session_items_v2_columns() -> list[Column[Any]]:
    # Version 2: the idempotency key of the `add_items` call that stored an item, and the
    # item's position in that call (both NULL for plain appends). A durable run keys its
    # append by workflow and step, so a replay of that step finds its own write.
    return [Column("append_key", Text), Column("append_position", Integer)]


def _session_items_v2_index(items: Table) -> Index:
    keyed = items.c.append_key.is_not(None)
    return Index(
        "uq_timestep_session_items_append_key",
        items.c.session_id,
        items.c.append_key,
        items.c.append_position,
        unique=True,
        postgresql_where=keyed,
        sqlite_where=keyed,
    )


sessions, session_items = _sessions_v1(metadata)
for _column in _session_items_v2_columns():
    session_items.append_column(_column)
_session_items_v2_index(session_items)


def _create_sessions(conn: Connection) -> None:
    frozen = MetaData()
    _sessions_v1(frozen)
    frozen.create_all(conn)


def _add_append_keys(conn: Connection) -> None:
    _, items = _sessions_v1(MetaData())
    for column in _session_items_v2_columns():
        column_type = column.type.compile(dialect=conn.dialect)
        conn.execute(
            text(f"ALTER TABLE timestep_session_items ADD COLUMN {column.name} {column_type}")
        )
        items.append_column(column)
    _session_items_v2_index(items).create(conn)


def _agents_v1(target: MetaData) -> tuple[Table, Table]:
    agents = Table(
        "timestep_agents",
        target,
        Column("id", String(32), primary_key=True),
        Column("name", String(255), nullable=False, unique=True),
        Column("version", Integer, nullable=False),
        Column("definition", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
    )
    versions = Table(
        "timestep_agent_versions",
        target,
        Column(
            "agent_id",
            String(32),
            ForeignKey("timestep_agents.id", ondelete="CASCADE"),
            nullable=False,
        ),
        Column("version", Integer, nullable=False),
        Column("definition", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        PrimaryKeyConstraint("agent_id", "version", name="pk_timestep_agent_versions"),
    )
    return agents, versions


agents, agent_versions = _agents_v1(metadata)


def _create_agents(conn: Connection) -> None:
    frozen = MetaData()
    _agents_v1(frozen)
    frozen.create_all(conn)


def _traces_v1(target: MetaData) -> tuple[Table, Table, Table]:
    # Written in batches by timestep.observability's trace processor; no foreign keys, because
    # spans and usage may arrive before (or, after `timestep gc`, without) their trace row.
    traces = Table(
        "timestep_traces",
        target,
        Column("trace_id", String(64), primary_key=True),
        Column("workflow_name", String(255)),
        Column("group_id", String(255)),
        Column("session_id", String(255)),
        Column("agent_name", String(255)),
        Column("workflow_id", String(255)),
        Column("trace_metadata", Text),
        Column("started_at", DateTime(timezone=True)),
        Column("ended_at", DateTime(timezone=True)),
        Index("ix_timestep_traces_session_id", "session_id"),
        Index("ix_timestep_traces_started_at", "started_at"),
    )
    spans = Table(
        "timestep_spans",
        target,
        Column("span_id", String(64), primary_key=True),
        Column("trace_id", String(64), nullable=False),
        Column("parent_id", String(64)),
        Column("span_type", String(32), nullable=False),
        Column("name", String(255)),
        Column("started_at", DateTime(timezone=True)),
        Column("ended_at", DateTime(timezone=True)),
        Column("error", Text),
        Column("data", Text, nullable=False),
        Index("ix_timestep_spans_trace_id", "trace_id", "started_at"),
        Index("ix_timestep_spans_ended_at", "ended_at"),
    )
    usage = Table(
        "timestep_model_usage",
        target,
        Column("id", String(32), primary_key=True),
        Column("trace_id", String(64)),
        Column("span_id", String(64)),
        Column("session_id", String(255)),
        Column("workflow_id", String(255)),
        Column("agent_name", String(255)),
        Column("model", String(255)),
        Column("provider", String(64)),
        Column("requests", Integer, nullable=False),
        Column("input_tokens", BigInteger, nullable=False),
        Column("cached_tokens", BigInteger, nullable=False),
        Column("cache_write_tokens", BigInteger, nullable=False),
        Column("output_tokens", BigInteger, nullable=False),
        Column("reasoning_tokens", BigInteger, nullable=False),
        Column("total_tokens", BigInteger, nullable=False),
        Column("latency_ms", Float),
        Column("cost_nanousd", BigInteger),
        Column("response_id", String(255)),
        Column("source", String(16), nullable=False),
        Column("started_at", DateTime(timezone=True)),
        Column("ended_at", DateTime(timezone=True), nullable=False),
        Index("ix_timestep_model_usage_ended_at", "ended_at"),
        Index("ix_timestep_model_usage_trace_id", "trace_id"),
        Index("ix_timestep_model_usage_session_id", "session_id"),
    )
    return traces, spans, usage


traces, spans, model_usage = _traces_v1(metadata)


def _create_traces(conn: Connection) -> None:
    frozen = MetaData()
    _traces_v1(frozen)
    frozen.create_all(conn)


def _workflow_decisions_v1(target: MetaData) -> Table:
    # One row per decided tool call of a durable run (timestep.workflows.approvals). The key
    # makes the first decision final: a later one is inserted with ON CONFLICT DO NOTHING and
    # read back, so concurrent deciders agree on one winner.
    return Table(
        "timestep_workflow_decisions",
        target,
        Column("workflow_id", String(255), nullable=False),
        Column("call_id", String(255), nullable=False),
        Column("decision", String(16), nullable=False),
        Column("rejection_message", Text),
        Column("decided_by", String(255)),
        Column("decided_at", DateTime(timezone=True), nullable=False),
        PrimaryKeyConstraint("workflow_id", "call_id", name="pk_timestep_workflow_decisions"),
    )


def _workflow_decisions_v2_columns() -> list[Column[Any]]:
    # Version 2: the HMAC proof that a holder of TIMESTEP_STATE_KEY made the decision
    # (timestep.integrity, StateSigner.sign_decision); workers with the key refuse rows without.
    return [Column("signature", String(128))]


workflow_decisions = _workflow_decisions_v1(metadata)
for _column in _workflow_decisions_v2_columns():
    workflow_decisions.append_column(_column)


def _create_workflow_decisions(conn: Connection) -> None:
    _workflow_decisions_v1(MetaData()).create(conn)


def _workers_v1(target: MetaData) -> Table:
    # One row per launched workflow worker (timestep.workflows.fleet). Times are milliseconds
    # since the epoch on the database's clock, never a worker's, so hosts with skewed clocks
    # still agree on who is silent; each row carries its own dead-after, so every reader
    # (another worker, the CLI) judges it the same way.
    return Table(
        "timestep_workers",
        target,
        Column("executor_id", String(255), primary_key=True),
        Column("app_name", String(255), nullable=False),
        Column("app_version", String(255), nullable=False),
        Column("host", String(255), nullable=False),
        Column("pid", Integer, nullable=False),
        Column("started_at", BigInteger, nullable=False),
        Column("last_heartbeat", BigInteger, nullable=False),
        Column("dead_after_ms", BigInteger, nullable=False),
        # Set by the live worker that claimed a dead one's runs; adopted_at is that claim's own
        # lease, so last_heartbeat stays the dead worker's real last sign of life.
        Column("adopted_by", String(255)),
        Column("adopted_at", BigInteger),
        Index("ix_timestep_workers_last_heartbeat", "last_heartbeat"),
    )


workers = _workers_v1(metadata)


def _create_workers(conn: Connection) -> None:
    _workers_v1(MetaData()).create(conn)


def _add_decision_signature(conn: Connection) -> None:
    for column in _workflow_decisions_v2_columns():
        column_type = column.type.compile(dialect=conn.dialect)
        conn.execute(
            text(f"ALTER TABLE timestep_workflow_decisions ADD COLUMN {column.name} {column_type}")
        )


MIGRATIONS: dict[str, list[Migration]] = {
    # component -> its steps; step N (1-based) brings the component to version N.
    "run_states": [_create_run_states, _add_portable_state, _add_signature],
    "sessions": [_create_sessions, _add_append_keys],
    "agents": [_create_agents],
    "traces": [_create_traces],
    "workflow_decisions": [_create_workflow_decisions, _add_decision_signature],
    "workers": [_create_workers],
}

# Any constant works; it only has to be the same for every Timestep process.
_PG_MIGRATION_LOCK = 0x7E57E9


def applied_versions(conn: Connection) -> dict[str, int]:
    """The version each component's chain is at (absent: not started)."""
    if not conn.dialect.has_table(conn, migrations.name):
        return {}
    rows = conn.execute(
        select(migrations.c.component, func.max(migrations.c.version)).group_by(
            migrations.c.component
        )
    )
    return {component: int(version) for component, version in rows}


def needs_migrations(applied: dict[str, int]) -> bool:
    """Whether any chain misses steps, given :func:`applied_versions`.

    Raises:
        StorageError: a chain is newer than this code knows; the message says to upgrade.
    """
    for component, steps in MIGRATIONS.items():
        if applied.get(component, 0) > len(steps):
            raise StorageError(
                f"The database's {component!r} tables are at version {applied[component]}, "
                f"newer than this Timestep install understands ({len(steps)}). Upgrade "
                "timestep to use this database."
            )
    return any(applied.get(component, 0) < len(steps) for component, steps in MIGRATIONS.items())


def apply_migrations(conn: Connection) -> dict[str, int]:
    """Apply the missing steps inside the caller's transaction; return every chain's version.

    On PostgreSQL a transaction-level advisory lock serialises concurrent first users; SQLite
    callers open the transaction with ``BEGIN IMMEDIATE``, which does the same.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
    applied = applied_versions(conn)
    if not needs_migrations(applied):
        return applied
    migrations.create(conn, checkfirst=True)
    for component, steps in MIGRATIONS.items():
        for version, step in enumerate(steps, start=1):
            if version > applied.get(component, 0):
                step(conn)
                conn.execute(
                    migrations.insert().values(
                        component=component, version=version, applied_at=datetime.now(UTC)
                    )
                )
    return {component: len(steps) for component, steps in MIGRATIONS.items()}
