"""What routing by model name costs: ``"ollama/llama3"`` vs the same ``OllamaModel`` given directly.

Both cases run one turn of the same agent through ``timestep.run_agent`` against a fake Ollama
server, in the same process and event loop, with the same ``RunConfig`` (one
``timestep.MultiModelProvider``, tracing off):

* direct: ``Agent(model=OllamaModel("llama3", base_url=<fake server>))``; the provider is never
  asked.
* routed: ``Agent(model="ollama/llama3")`` with ``OLLAMA_HOST`` pointing at the fake server;
  ``MultiModelProvider`` resolves the ``ollama`` prefix through the installed timestep-ollama
  plugin on every model call, as a user's run does.

So the difference between the two is the routing layer alone. Both are measured non-streamed
and streamed (``stream=True``), in alternating blocks (the side that goes first swaps every
block) after a warm-up, so machine noise lands on both alike; timings come from
``time.perf_counter_ns``. The table shows p50/p99 in milliseconds and the routed/direct ratio;
the target is a p50 ratio within 1.1x. The cost of the lookup on its own
(``MultiModelProvider.get_model("ollama/llama3")``) is printed too, for scale.

The server is the plugin tests' fake (``plugins/timestep-ollama/tests/fake_ollama.py``, the real
HTTP wire protocol on 127.0.0.1, driven by the real ``ollama`` client), answering every request
with the same short text. It runs in a child process (this script with ``--serve``) so that its
Python work does not compete with the measured client for the GIL. Only the timestep-ollama
plugin is loaded (``TIMESTEP_LOAD_PLUGINS=ollama``). Run from the repository root::

    .venv/bin/python bench/routing.py
    .venv/bin/python bench/routing.py --iterations 1000 --block 1

The exit code is 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

from _timing import Samples, interleaved, percentile_ms

if TYPE_CHECKING:
    from agents import ModelProvider

TARGET_RATIO = 1.1
MODEL = "llama3"
PROMPT = "Say hello."
ANSWER = "Hello from llama3."
FAKE_OLLAMA_DIR = Path(__file__).resolve().parent.parent / "plugins" / "timestep-ollama" / "tests"


def serve() -> None:
    """The child process: a fake Ollama server that answers every chat with ``ANSWER``.

    Prints its URL on one line, then serves until its standard input closes.
    """
    sys.path.insert(0, str(FAKE_OLLAMA_DIR))
    from fake_ollama import FakeOllama, Received, Reply

    class EndlessOllama(FakeOllama):
        """Gives the same reply to every request and keeps no record, so memory stays flat."""

        def _next(self, received: Received) -> Reply | None:
            return Reply(ANSWER)

    server = EndlessOllama()
    server.start()
    print(server.url, flush=True)
    try:
        sys.stdin.read()
    finally:
        server.stop()


class ServerProcess:
    """Starts ``serve`` in a child process; ``url`` is where it listens."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, __file__, "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        self.url = self._process.stdout.readline().strip()
        if not self.url.startswith("http://127.0.0.1:"):
            self.close()
            raise RuntimeError(f"the fake Ollama server did not start (it printed {self.url!r})")

    def close(self) -> None:
        """Closing its standard input tells the child to stop."""
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def lookup_us(provider: ModelProvider, calls: int = 5_000) -> float:
    """Median-of-five cost of one routed model lookup, in microseconds."""
    rounds = []
    for _ in range(5):
        start = time.perf_counter_ns()
        for _ in range(calls):
            provider.get_model(f"ollama/{MODEL}")
        rounds.append((time.perf_counter_ns() - start) / calls / 1e3)
    return sorted(rounds)[2]


async def run(args: argparse.Namespace, url: str) -> tuple[dict[str, Samples], float]:
    # Imported here so that the --serve child does not load the SDK.
    from agents import Agent, RunConfig
    from timestep_ollama import OllamaModel

    import timestep

    os.environ["OLLAMA_HOST"] = url
    provider = timestep.MultiModelProvider()
    run_config = RunConfig(model_provider=provider, tracing_disabled=True)
    model = OllamaModel(MODEL, base_url=url)
    direct = Agent(name="Local", instructions="Be brief.", model=model)
    routed = direct.clone(model=f"ollama/{MODEL}")

    # Make sure the routed case really reaches the same server through the plugin.
    resolved = provider.get_model(f"ollama/{MODEL}")
    routed_to = (resolved.model, resolved.base_url) if isinstance(resolved, OllamaModel) else None
    if routed_to != (MODEL, url):
        raise RuntimeError(f"ollama/{MODEL} was routed to {resolved!r}, not the fake server")

    rows: dict[str, Samples] = {}
    try:
        for stream in (False, True):

            async def direct_op(stream: bool = stream) -> None:
                result = await timestep.run_agent(
                    direct, PROMPT, stream=stream, run_config=run_config
                )
                assert result.final_output == ANSWER

            async def routed_op(stream: bool = stream) -> None:
                result = await timestep.run_agent(
                    routed, PROMPT, stream=stream, run_config=run_config
                )
                assert result.final_output == ANSWER

            rows["streamed" if stream else "plain"] = await interleaved(
                routed_op,
                direct_op,
                iterations=args.iterations,
                warmup=args.warmup,
                block=args.block,
            )
        lookup = lookup_us(provider)
    finally:
        await provider.aclose()
        await model.close()
    return rows, lookup


def print_report(
    rows: dict[str, Samples], lookup: float, args: argparse.Namespace, url: str
) -> None:
    print(
        f"iterations={args.iterations} warmup={args.warmup} block={args.block} "
        f"python={platform.python_version()} openai-agents={version('openai-agents')} "
        f"ollama={version('ollama')} fake server={url} (child process)"
    )
    header = (
        f"{'run':<9} {'direct p50':>10} {'p99':>8} {'routed p50':>10} {'p99':>8} "
        f"{'ratio p50':>9} {'p99':>6}"
    )
    print(header)
    print("-" * len(header))
    verdicts = []
    for name, samples in rows.items():
        d50, d99 = percentile_ms(samples.baseline, 0.50), percentile_ms(samples.baseline, 0.99)
        r50, r99 = percentile_ms(samples.subject, 0.50), percentile_ms(samples.subject, 0.99)
        ratio50, ratio99 = r50 / d50, r99 / d99
        print(
            f"{name:<9} {d50:>7.3f} ms {d99:>8.3f} {r50:>7.3f} ms {r99:>8.3f} "
            f"{ratio50:>8.2f}x {ratio99:>5.2f}x"
        )
        verdict = "within" if ratio50 <= TARGET_RATIO else "NOT within"
        verdicts.append(
            f"{name}: routed is {verdict} {TARGET_RATIO}x of direct at p50 ({ratio50:.2f}x)"
        )
    print()
    print(f'routing lookup alone: MultiModelProvider.get_model("ollama/{MODEL}") {lookup:.1f} µs')
    for line in verdicts:
        print(line)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--iterations", type=int, default=500, help="measured runs per case")
    parser.add_argument("--warmup", type=int, default=50, help="untimed runs per side first")
    parser.add_argument("--block", type=int, default=5, help="runs per side before switching")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.iterations < 1 or args.warmup < 0 or args.block < 1:
        parser.error("--iterations and --block must be positive, --warmup not negative")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        serve()
        return 0
    # The routed case needs the plugin; no other installed plugin should weigh on the lookup.
    os.environ["TIMESTEP_LOAD_PLUGINS"] = "ollama"
    server = ServerProcess()
    try:
        rows, lookup = asyncio.run(run(args, server.url))
    finally:
        server.close()
    print_report(rows, lookup, args, server.url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
