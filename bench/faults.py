"""What faults do to stored runs: a PostgreSQL restart under load, writers racing, people
deciding at once, forged durable decisions and failing calls, hostile input, event loops
nobody closes Timestep in, readers next to a writer, and a workflow worker that dies for good.

Eight runs, the same ones the tests assert on, printed as figures:

* outage: writer and reader tasks save and load real paused ``RunState`` s on a private
  PostgreSQL server (initdb'd into a temporary folder, never the shared one) while it is
  stopped (``pg_ctl stop -m fast``) and started again. Printed: saves attempted, acknowledged
  and found after the outage (must be equal: nothing acknowledged is lost), and loads
  attempted, succeeded and failed with ``StorageUnavailableError``.
* concurrency: N OS processes x M saves on a few shared sessions (SQLite file, and the private
  PostgreSQL server). Printed: saves attempted, landed, conflicts detected (each
  ``StateConflictError``), and lost updates (acknowledged saves no later state builds on:
  must be 0).
* decisions: pairs of OS processes that both loaded the same paused run, then decide on it at
  once (approve + approve, approve + reject) and resume it, as two supervisors clicking on one
  approvals page do (tests/ops_process.py, the process tests/test_decisions.py races).
  Printed per backend: pairs raced, tools executed twice, losers refused with
  ``DecisionConflictError`` before their tool ran, rows that disagree with what ran (a
  rejection stored while the tool ran, or the reverse), and runs left pending (all but the
  refusals must be 0).
* security: a durable worker with ``TIMESTEP_STATE_KEY`` parks runs on an approval, and decisions
  are forged as a process with database access and no key would (a bare DBOS message, a row
  inserted into ``timestep_workflow_decisions``, ``approve_workflow`` without the key). Then
  durable runs fail with secrets set: model calls answered 401 and 500, a model server that
  refuses connections, a tool raising an ``httpx.HTTPStatusError`` with an ``Authorization``
  header, a guardrail whose error quotes a key; every table is scanned for the secrets
  (tests/test_secrets.py's scanner). Printed per backend: forged decisions tried and refused
  (must be equal, no forged decision ran a tool) and secrets found at rest (must be 0).
* hostile input: random stored payloads, session ids, database URLs and command lines
  (bench/_hostile.py, the generators of tests/test_hostile_input.py with a fixed seed), on
  SQLite and the private PostgreSQL server. Printed: cases tried and handled per kind (handled:
  a ``TimestepError`` or success, in time, with no row changed that should not be).
* loops: ``asyncio.run(save + load)`` per call, 500 times, never calling ``timestep.aclose()``
  (a sync web handler, a Celery task). Printed per backend: threads and files left open in the
  process and, on PostgreSQL, the server's connections to the database (goal: within one pool,
  15). tests/test_resource_hygiene.py asserts it.
* readers: fresh readers (each a new event loop, as each CLI call is a new process) list and
  load while another process holds a write transaction open. Printed: readers that failed and
  the slowest read (goal: no wait for the writer; on SQLite a wait costs the 30 s busy
  timeout). tests/test_concurrency.py asserts it.
* fleet: 3 durable-workflow worker processes of one program, default configuration (no
  executor ids), share a queue on the private PostgreSQL server; one is killed mid-load
  (``kill -9``) and never restarted. Printed: runs succeeded, lost and left pending (0 and 0),
  tool calls completed twice (0), calls (model, tool, guardrail) the kill cut short that ran
  again, and how long after the kill the live workers started on the dead one's runs (p50 and
  max; bounded by ``dead_after`` plus a heartbeat, 30 + 5 s by default).

The machinery lives in tests/ (tests/pg_cluster.py, tests/outage_load.py,
tests/concurrency_worker.py, tests/ops_process.py, tests/fleet_load.py) and is imported from
there: the tests run it on every CI run, so the figures here come from exactly the code the
tests check.

Run from the repository root::

    .venv/bin/python bench/faults.py
    .venv/bin/python bench/faults.py --processes 8 --saves 500 --backends postgres
    .venv/bin/python bench/faults.py --parts decisions --pairs 50
    .venv/bin/python bench/faults.py --parts loops,readers --loops 500
    .venv/bin/python bench/faults.py --parts fleet --fleet-runs 30 --dead-after 10
    .venv/bin/python bench/faults.py --parts security --forgeries 9

The exit code is 0 when every invariant held, 1 otherwise (lost or missing saves, unexpected
errors), and 2 when no private PostgreSQL server can be started here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import asyncpg
import ops_process
from _hostile import hostile_cases
from concurrency_worker import audit, final_rows, run_workers
from fleet_load import run_fleet
from outage_load import run_through_outage
from pg_cluster import ClusterUnavailable, PrivateCluster

from timestep import RunStateStore, TimestepError
from timestep.storage import close_backends

BACKENDS = ("sqlite", "postgres")
PARTS = ("outage", "concurrency", "decisions", "hostile", "loops", "readers", "fleet", "security")


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


def _decide(url: str, session: str, decision: str, folder: str) -> str:
    """One decider process: load, wait for the other, decide, resume, save. Returns
    ``"won"`` or the name of the ``TimestepError`` that stopped it."""

    async def run() -> str:
        try:
            flags = ["--ledger", f"{folder}/ledger", "--together", folder, "2"]
            await ops_process.main("resume", url, session, [decision, *flags])
            return "won"
        except TimestepError as error:
            return type(error).__name__
        finally:
            await close_backends()

    return asyncio.run(run())


def decisions(backend: str, url: str, folder: Path, pairs: int) -> bool:
    began = time.monotonic()
    figures = dict.fromkeys(
        (
            "pairs raced",
            "tools executed twice",
            "losers refused (DecisionConflictError)",
            "losers stopped otherwise",
            "rows that disagree with what ran",
            "runs left pending",
        ),
        0,
    )
    context = multiprocessing.get_context("forkserver")
    with context.Pool(2) as pool:
        for index in range(pairs):
            pair = ("approve", "approve") if index % 2 == 0 else ("approve", "reject")
            session, where = f"pair-{index}", folder / f"pair-{index}"
            where.mkdir()
            (where / "ledger").touch()
            asyncio.run(_pause(url, session))
            outcomes = pool.starmap(_decide, [(url, session, d, str(where)) for d in pair])
            executed = len((where / "ledger").read_text().splitlines())
            row = asyncio.run(_row(url, session))
            figures["pairs raced"] += 1
            figures["tools executed twice"] += executed > 1
            losers = [outcome for outcome in outcomes if outcome != "won"]
            refused = [o for o in losers if o == "DecisionConflictError"]
            figures["losers refused (DecisionConflictError)"] += len(refused)
            figures["losers stopped otherwise"] += len(losers) - len(refused)
            ran_in_row = row is not None and "deleted /tmp/x" in row.state
            figures["rows that disagree with what ran"] += ran_in_row != (executed > 0)
            figures["runs left pending"] += row is None or row.status.value != "completed"
    title = f"decisions: {pairs} pairs of processes deciding on one paused run, {backend}"
    print_figures(title, figures, time.monotonic() - began)
    return (
        figures["tools executed twice"]
        + figures["losers stopped otherwise"]
        + figures["rows that disagree with what ran"]
        + figures["runs left pending"]
    ) == 0


async def _pause(url: str, session: str) -> None:
    try:
        await ops_process.main("pause", url, session, [])
    finally:
        await close_backends()


async def _row(url: str, session: str) -> Any:
    agent = ops_process.build_agent([], [])
    try:
        return await RunStateStore(agent=agent, session_id=session, url=url).info()
    finally:
        await close_backends()


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


# --- loops: an event loop per call, never aclose() -------------------------------------------

POOL_LIMIT = 15  # pool_size 5 + max_overflow 10 (timestep/storage/sql.py)


def loops(backend: str, url: str, calls: int) -> bool:
    """``asyncio.run(store.save/load)`` per call, as a sync web handler or a Celery task does,
    with no ``timestep.aclose()``: the connections, threads and files left afterwards."""
    from scenario import paused_run

    began = time.monotonic()
    agent, paused = asyncio.run(paused_run())
    state = paused.to_state()

    async def request(number: int) -> None:
        session = f"loop-{number}"
        await RunStateStore(agent=agent, session_id=session, url=url).save(state)
        await RunStateStore(agent=agent, session_id=session, url=url).load()

    # The server is watched through one connection of its own, opened before the calls (on
    # a loop kept aside), so a server that refuses new clients can still be counted.
    watcher_loop = asyncio.new_event_loop()
    watcher = (
        watcher_loop.run_until_complete(asyncpg.connect(url, timeout=10))
        if backend == "postgres"
        else None
    )

    def server_connections() -> int:
        if watcher is None:
            return 0
        count: int = watcher_loop.run_until_complete(
            watcher.fetchval(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        return count

    files_before = len(os.listdir("/proc/self/fd"))
    threads_before = threading.active_count()
    peak, failed, first_failed = 0, 0, 0
    try:
        for number in range(calls):
            try:
                asyncio.run(request(number))
            except TimestepError:
                failed += 1
                first_failed = first_failed or number + 1
            if number % 25 == 24:
                peak = max(peak, server_connections())
        figures = {
            "calls, each in its own event loop": calls,
            "calls that failed": failed,
            "first call that failed (0: none)": first_failed,
            f"threads left open (goal <= {POOL_LIMIT})": threading.active_count() - threads_before,
            "files left open": len(os.listdir("/proc/self/fd")) - files_before,
        }
        if watcher is not None:
            figures[f"server connections after (goal <= {POOL_LIMIT})"] = server_connections()
            figures[f"server connections, most seen (goal <= {POOL_LIMIT})"] = peak
    finally:
        if watcher is not None:
            watcher_loop.run_until_complete(watcher.close())
        watcher_loop.close()
    title = f"loops: {calls} calls of asyncio.run() without aclose(), {backend}"
    print_figures(title, figures, time.monotonic() - began)
    return failed == 0 and all(
        value <= POOL_LIMIT for label, value in figures.items() if "goal" in label
    )


# --- readers: reading while another process writes --------------------------------------------

_HOLD_SQLITE = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
conn.execute("UPDATE timestep_run_states SET current_agent = current_agent")
print("held", flush=True)
sys.stdin.read()
conn.rollback()
"""

