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

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
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
    "applied_versions",
    "apply_migrations",
    "metadata",
    "migrations",
    "run_states",
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


run_states = _run_states_v1(metadata)


def _create_run_states(conn: Connection) -> None:
    _run_states_v1(MetaData()).create(conn)


MIGRATIONS: dict[str, list[Migration]] = {
    # component -> its steps; step N (1-based) brings the component to version N.
    "run_states": [_create_run_states],
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


def apply_migrations(conn: Connection) -> dict[str, int]:
    """Apply the missing steps inside the caller's transaction; return every chain's version.

    On PostgreSQL a transaction-level advisory lock serialises concurrent first users; SQLite
    callers open the transaction with ``BEGIN IMMEDIATE``, which does the same.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
    applied = applied_versions(conn)
    for component, steps in MIGRATIONS.items():
        if applied.get(component, 0) > len(steps):
            raise StorageError(
                f"The database's {component!r} tables are at version {applied[component]}, "
                f"newer than this Timestep install understands ({len(steps)}). Upgrade "
                "timestep to use this database."
            )
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
