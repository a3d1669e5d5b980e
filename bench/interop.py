"""Cost of translating a RunState between the Python and JS SDKs, next to the SDKs' own
serialization of the same state.

For paused runs of three sizes (the personal-assistant scenario with 0, 20 and 100 completed
``get_weather`` calls before the call that waits for approval) this measures, per state:

* ``py->js``: ``timestep.interop.translate(state.to_json(), source="python", target="js")``
* ``js->py``: the reverse, on that JS form
* ``portable``: what ``RunStateStore.save`` adds: ``portable_form`` (translation + ``json.dumps``)
* the Python SDK's ``state.to_string()`` and ``RunState.from_string(agent, text)``
* the JS SDK's ``state.toString()`` and ``RunState.fromString(agent, text)`` of the JS form,
  timed inside Node by ``tests/js/step.mjs``-style code (skipped, with a note, when
  ``tests/js/node_modules`` is missing: run ``npm ci --prefix tests/js``)

Each figure is the median of repeated runs (``time.perf_counter_ns``, GC paused while timing).
The ratio column divides the translation by ``to_string`` of the same state: the target is
below 0.5x, i.e. translating costs less than half of one SDK serialization. Run from the
repository root::

    .venv/bin/python bench/interop.py
    .venv/bin/python bench/interop.py --sizes 0 500 --seconds 2
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents import Agent, RunConfig, Runner, RunState, function_tool, handoff
from agents.testing import ScriptedModel, function_call

from timestep.interop import portable_form, translate

TARGET_RATIO = 0.5
JS_DIR = Path(__file__).resolve().parent.parent / "tests" / "js"


@function_tool(needs_approval=lambda _ctx, params, _call_id: _berkeley(params))
def get_weather(city: str) -> str:
    """The weather for a city."""
    return f"Sunny, 21C in {city}"


async def _berkeley(params: dict[str, Any]) -> bool:
    return bool(params.get("city") == "Berkeley")


def build(completed_calls: int) -> Agent[Any]:
    """The assistant graph, scripted to make ``completed_calls`` calls before Berkeley's."""
    replies: list[Any] = [
        [function_call("get_weather", {"city": f"City {n}"}, call_id=f"call-{n}")]
        for n in range(completed_calls)
    ]
    replies.append([function_call("get_weather", {"city": "Berkeley"}, call_id="call-berk")])
    weather = Agent(name="Weather", model=ScriptedModel(replies), tools=[get_weather])
    handoff_call = function_call("transfer_to_weather", {}, call_id="call-handoff")
    return Agent(
        name="Assistant", model=ScriptedModel([[handoff_call]]), handoffs=[handoff(weather)]
    )


async def paused_state(completed_calls: int) -> tuple[Agent[Any], RunState[Any, Any]]:
    agent = build(completed_calls)
    result = await Runner.run(
        agent,
        "What's the weather?",
        max_turns=completed_calls + 5,
        run_config=RunConfig(tracing_disabled=True),
    )
    if not result.interruptions:
        raise RuntimeError("the scripted run did not pause for approval")
    return agent, result.to_state()


def median_ms(work: Callable[[], object], seconds: float) -> float:
    """Median wall time of ``work`` in milliseconds, repeated for about ``seconds``."""
    work()  # warm-up
    samples: list[int] = []
    deadline = time.perf_counter() + seconds
    gc.disable()
    try:
        while time.perf_counter() < deadline or len(samples) < 5:
            start = time.perf_counter_ns()
            work()
            samples.append(time.perf_counter_ns() - start)
    finally:
        gc.enable()
    return statistics.median(samples) / 1e6


def median_ms_async(work: Callable[[], Any], seconds: float) -> float:
    loop = asyncio.new_event_loop()
    try:
        return median_ms(lambda: loop.run_until_complete(work()), seconds)
    finally:
        loop.close()


_JS_TIMER = """
import fs from 'node:fs';
import { Agent, RunState, handoff, tool } from '@openai/agents';
import { z } from 'zod';
const getWeather = tool({ name: 'get_weather', description: 'The weather for a city.',
  parameters: z.object({ city: z.string() }), needsApproval: async () => true,
  execute: async () => 'x' });
const weather = new Agent({ name: 'Weather', tools: [getWeather] });
const assistant = new Agent({ name: 'Assistant',
  handoffs: [handoff(weather, { toolNameOverride: 'transfer_to_weather' })] });
const seconds = Number(process.argv[3]);
async function median(work) {
  await work();
  const samples = [];
  const deadline = performance.now() + seconds * 1000;
  while (performance.now() < deadline || samples.length < 5) {
    const start = performance.now();
    await work();
    samples.push(performance.now() - start);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)];
}
const out = [];
for (const text of JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))) {
  const state = await RunState.fromString(assistant, text);
  out.push({ toString: await median(() => state.toString()),
             fromString: await median(() => RunState.fromString(assistant, text)) });
}
console.log(JSON.stringify(out));
"""


