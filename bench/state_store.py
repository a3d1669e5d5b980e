"""Save and load latency of ``timestep.RunStateStore`` against a raw-driver floor.

For each backend (an embedded SQLite file in a temporary folder, and PostgreSQL) this builds a
realistic paused ``RunState`` (an agent whose ``delete_file`` tool needs approval, run once
with a scripted model) and measures, in the same process and event loop:

* Timestep save: ``await store.save(state, overwrite=True)``
* Timestep load: ``await store.load()``
* floor save: ``state.to_string()`` (the SDK's own serialization) plus one raw upsert of that
  string into a two-column table of the same database (asyncpg ``INSERT ... ON CONFLICT DO
  UPDATE``; aiosqlite ``BEGIN`` / upsert / ``COMMIT`` with the pragmas Timestep sets:
  ``journal_mode=WAL``, ``busy_timeout``, default ``synchronous``)
* floor load: one raw select of the string plus ``await RunState.from_string(agent, s)``

Timestep and floor run in alternating blocks (the first to go swaps every block) after a
warm-up, so machine noise lands on both alike. Timings come from ``time.perf_counter_ns``.
The table shows p50/p99 in milliseconds and the Timestep/floor ratio; the target is a p50
ratio of at most 1.3x.

PostgreSQL is reached at ``--pg-url`` (default
``postgresql://postgres@127.0.0.1:5432/timestep_bench``); that database is created when
missing, so the benchmark never touches test data. Run from the repository root::

    .venv/bin/python bench/state_store.py
    .venv/bin/python bench/state_store.py --iterations 2000 --backends postgres

Installed third-party Timestep plugins are left out (``TIMESTEP_LOAD_PLUGINS`` defaults to
empty here; set it to measure with some loaded): the benchmark is about the core store.

The exit code is 0 whatever the figures; it is 1 only when PostgreSQL was asked for explicitly
(``--backends``) and cannot be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sqlite3
import sys
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import aiosqlite
import asyncpg
from _timing import Samples, interleaved, percentile_ms
from agents import Agent, RunState, function_tool
from agents.testing import ScriptedModel, function_call

import timestep
from timestep.storage import close_backends

TARGET_RATIO = 1.3
BACKENDS = ("sqlite", "postgres")
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/timestep_bench"
FLOOR_TABLE = "bench_floor_states"


@function_tool(needs_approval=True)
def delete_file(path: str) -> str:
    """Delete the file at ``path``."""
    return f"deleted {path}"


def build_agent() -> Agent[Any]:
    model = ScriptedModel([[function_call("delete_file", {"path": "/tmp/x"}, call_id="c1")]])
    return Agent(name="Ops", model=model, tools=[delete_file])


async def paused_state(agent: Agent[Any]) -> RunState[Any, Any]:
    result = await timestep.run_agent(agent, "clean up /tmp/x")
    if not result.interruptions:
        raise RuntimeError("the scripted run did not pause for approval")
    return result.to_state()


class Floor(Protocol):
    """One raw driver connection holding the serialized state in a two-column table."""

    async def upsert(self, key: str, value: str) -> None: ...

    async def fetch(self, key: str) -> str: ...

    async def delete(self, key: str) -> None: ...

    async def close(self) -> None: ...


class SQLiteFloor:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    @classmethod
    async def open(cls, path: Path) -> SQLiteFloor:
        # Same setup as Timestep's engine: autocommit driver, explicit BEGIN, WAL.
        conn = await aiosqlite.connect(path, timeout=30, isolation_level=None)
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA busy_timeout=30000")
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {FLOOR_TABLE} (k TEXT PRIMARY KEY, v TEXT NOT NULL)"
        )
        return cls(conn)

    async def upsert(self, key: str, value: str) -> None:
        await self._conn.execute("BEGIN")
        try:
            await self._conn.execute(
                f"INSERT INTO {FLOOR_TABLE} (k, v) VALUES (?, ?) "
                "ON CONFLICT (k) DO UPDATE SET v = excluded.v",
                (key, value),
            )
        except BaseException:
            await self._conn.execute("ROLLBACK")
            raise
        await self._conn.execute("COMMIT")

    async def fetch(self, key: str) -> str:
        async with self._conn.execute(f"SELECT v FROM {FLOOR_TABLE} WHERE k = ?", (key,)) as cur:
            row = await cur.fetchone()
        if row is None:
            raise LookupError(key)
        return str(row[0])

    async def delete(self, key: str) -> None:
        await self._conn.execute(f"DELETE FROM {FLOOR_TABLE} WHERE k = ?", (key,))

    async def close(self) -> None:
        await self._conn.close()


class PostgresFloor:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    @classmethod
    async def open(cls, dsn: str) -> PostgresFloor:
        conn = await asyncpg.connect(dsn, timeout=10)
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {FLOOR_TABLE} (k text PRIMARY KEY, v text NOT NULL)"
        )
        return cls(conn)

    async def upsert(self, key: str, value: str) -> None:
        await self._conn.execute(
            f"INSERT INTO {FLOOR_TABLE} (k, v) VALUES ($1, $2) "
            "ON CONFLICT (k) DO UPDATE SET v = excluded.v",
            key,
            value,
        )

    async def fetch(self, key: str) -> str:
        value = await self._conn.fetchval(f"SELECT v FROM {FLOOR_TABLE} WHERE k = $1", key)
        if value is None:
            raise LookupError(key)
        return str(value)

    async def delete(self, key: str) -> None:
        await self._conn.execute(f"DELETE FROM {FLOOR_TABLE} WHERE k = $1", key)

    async def close(self) -> None:
        await self._conn.close()


class PostgresUnavailable(Exception):
    """The PostgreSQL server or the bench database cannot be reached."""


async def ensure_pg_database(url: str) -> None:
    """Create the database named in ``url`` when missing, via the ``postgres`` database."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name:
        raise PostgresUnavailable(f"{url!r} names no database")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    try:
        admin = await asyncpg.connect(admin_url, timeout=10)
    except (OSError, TimeoutError, asyncpg.PostgresError) as error:
        raise PostgresUnavailable(f"{type(error).__name__}: {error}") from error
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            quoted = '"' + name.replace('"', '""') + '"'
            # Another bench run may create it between the check and here.
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                await admin.execute(f"CREATE DATABASE {quoted}")
    finally:
        await admin.close()


