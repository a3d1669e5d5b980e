"""What recording a run in the Timestep database costs the run: a 3-turn scripted run, timed.

One ``run_agent`` run: the model asks for a tool, then another, then answers (three model
calls with known usage, two tool calls). The same run is timed, in the same process and event
loop, in three settings:

* off: ``TIMESTEP_TRACING=off`` (the default; the SDK creates no spans)
* sdk: the SDK's tracing on with no processor at all (what spans cost the SDK by itself)
* db: ``TIMESTEP_TRACING=db`` (spans, usage and cost queued and written by the writer thread)

Settings run in alternating blocks (the order rotates every block) after a warm-up, so machine
noise lands on all alike. Wall times come from ``time.perf_counter_ns``; the writer thread
works during the blocks, so its share of the CPU is inside the db timings. ``CPU ms/run`` is
the process's CPU time (all threads, writer and final flush included) per run: on a busy
machine it is the steadier measure of what recording costs. After each db block the remaining
queue is flushed; that time is reported separately, with the throughput that includes it. The
target is a db/off ratio of at most 1.1x.

Run from the repository root (SQLite in a temporary folder by default)::

    .venv/bin/python bench/tracing.py
    .venv/bin/python bench/tracing.py --runs 3000 --db-url postgresql://postgres@127.0.0.1/bench

The exit code is 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents import Agent, RunConfig, function_tool, set_trace_processors
from agents.testing import ModelStep, ScriptedModel, assistant_message, function_call
from agents.usage import InputTokensDetails, OutputTokensDetails, Usage

from timestep import run_agent
from timestep.observability import active_processor, flush_tracing
from timestep.observability.install import _reset_for_tests
from timestep.run import default_model_provider
from timestep.storage import close_backends

SETTINGS = ("off", "sdk", "db")


def _usage(input_tokens: int, output_tokens: int) -> Usage:
    return Usage(
        requests=1,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
        input_tokens_details=InputTokensDetails(cached_tokens=64, cache_write_tokens=0),
        output_tokens_details=OutputTokensDetails(reasoning_tokens=8),
    )


@function_tool
def look(path: str) -> str:
    """Look at a file."""
    return f"{path} is 3 bytes"


def _agent() -> Agent[Any]:
    look_at_a = [function_call("look", {"path": "/a"}, call_id="c1")]
    look_at_b = [function_call("look", {"path": "/b"}, call_id="c2")]
    script = [
        ModelStep(output=look_at_a, usage=_usage(500, 20)),
        ModelStep(output=look_at_b, usage=_usage(600, 20)),
        ModelStep(output=[assistant_message("Both are 3 bytes.")], usage=_usage(700, 15)),
    ]
    return Agent(name="Bench", model=ScriptedModel(script), tools=[look])


def _configure(setting: str) -> Callable[[], RunConfig | None]:
    """Set the environment for ``setting``; return what to pass as ``run_config``."""
    if setting == "sdk":
        os.environ["TIMESTEP_TRACING"] = "off"
        _reset_for_tests()
        set_trace_processors([])
        return lambda: RunConfig(model_provider=default_model_provider(), tracing_disabled=False)
    os.environ["TIMESTEP_TRACING"] = setting
    return lambda: None


async def _block(setting: str, runs: int) -> tuple[list[int], int, int]:
    """Wall time of each run, the flush after the block, and the process CPU time of it all
    (every thread: the writer's work included)."""
    run_config = _configure(setting)
    times: list[int] = []
    cpu_start = time.process_time_ns()
    for _ in range(runs):
        agent = _agent()
        start = time.perf_counter_ns()
        result = await run_agent(agent, "how big are /a and /b?", run_config=run_config())
        times.append(time.perf_counter_ns() - start)
        assert result.final_output == "Both are 3 bytes."
    flush_ns = 0
    if setting == "db":
        start = time.perf_counter_ns()
        assert flush_tracing(120)
        flush_ns = time.perf_counter_ns() - start
    return times, flush_ns, time.process_time_ns() - cpu_start


def _ms(ns: float) -> float:
    return ns / 1e6


def _p(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1500, help="timed runs per setting")
    parser.add_argument("--block", type=int, default=100, help="runs per block")
    parser.add_argument("--warmup", type=int, default=50, help="untimed runs per setting")
    parser.add_argument("--db-url", help="database for the db setting (default: temp SQLite)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as folder:
        url = args.db_url or f"sqlite:///{Path(folder) / 'bench.db'}"
        os.environ["TIMESTEP_DB_URL"] = url
        os.environ.pop("TIMESTEP_TRACE_PAYLOADS", None)
        for setting in SETTINGS:
            await _block(setting, args.warmup)
        timings: dict[str, list[int]] = {s: [] for s in SETTINGS}
        cpu: dict[str, int] = dict.fromkeys(SETTINGS, 0)
        flushes: list[int] = []
        gc.collect()
        blocks = max(1, args.runs // args.block)
        for number in range(blocks):
            order = SETTINGS[number % 3 :] + SETTINGS[: number % 3]
            for setting in order:
                times, flush_ns, cpu_ns = await _block(setting, args.block)
                timings[setting] += times
                cpu[setting] += cpu_ns
                if setting == "db":
                    flushes.append(flush_ns)
        processor = active_processor()
        _configure("off")
        _reset_for_tests()
        await close_backends()

    print(f"3-turn scripted run_agent (3 model calls, 2 tool calls); {blocks} blocks of "
          f"{args.block} runs per setting; db = {url.split('://')[0]}")  # fmt: skip
    print(
        f"{'setting':<8}{'p50 ms':>10}{'p90 ms':>10}{'mean ms':>10}{'p50 vs off':>12}"
        f"{'CPU ms/run':>12}{'CPU vs off':>12}"
    )
    base = statistics.median(timings["off"])
    for setting in SETTINGS:
        values = timings[setting]
        per_run = cpu[setting] / len(values)
        print(
            f"{setting:<8}{_ms(statistics.median(values)):>10.3f}{_ms(_p(values, 0.9)):>10.3f}"
            f"{_ms(statistics.mean(values)):>10.3f}{statistics.median(values) / base:>11.2f}x"
            f"{_ms(per_run):>12.3f}{cpu[setting] / cpu['off']:>11.2f}x"
        )
    db_total = sum(timings["db"]) + sum(flushes)
    off_total = sum(timings["off"])
    print(
        f"db flush after each block of {args.block}: mean {_ms(statistics.mean(flushes)):.1f} ms;"
        f" db throughput incl. flushes vs off: {db_total / off_total:.2f}x"
    )
    if processor is not None:
        print(
            f"writer: {processor.failed_batches} failed batches, {processor.dropped} dropped events"
        )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
