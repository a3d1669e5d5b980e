"""What faults do to stored runs: a PostgreSQL restart under load, writers racing, hostile
input, and a workflow worker that dies for good.

Four runs, the same ones the tests assert on, printed as figures:

* outage: writer and reader tasks save and load real paused ``RunState`` s on a private
  PostgreSQL server (initdb'd into a temporary folder, never the shared one) while it is
  stopped (``pg_ctl stop -m fast``) and started again. Printed: saves attempted, acknowledged
  and found after the outage (must be equal: nothing acknowledged is lost), and loads
  attempted, succeeded and failed with ``StorageUnavailableError``.
* concurrency: N OS processes x M saves on a few shared sessions (SQLite file, and the private
  PostgreSQL server). Printed: saves attempted, landed, conflicts detected (each
  ``StateConflictError``), and lost updates (acknowledged saves no later state builds on:
  must be 0).
* hostile input: random stored payloads, session ids, database URLs and command lines
  (bench/_hostile.py, the generators of tests/test_hostile_input.py with a fixed seed), on
  SQLite and the private PostgreSQL server. Printed: cases tried and handled per kind (handled:
  a ``TimestepError`` or success, in time, with no row changed that should not be).
* fleet: 3 durable-workflow worker processes of one program, default configuration (no
  executor ids), share a queue on the private PostgreSQL server; one is killed mid-load
  (``kill -9``) and never restarted. Printed: runs succeeded, lost and left pending (0 and 0),
  tool calls completed twice (0), calls (model, tool, guardrail) the kill cut short that ran
  again, and how long after the kill the live workers started on the dead one's runs (p50 and
  max; bounded by ``dead_after`` plus a heartbeat, 30 + 5 s by default).

The machinery lives in tests/ (tests/pg_cluster.py, tests/outage_load.py,
tests/concurrency_worker.py, tests/fleet_load.py) and is imported from there: the tests run it
on every CI run, so the figures here come from exactly the code the tests check.

Run from the repository root::

    .venv/bin/python bench/faults.py
    .venv/bin/python bench/faults.py --processes 8 --saves 500 --backends postgres
    .venv/bin/python bench/faults.py --parts fleet --fleet-runs 30 --dead-after 10

The exit code is 0 when every invariant held, 1 otherwise (lost or missing saves, unexpected
errors), and 2 when no private PostgreSQL server can be started here.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import asyncpg
from _hostile import hostile_cases
from concurrency_worker import audit, final_rows, run_workers
from fleet_load import run_fleet
from outage_load import run_through_outage
from pg_cluster import ClusterUnavailable, PrivateCluster

from timestep.storage import close_backends

BACKENDS = ("sqlite", "postgres")
PARTS = ("outage", "concurrency", "hostile", "fleet")


async def create_database(cluster: PrivateCluster) -> str:
    name = f"faults_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(cluster.url("postgres"), timeout=10)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return cluster.url(name)


def print_figures(title: str, figures: dict[str, int], seconds: float) -> None:
    print(f"{title} ({seconds:.1f} s)")
    for label, value in figures.items():
        print(f"  {label:<46} {value:>6}")


async def outage(cluster: PrivateCluster, args: argparse.Namespace) -> bool:
    url = await create_database(cluster)
    began = time.monotonic()
    try:
        result = await run_through_outage(
            url, cluster.stop, cluster.start, writers=args.writers, readers=args.readers
        )
    finally:
        await close_backends()
    print_figures(
        "outage: PostgreSQL stopped and started mid-flight",
        result.figures(),
        (time.monotonic() - began),
    )
    unexpected = {
        a.outcome
        for a in result.attempts
        if a.outcome not in {"ok", "not-found", "StorageUnavailableError", "StateConflictError"}
    }
    if unexpected:
        print(f"  unexpected outcomes: {sorted(unexpected)}")
    return result.found_after() == result.acknowledged() and not unexpected


def concurrency(backend: str, url: str, folder: Path, args: argparse.Namespace) -> bool:
    began = time.monotonic()
    logs = run_workers(
        url, processes=args.processes, saves=args.saves, sessions=args.sessions, folder=folder
    )
    result = audit(logs, asyncio.run(final_rows(url, args.sessions)))
    title = f"concurrency: {args.processes} processes x {args.saves} saves, {backend}"
    print_figures(title, result.figures(), time.monotonic() - began)
    for problem in result.problems[:10]:
        print(f"  problem: {problem}")
    return not result.problems and result.lost_updates == 0


async def hostile(backend: str, url: str, per_kind: int) -> bool:
    began = time.monotonic()
    try:
        counts = await hostile_cases(url, per_kind)
    finally:
        await close_backends()
    figures: dict[str, int] = {}
    for kind, (tried, handled) in counts.items():
        figures[f"{kind} cases tried"] = tried
        figures[f"{kind} cases handled"] = handled
    print_figures(f"hostile input, {backend}", figures, time.monotonic() - began)
    return all(tried == handled for tried, handled in counts.values())


def fleet(url: str, folder: Path, args: argparse.Namespace) -> bool:
    began = time.monotonic()
    env = {}
    if args.dead_after is not None:
        env["TIMESTEP_WORKER_DEAD_AFTER"] = str(args.dead_after)
        env["TIMESTEP_WORKER_HEARTBEAT"] = str(min(5.0, args.dead_after / 6))
    result = run_fleet(
        url, folder, runs=args.fleet_runs, delay=args.fleet_delay, env=env, timeout=300
    )
    figures = result.figures()
    print(
        f"fleet: 3 workers, default config, one killed for good ({time.monotonic() - began:.1f} s)"
    )
    for label, value in figures.items():
        shown = f"{value:>6.1f}" if isinstance(value, float) else f"{value:>6}"
        print(f"  {label:<46} {shown}")
    return result.lost == result.left_pending == result.tools_completed_twice == 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--writers", type=int, default=4, help="outage: writer tasks")
    parser.add_argument("--readers", type=int, default=2, help="outage: reader tasks")
    parser.add_argument("--processes", type=int, default=8, help="concurrency: processes")
    parser.add_argument("--saves", type=int, default=500, help="concurrency: saves each")
    parser.add_argument("--sessions", type=int, default=4, help="concurrency: shared sessions")
    parser.add_argument("--hostile", type=int, default=50, help="hostile input: cases per kind")
    parser.add_argument(
        "--backends", default=",".join(BACKENDS), help="concurrency: sqlite,postgres"
    )
    parser.add_argument("--fleet-runs", type=int, default=12, help="fleet: runs queued")
    parser.add_argument("--fleet-delay", type=float, default=0.3, help="fleet: seconds per call")
    parser.add_argument(
        "--dead-after", type=float, help="fleet: TIMESTEP_WORKER_DEAD_AFTER (default 30 s)"
    )
    parser.add_argument(
        "--parts", default="outage,concurrency,hostile,fleet", help="which parts to run"
    )
    args = parser.parse_args(argv)
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    args.parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if args.parts - set(PARTS):
        parser.error(f"--parts takes {','.join(PARTS)}; got {sorted(args.parts)!r}")
    if set(args.backends) - set(BACKENDS):
        parser.error(f"--backends takes {','.join(BACKENDS)}; got {args.backends!r}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # Measure the core store, not whatever plugins happen to be installed here.
    os.environ.setdefault("TIMESTEP_LOAD_PLUGINS", "")
    # Worker processes fork from a server that imported these once.
    multiprocessing.set_forkserver_preload(
        ["timestep", "timestep.workflows", "agents.testing", "asyncpg", "aiosqlite"]
    )
    try:
        cluster = PrivateCluster.create()
    except ClusterUnavailable as error:
        print(f"cannot start a private PostgreSQL server: {error}", file=sys.stderr)
        return 2
    ok = True
    try:
        with tempfile.TemporaryDirectory(prefix="timestep-faults-") as home:
            # Nothing of the developer's own Timestep set-up is read or written.
            os.environ["TIMESTEP_HOME"] = home
            print(f"private PostgreSQL: initdb + start took {cluster.setup_seconds:.2f} s\n")
            if "outage" in args.parts:
                ok &= asyncio.run(outage(cluster, args))
                print()
            for backend in args.backends if "concurrency" in args.parts else []:
                folder = Path(home) / backend
                folder.mkdir()
                if backend == "sqlite":
                    url = f"sqlite:///{folder}/faults.db"
                else:
                    url = asyncio.run(create_database(cluster))
                ok &= concurrency(backend, url, folder, args)
                print()

            for backend in args.backends if "hostile" in args.parts else []:
                if backend == "sqlite":
                    url = f"sqlite:///{home}/hostile.db"
                else:
                    url = asyncio.run(create_database(cluster))
                ok &= asyncio.run(hostile(backend, url, args.hostile))
                print()

            if "fleet" in args.parts:
                folder = Path(home) / "fleet"
                folder.mkdir()
                ok &= fleet(asyncio.run(create_database(cluster)), folder, args)
                print()

    finally:
        cluster.destroy()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