@dataclass
class Row:
    backend: str
    operation: str
    samples: Samples


async def bench_backend(
    backend: str,
    url: str,
    floor: Floor,
    agent: Agent[Any],
    state: RunState[Any, Any],
    args: argparse.Namespace,
) -> list[Row]:
    key = f"bench-{uuid.uuid4().hex[:12]}"
    store = timestep.RunStateStore(agent=agent, session_id=key, url=url)

    async def timestep_save() -> None:
        await store.save(state, overwrite=True)

    async def timestep_load() -> None:
        await store.load()

    async def floor_save() -> None:
        await floor.upsert(key, state.to_string())

    async def floor_load() -> None:
        await RunState.from_string(agent, await floor.fetch(key))

    # Both rows exist before anything is timed (the first Timestep save also migrates).
    await timestep_save()
    await floor_save()
    options = {"iterations": args.iterations, "warmup": args.warmup, "block": args.block}
    try:
        save = await interleaved(timestep_save, floor_save, **options)
        load = await interleaved(timestep_load, floor_load, **options)
    finally:
        await store.clear()
        await floor.delete(key)
    return [Row(backend, "save", save), Row(backend, "load", load)]


async def run_sqlite(
    agent: Agent[Any], state: RunState[Any, Any], args: argparse.Namespace
) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="timestep-bench-") as folder:
        path = Path(folder) / "bench.db"
        floor = await SQLiteFloor.open(path)
        try:
            return await bench_backend("sqlite", f"sqlite:///{path}", floor, agent, state, args)
        finally:
            await floor.close()
            await close_backends()  # release the file before the folder goes


