"""What durability costs: a durable agent run against a bare run plus DBOS's own floor.

For each backend (an embedded SQLite file in a temporary folder, and PostgreSQL) this measures,
side by side in one process, one agent run of three model calls (tool call, tool call, final
answer) and two tool calls, with a scripted model (no network, so the figures are the SDK's,
Timestep's and DBOS's own cost):

* (a) bare: ``agents.Runner.run(agent, text)``: no workflow, nothing stored
* (b) durable: ``run_agent_workflow(agent=..., input_items=text)``: every model and tool call a
  checkpointed step, plus the final run state stored
* (c) floor: a DBOS workflow of as many empty ``@DBOS.step`` s as (b) records (counted from
  ``list_workflow_steps`` of a real durable run), started and awaited the same way

The target is (b) <= 1.2 x ((a) + (c)): the durable layer may add at most 20 % on top of what
the SDK and DBOS cost by themselves. (b) is sampled interleaved (bench/_timing.py) against an
operation that runs (a) then (c), whose two halves are timed separately, so all three see the
same machine noise. Also measured: queued throughput, i.e. N runs enqueued at once with
``queue_agent_workflow`` on a queue that may run them all concurrently, in runs per second
from the first enqueue until every result is in.

Where (b)'s extra time goes (measured on a 2-CPU machine, SQLite): almost all of it is the
``timestep.state.completed`` step, which serializes the final ``RunState`` (``to_json``, a few
ms of CPU) and writes it to the run-state table; replacing it with an empty step brings (b)
down by ~9 ms, to about (a)+(c). The model and tool steps cost about what empty steps do.

Run from the repository root::

    .venv/bin/python bench/workflows.py
    .venv/bin/python bench/workflows.py --iterations 200 --backends sqlite --queued 200

PostgreSQL is reached at ``--pg-url`` (default
``postgresql://postgres@127.0.0.1:5432/timestep_bench_workflows``), created when missing and
emptied first, so the benchmark never touches test data.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from agents import Agent, Model, ModelResponse, RunConfig, Runner, Usage, function_tool
from agents.testing import assistant_message, function_call
from dbos import DBOS

from timestep.storage import close_backends
from timestep.workflows import (
    configure_dbos,
    ensure_dbos_launched,
    queue_agent_workflow,
    register_agent,
    register_agent_queue,
    run_agent_workflow,
    shutdown_dbos,
    unregister_agent,
)

sys.path.insert(0, str(Path(__file__).parent))
from _timing import Samples, interleaved, percentile_ms

TARGET = 1.2
TEXT = "Where are orders 7 and 8?"


class ThreeTurns(Model):
    """Tool call, tool call, final answer, by the turn read off the input.

    Reading the turn off the input (not popping a script) keeps concurrent queued runs correct.
    """

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        model_input = args[1] if len(args) > 1 else kwargs["input"]
        outputs = sum(
            1
            for item in model_input
            if isinstance(item, dict) and item.get("type") == "function_call_output"
        )
        reply = {
            0: function_call("lookup", {"order": "7"}, call_id="c1"),
            1: function_call("lookup", {"order": "8"}, call_id="c2"),
        }.get(outputs) or assistant_message("Both shipped.")
        return ModelResponse(output=[reply], usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


def build_agent() -> Agent[Any]:
    @function_tool
    def lookup(order: str) -> str:
        """Look up an order."""
        return f"order {order}: shipped"

    return Agent(name="BenchClerk", model=ThreeTurns(), tools=[lookup])


@DBOS.step(name="bench.empty")
async def empty_step() -> None:
    return None


@DBOS.workflow(name="bench.floor")
async def floor_workflow(steps: int) -> int:
    for _ in range(steps):
        await empty_step()
    return steps


def ms(values: list[int], fraction: float) -> str:
    return f"{percentile_ms(values, fraction):8.2f}"


async def bench(url: str, iterations: int, queued: int) -> list[str]:
    configure_dbos(url, notification_listener_polling_interval_sec=0.01)
    ensure_dbos_launched()
    try:
        agent = register_agent(build_agent())
        bare_config = RunConfig(tracing_disabled=True)

        async def bare() -> None:
            result = await Runner.run(agent, TEXT, run_config=bare_config)
            assert result.final_output == "Both shipped."

        async def durable() -> None:
            result = await run_agent_workflow(agent=agent, input_items=TEXT)
            assert result.final_output == "Both shipped."

        probe = await run_agent_workflow(agent=agent, input_items=TEXT)
        recorded = await DBOS.list_workflow_steps_async(probe.workflow_id)
        steps = len(recorded)

        async def floor() -> None:
            handle = await DBOS.start_workflow_async(floor_workflow, steps)
            await handle.get_result()

        parts: dict[str, list[int]] = {"a": [], "c": []}

        async def bare_then_floor() -> None:
            clock = time.perf_counter_ns
            start = clock()
            await bare()
            middle = clock()
            await floor()
            parts["a"].append(middle - start)
            parts["c"].append(clock() - middle)

        samples: Samples = await interleaved(
            durable, bare_then_floor, iterations=iterations, warmup=10, block=10
        )
        # Warm-up calls recorded parts too; keep the timed ones only.
        for key in parts:
            parts[key] = parts[key][-iterations:]

        throughput = await queued_throughput(agent, queued)
        lines = [
            f"  steps a durable run records: {steps} "
            f"({', '.join(str(s['function_name']) for s in recorded)})",
            "                                       p50 ms    p90 ms",
            f"  (a) bare Runner.run               {ms(parts['a'], 0.5)}  {ms(parts['a'], 0.9)}",
            f"  (b) durable run_agent_workflow    {ms(samples.subject, 0.5)}  "
            f"{ms(samples.subject, 0.9)}",
            f"  (c) floor: DBOS wf, {steps} empty steps  {ms(parts['c'], 0.5)}  "
            f"{ms(parts['c'], 0.9)}",
            f"  (a)+(c), timed together           {ms(samples.baseline, 0.5)}  "
            f"{ms(samples.baseline, 0.9)}",
        ]
        for label, fraction in (("p50", 0.5), ("p90", 0.9)):
            ratio = samples.ratio(fraction)
            verdict = "met" if ratio <= TARGET else "NOT met"
            lines.append(
                f"  (b) / ((a)+(c)) at {label}: {ratio:.2f}x  (target <= {TARGET}x: {verdict})"
            )
        extra = percentile_ms(samples.subject, 0.5) - percentile_ms(samples.baseline, 0.5)
        lines.append(
            f"  extra time of (b) over (a)+(c) at p50: {extra:.2f} ms per run, "
            f"{extra / steps:.2f} ms per step"
        )
        lines.append(throughput)
        return lines
    finally:
        unregister_agent("BenchClerk")
        shutdown_dbos()
        await close_backends()


async def queued_throughput(agent: Agent[Any], runs: int) -> str:
    """Enqueue ``runs`` durable runs at once; runs per second until every result is in."""
    await register_agent_queue(
        "bench-throughput", worker_concurrency=runs, polling_interval_sec=0.01
    )
    start = time.perf_counter()
    handles = [
        await queue_agent_workflow(agent=agent, input_items=TEXT, queue="bench-throughput")
        for _ in range(runs)
    ]
    enqueued = time.perf_counter() - start
    results = await asyncio.gather(
        *(handle.get_result(polling_interval_sec=0.01) for handle in handles)
    )
    elapsed = time.perf_counter() - start
    assert all(result.final_output == "Both shipped." for result in results)
    return (
        f"  queued: {runs} runs in {elapsed:.2f} s = {runs / elapsed:.1f} runs/s "
        f"(enqueueing took {enqueued:.2f} s; worker_concurrency={runs})"
    )


async def fresh_postgres(url: str) -> str:
    import asyncpg

    base, _, name = url.rpartition("/")
    admin = await asyncpg.connect(f"{base}/postgres", timeout=5)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return url


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--queued", type=int, default=100, help="runs for the throughput test")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument(
        "--pg-url", default="postgresql://postgres@127.0.0.1:5432/timestep_bench_workflows"
    )
    args = parser.parse_args()
    os.environ.setdefault("TIMESTEP_LOAD_PLUGINS", "")
    print(
        f"durable agent runs: 3 model calls + 2 tool calls, {args.iterations} interleaved "
        f"samples each, {os.cpu_count()} CPUs"
    )
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory() as folder:
            if backend == "sqlite":
                url = f"sqlite:///{Path(folder) / 'bench.db'}"
            else:
                try:
                    url = await fresh_postgres(args.pg_url)
                except Exception as error:
                    print(f"{backend}: skipped ({error})")
                    continue
            print(f"{backend}:")
            for line in await bench(url, args.iterations, args.queued):
                print(line)


if __name__ == "__main__":
    asyncio.run(main())