_HOLD_POSTGRES = """
import asyncio, sys, asyncpg
async def hold():
    conn = await asyncpg.connect(sys.argv[1])
    async with conn.transaction():
        await conn.execute("UPDATE timestep_run_states SET current_agent = current_agent")
        print("held", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await conn.close()
asyncio.run(hold())
"""


def readers(backend: str, url: str, count: int) -> bool:
    """Fresh readers (each a new event loop, as each CLI call is a new process) list and load
    while another process holds a write transaction open on every row."""
    from scenario import paused_run

    began = time.monotonic()

    async def prepare() -> Any:
        agent, paused = await paused_run()
        await RunStateStore(agent=agent, session_id="ticket-1", url=url).save(paused)
        return agent

    agent = asyncio.run(prepare())
    target = url.removeprefix("sqlite:///") if backend == "sqlite" else url
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_SQLITE if backend == "sqlite" else _HOLD_POSTGRES, target],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    waits: list[float] = []
    failures = 0
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"

        async def read() -> None:
            store = RunStateStore(agent=agent, session_id="ticket-1", url=url)
            await asyncio.wait_for(store.list(), timeout=60)
            await asyncio.wait_for(store.load(), timeout=60)

        for _ in range(count):
            started = time.monotonic()
            try:
                asyncio.run(read())
            except (TimestepError, TimeoutError):
                failures += 1
            waits.append(time.monotonic() - started)
    finally:
        if holder.stdin is not None:
            holder.stdin.close()
        holder.wait(timeout=30)
    waits.sort()
    figures = {
        "fresh readers (schema check, list, load)": count,
        "readers that failed": failures,
        "median read, ms": round(1000 * waits[len(waits) // 2]),
        "slowest read, ms (goal: no lock wait)": round(1000 * waits[-1]),
    }
    title = f"readers: while another process holds a write transaction, {backend}"
    print_figures(title, figures, time.monotonic() - began)
    # A wait for the writer would take the 30 s busy timeout (SQLite); allow a slow machine.
    return failures == 0 and waits[-1] < 5


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


def security(backend: str, url: str, forgeries: int) -> bool:
    """The security part (see the module docs): forged decisions, secrets after failures."""
    from workflow_support import launched

    began = time.monotonic()
    fakes = Path(__file__).resolve().parents[1] / "plugins" / "timestep-ollama" / "tests"
    sys.path.append(str(fakes))
    from fake_openai import FakeOpenAI

    server = FakeOpenAI()
    server.start()
    saved = {name: os.environ.get(name) for name in _SECURITY_ENV}
    warnings: list[str] = []
    handler = _ListHandler(warnings)
    logging.getLogger("timestep").addHandler(handler)
    try:
        os.environ["TIMESTEP_STATE_KEY"] = "bench-" + "k" * 40
        os.environ["OPENAI_BASE_URL"] = server.base_url
        with launched(url, log_level="WARNING"):
            figures = asyncio.run(_security_scenarios(url, server, forgeries, warnings))
    finally:
        logging.getLogger("timestep").removeHandler(handler)
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    print_figures(f"security, {backend}", figures, time.monotonic() - began)
    return (
        figures["forged decisions refused"] == figures["forged decisions tried"]
        and figures["tools a forged decision ran"] == 0
        and figures["secrets found at rest after failing calls"] == 0
    )


_SECURITY_ENV = ("TIMESTEP_STATE_KEY", "OPENAI_BASE_URL", "OPENAI_API_KEY")


class _ListHandler(logging.Handler):
    def __init__(self, messages: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.messages = messages

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def _security_scenarios(
    url: str, server: Any, forgeries: int, warnings: list[str]
) -> dict[str, int]:
    from test_secrets import SECRETS, scan_database
    from workflow_support import Recorder, clerk, parked

    from timestep.run import _reset_default_model_provider, close_default_model_provider
    from timestep.workflows import approve_workflow, register_agent, run_agent_workflow

    figures = dict.fromkeys(
        (
            "forged decisions tried",
            "forged decisions refused",
            "tools a forged decision ran",
            "failing calls run",
            "secrets found at rest after failing calls",
        ),
        0,
    )
    recorder = Recorder()
    assistant = register_agent(clerk(recorder, approval=True))
    try:
        for index in range(forgeries):
            how = ("message", "row", "keyless approve")[index % 3]
            workflow_id = f"forged-{index}"
            running = asyncio.create_task(
                run_agent_workflow(agent=assistant, input_items="Refund 7", workflow_id=workflow_id)
            )
            await parked(workflow_id, url=url)
            ran_before = recorder.starts("tool:c3")
            figures["forged decisions tried"] += 1
            refused = await _forge(url, workflow_id, how, warnings)
            figures["forged decisions refused"] += refused and not running.done()
            # A key holder's decision ends the run; a forged approval would have run the tool.
            await approve_workflow(workflow_id, approve=False, rejection_message="No.", by="ops")
            await asyncio.wait_for(running, 60)
            figures["tools a forged decision ran"] += recorder.starts("tool:c3") - ran_before

        os.environ["OPENAI_API_KEY"] = SECRETS["OPENAI_API_KEY"]
        _reset_default_model_provider()
        for failure in _FAILURES:
            figures["failing calls run"] += 1
            agent = register_agent(_failing_agent(failure, server))
            with contextlib.suppress(Exception):  # failing is the point
                await run_agent_workflow(agent, "Go", workflow_id=f"fails-{failure}")
            if failure == "connection refused":
                os.environ["OPENAI_BASE_URL"] = server.base_url
                _reset_default_model_provider()
        figures["secrets found at rest after failing calls"] = len(scan_database(url))
    finally:
        await close_default_model_provider()
        await close_backends()
    return figures


_FAILURES = ("401", "500", "connection refused", "tool", "guardrail")


async def _forge(url: str, workflow_id: str, how: str, warnings: list[str]) -> bool:
    """Decide as a process without the key would; whether the worker refused it."""
    from datetime import UTC, datetime

    from dbos import DBOS

    from timestep.errors import StateIntegrityError
    from timestep.storage import SQLStateBackend, get_backend
    from timestep.storage.schema import workflow_decisions
    from timestep.workflows import approve_workflow
    from timestep.workflows.approvals import APPROVAL_TOPIC

    if how == "keyless approve":
        # Only this call goes without the key: the worker in this process keeps it.
        key = os.environ.pop("TIMESTEP_STATE_KEY")
        try:
            await approve_workflow(workflow_id, approve=True, by="mallory")
        except StateIntegrityError:
            return True
        finally:
            os.environ["TIMESTEP_STATE_KEY"] = key
        return False
    if how == "row":
        backend = get_backend(url)
        assert isinstance(backend, SQLStateBackend)
        async with backend.transaction() as conn:
            await conn.execute(
                workflow_decisions.insert().values(
                    workflow_id=workflow_id,
                    call_id="c3",
                    decision="approved",
                    decided_by="mallory",
                    decided_at=datetime.now(UTC),
                )
            )
    decision = {"call_id": "c3", "approve": True, "rejection_message": None}
    await DBOS.send_async(workflow_id, {"decisions": [decision]}, APPROVAL_TOPIC)
    # The worker logs each refusal, naming the workflow.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(repr(workflow_id) in message for message in warnings):
            return True
        await asyncio.sleep(0.05)
    return False


def _failing_agent(failure: str, server: Any) -> Any:
    import httpx
    from agents import Agent, GuardrailFunctionOutput, function_tool, input_guardrail
    from agents.testing import ScriptedModel, assistant_message, function_call
    from fake_openai import Reply
    from test_secrets import GATEWAY_HEADERS, SECRETS

    name = "Fails" + "".join(part.title() for part in failure.split())
    if failure in ("401", "500"):
        server.reply(*[Reply(status=int(failure))] * 3)
        return Agent(name=name, model="gpt-4.1-mini")
    if failure == "connection refused":
        os.environ["OPENAI_BASE_URL"] = "http://127.0.0.1:9/v1"
        from timestep.run import _reset_default_model_provider

        _reset_default_model_provider()
        return Agent(name=name, model="gpt-4.1-mini")
    if failure == "tool":

        @function_tool(failure_error_function=None)
        async def crm(order: str) -> str:
            """Look an order up."""
            request = httpx.Request("GET", "https://crm.example/o", headers=GATEWAY_HEADERS)
            response = httpx.Response(401, request=request)
            raise httpx.HTTPStatusError("401", request=request, response=response)

        model = ScriptedModel([[function_call("crm", {"order": "7"}, call_id="c1")]])
        return Agent(name=name, model=model, tools=[crm])

    @input_guardrail
    async def policy(context: Any, agent: Any, user_input: Any) -> GuardrailFunctionOutput:
        raise RuntimeError(f"policy service refused key {SECRETS['OPENAI_API_KEY']}")

    model = ScriptedModel([[assistant_message("ok")]])
    return Agent(name=name, model=model, input_guardrails=[policy])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--writers", type=int, default=4, help="outage: writer tasks")
    parser.add_argument("--readers", type=int, default=2, help="outage: reader tasks")
    parser.add_argument("--processes", type=int, default=8, help="concurrency: processes")
    parser.add_argument("--saves", type=int, default=500, help="concurrency: saves each")
    parser.add_argument("--sessions", type=int, default=4, help="concurrency: shared sessions")
    parser.add_argument("--pairs", type=int, default=50, help="decisions: racing pairs")
    parser.add_argument("--hostile", type=int, default=50, help="hostile input: cases per kind")
    parser.add_argument("--loops", type=int, default=500, help="loops: asyncio.run() calls")
    parser.add_argument(
        "--fresh-readers", type=int, default=20, help="readers: readers, each a new loop"
    )
    parser.add_argument(
        "--forgeries", type=int, default=6, help="security: forged decisions per backend"
    )
    parser.add_argument(
        "--backends", default=",".join(BACKENDS), help="concurrency: sqlite,postgres"
    )
    parser.add_argument("--fleet-runs", type=int, default=12, help="fleet: runs queued")
    parser.add_argument("--fleet-delay", type=float, default=0.3, help="fleet: seconds per call")
    parser.add_argument(
        "--dead-after", type=float, help="fleet: TIMESTEP_WORKER_DEAD_AFTER (default 30 s)"
    )
    parser.add_argument("--parts", default=",".join(PARTS), help="which runs: " + ",".join(PARTS))
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
        ["timestep", "timestep.workflows", "agents.testing", "asyncpg", "aiosqlite", "ops_process"]
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

            def database(backend: str, sqlite_file: Path) -> str:
                """A fresh database for one part: ``sqlite_file``, or one on the cluster."""
                if backend == "sqlite":
                    return f"sqlite:///{sqlite_file}"
                return asyncio.run(create_database(cluster))

            if "outage" in args.parts:
                ok &= asyncio.run(outage(cluster, args))
                print()
            for backend in args.backends if "concurrency" in args.parts else ():
                folder = Path(home) / backend
                folder.mkdir()
                url = database(backend, folder / "faults.db")
                ok &= concurrency(backend, url, folder, args)
                print()

            for backend in args.backends if "decisions" in args.parts else ():
                folder = Path(home) / f"decisions-{backend}"
                folder.mkdir()
                url = database(backend, folder / "decisions.db")
                ok &= decisions(backend, url, folder, args.pairs)
                print()

            for backend in args.backends if "hostile" in args.parts else ():
                url = database(backend, Path(home) / "hostile.db")
                ok &= asyncio.run(hostile(backend, url, args.hostile))
                print()

            for backend in args.backends if "loops" in args.parts else ():
                url = database(backend, Path(home) / "loops.db")
                ok &= loops(backend, url, args.loops)
                print()

            for backend in args.backends if "readers" in args.parts else ():
                url = database(backend, Path(home) / "readers.db")
                ok &= readers(backend, url, args.fresh_readers)
                print()

            if "fleet" in args.parts:
                folder = Path(home) / "fleet"
                folder.mkdir()
                ok &= fleet(asyncio.run(create_database(cluster)), folder, args)
                print()

            for backend in args.backends if "security" in args.parts else ():
                url = database(backend, Path(home) / "security.db")
                ok &= security(backend, url, args.forgeries)
                print()

    finally:
        cluster.destroy()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