async def run_postgres(
    agent: Agent[Any], state: RunState[Any, Any], args: argparse.Namespace
) -> list[Row]:
    await ensure_pg_database(args.pg_url)
    try:
        floor = await PostgresFloor.open(args.pg_url)
    except (OSError, TimeoutError, asyncpg.PostgresError) as error:
        raise PostgresUnavailable(f"{type(error).__name__}: {error}") from error
    try:
        return await bench_backend("postgres", args.pg_url, floor, agent, state, args)
    finally:
        await floor.close()


def print_report(rows: list[Row], args: argparse.Namespace, state: RunState[Any, Any]) -> None:
    print(
        f"iterations={args.iterations} warmup={args.warmup} block={args.block} "
        f"state={len(state.to_string())} bytes (to_string) "
        f"python={sys.version.split()[0]} sqlite={sqlite3.sqlite_version}"
    )
    header = (
        f"{'backend':<9} {'op':<5} {'timestep p50':>12} {'p99':>8} "
        f"{'floor p50':>10} {'p99':>8} {'ratio p50':>9} {'p99':>6}"
    )
    print(header)
    print("-" * len(header))
    verdicts: dict[str, list[str]] = {}
    worst: dict[str, float] = {}
    for row in rows:
        ts50 = percentile_ms(row.samples.subject, 0.50)
        ts99 = percentile_ms(row.samples.subject, 0.99)
        fl50 = percentile_ms(row.samples.baseline, 0.50)
        fl99 = percentile_ms(row.samples.baseline, 0.99)
        ratio50, ratio99 = ts50 / fl50, ts99 / fl99
        print(
            f"{row.backend:<9} {row.operation:<5} {ts50:>9.3f} ms {ts99:>8.3f} "
            f"{fl50:>7.3f} ms {fl99:>8.3f} {ratio50:>8.2f}x {ratio99:>5.2f}x"
        )
        verdicts.setdefault(row.backend, []).append(f"{row.operation} {ratio50:.2f}x")
        worst[row.backend] = max(worst.get(row.backend, 0.0), ratio50)
    print()
    for backend, parts in verdicts.items():
        within = worst[backend] <= TARGET_RATIO
        verdict = "within" if within else "NOT within"
        print(f"{backend}: {verdict} {TARGET_RATIO}x of the floor at p50 ({', '.join(parts)})")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--iterations", type=int, default=500, help="measured runs per case")
    parser.add_argument("--warmup", type=int, default=50, help="untimed runs per side first")
    parser.add_argument("--block", type=int, default=25, help="runs per side before switching")
    parser.add_argument(
        "--backends",
        default=None,
        help=f"comma-separated subset of {','.join(BACKENDS)} (default: both)",
    )
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="bench PostgreSQL database")
    args = parser.parse_args(argv)
    args.backends_explicit = args.backends is not None
    chosen = [b.strip() for b in (args.backends or ",".join(BACKENDS)).split(",") if b.strip()]
    unknown = sorted(set(chosen) - set(BACKENDS))
    if unknown or not chosen:
        parser.error(f"--backends takes {','.join(BACKENDS)}; got {args.backends!r}")
    if args.iterations < 1 or args.warmup < 0 or args.block < 1:
        parser.error("--iterations and --block must be positive, --warmup not negative")
    args.backends = chosen
    return args


async def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # Measure the core store, not whatever plugins happen to be installed in this environment.
    os.environ.setdefault("TIMESTEP_LOAD_PLUGINS", "")
    agent = build_agent()
    state = await paused_state(agent)
    rows: list[Row] = []
    code = 0
    try:
        for backend in args.backends:
            if backend == "sqlite":
                rows += await run_sqlite(agent, state, args)
                continue
            try:
                rows += await run_postgres(agent, state, args)
            except PostgresUnavailable as error:
                print(f"postgres: skipped, cannot reach {args.pg_url}: {error}", file=sys.stderr)
                if args.backends_explicit:
                    code = 1
    finally:
        await close_backends()
    if rows:
        print_report(rows, args, state)
    return code


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