def js_timings(js_states: list[dict[str, Any]], seconds: float) -> list[dict[str, float]] | None:
    """The JS SDK's toString/fromString medians (ms) per state, or None without Node."""
    node = shutil.which("node")
    if node is None or not (JS_DIR / "node_modules" / "@openai" / "agents").is_dir():
        return None
    with tempfile.TemporaryDirectory() as folder:
        states = Path(folder) / "states.json"
        states.write_text(json.dumps([json.dumps(s) for s in js_states]))
        script = JS_DIR / ".bench-interop.mjs"
        script.write_text(_JS_TIMER)
        try:
            done = subprocess.run(
                [node, str(script), str(states), str(seconds)],
                capture_output=True,
                text=True,
                cwd=JS_DIR,
                check=True,
                timeout=600,
            )
        finally:
            script.unlink(missing_ok=True)
    timings: list[dict[str, float]] = json.loads(done.stdout)
    return timings


async def paused_states(sizes: list[int]) -> list[tuple[Agent[Any], RunState[Any, Any]]]:
    return [await paused_state(size) for size in sizes]


def measure(sizes: list[int], seconds: float) -> list[dict[str, Any]]:
    rows = []
    for size, (agent, state) in zip(sizes, asyncio.run(paused_states(sizes)), strict=True):
        py = state.to_json()
        text = state.to_string()
        js = translate(py, source="python", target="js")
        rows.append(
            {
                "calls": size,
                "kb": len(text) / 1024,
                "py->js": median_ms(
                    lambda py=py: translate(py, source="python", target="js"), seconds
                ),
                "js->py": median_ms(
                    lambda js=js: translate(js, source="js", target="python"), seconds
                ),
                "portable": median_ms(lambda py=py: portable_form(py, "python"), seconds),
                "to_string": median_ms(state.to_string, seconds),
                "from_string": median_ms_async(
                    lambda agent=agent, text=text: RunState.from_string(agent, text), seconds
                ),
                "js": js,
            }
        )
    return rows


def report(rows: list[dict[str, Any]], js: list[dict[str, float]] | None) -> bool:
    print("Translation per state vs the SDKs' own serialization (median ms; ratio = x / to_string)")
    header = (
        f"{'calls':>5} {'KiB':>6} | {'py->js':>7} {'ratio':>6} | {'js->py':>7} {'ratio':>6} | "
        f"{'portable':>8} {'ratio':>6} | {'to_string':>9} {'from_string':>11}"
    )
    if js is not None:
        header += f" | {'JS toString':>11} {'JS fromString':>13}"
    print(header)
    ok = True
    for index, row in enumerate(rows):
        base = row["to_string"]
        ratios = [row[k] / base for k in ("py->js", "js->py", "portable")]
        ok = ok and all(r < TARGET_RATIO for r in ratios[:2])
        line = (
            f"{row['calls']:>5} {row['kb']:>6.1f} | {row['py->js']:>7.3f} {ratios[0]:>5.2f}x | "
            f"{row['js->py']:>7.3f} {ratios[1]:>5.2f}x | {row['portable']:>8.3f} "
            f"{ratios[2]:>5.2f}x | {base:>9.3f} {row['from_string']:>11.3f}"
        )
        if js is not None:
            line += f" | {js[index]['toString']:>11.3f} {js[index]['fromString']:>13.3f}"
        print(line)
    if js is None:
        print("(JS SDK timings skipped: run `npm ci --prefix tests/js` to include them)")
    verdict = "met" if ok else "NOT met"
    print(f"Target: translation below {TARGET_RATIO}x of to_string in both directions: {verdict}.")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[0, 20, 100])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = parser.parse_args(argv)
    rows = measure(args.sizes, args.seconds)
    js = js_timings([row["js"] for row in rows], args.seconds)
    report(rows, js)
    return 0


if __name__ == "__main__":
    sys.exit(main())
