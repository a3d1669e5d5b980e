"""Tables and the versioned migrations that create them.

Each migration is frozen once released: a later schema change is a new entry in
``MIGRATIONS``, never an edit of an old one. ``apply_migrations`` runs the missing ones in a
single transaction, under a lock, so concurrent first users of a fresh database agree.
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
    String,
    Table,
    Text,
    UniqueConstraint,
    select,
    text,
)

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "apply_migrations",
    "current_version",
    "metadata",
    "migrations",
    "run_states",
]

metadata = MetaData()

migrations = Table(
    "timestep_schema_migrations",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)


def _run_states_v1(target: MetaData) -> Table:
    # The version-1 shape. It stays as released: a later migration changes the table in a
    # function of its own, and `run_states` below is rebuilt from these steps.
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


def _v1_create_run_states(conn: Connection) -> None:
    _run_states_v1(MetaData()).create(conn)


MIGRATIONS: list[tuple[int, Callable[[Connection], None]]] = [
    (1, _v1_create_run_states),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]

# Any constant works; it only has to be the same for every Timestep process.
_PG_MIGRATION_LOCK = 0x7E57E9


def current_version(conn: Connection) -> int:
    """The highest applied migration, 0 for a fresh database."""
    if not conn.dialect.has_table(conn, migrations.name):
        return 0
    newest = conn.execute(select(migrations.c.version).order_by(migrations.c.version.desc()))
    return int(newest.scalars().first() or 0)


def apply_migrations(conn: Connection) -> int:
    """Apply the missing migrations inside the caller's transaction; return the new version.

    On PostgreSQL a transaction-level advisory lock serialises concurrent first users; SQLite
    callers open the transaction with ``BEGIN IMMEDIATE``, which does the same.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
    applied = current_version(conn)
    if applied > SCHEMA_VERSION:
        from ..errors import StorageError

        raise StorageError(
            f"The database schema is at version {applied}, newer than this Timestep install "
            f"understands ({SCHEMA_VERSION}). Upgrade timestep to use this database."
        )
    if applied == 0:
        migrations.create(conn, checkfirst=True)
    for version, migrate in MIGRATIONS:
        if version > applied:
            migrate(conn)
            conn.execute(migrations.insert().values(version=version, applied_at=datetime.now(UTC)))
    return SCHEMA_VERSION
