"""Shared timing for the benchmarks: interleaved A/B sampling and percentiles.

Both sides run in alternating blocks, the side that goes first swapping each block, so machine
noise (other processes, frequency changes) lands on both alike.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

__all__ = ["Operation", "Samples", "interleaved", "percentile_ms"]

Operation = Callable[[], Awaitable[object]]


@dataclass
class Samples:
    """Nanosecond timings of the thing measured (``subject``) and what it is compared with."""

    subject: list[int]
    baseline: list[int]

    def ratio(self, fraction: float) -> float:
        """subject / baseline at one percentile."""
        return percentile_ms(self.subject, fraction) / percentile_ms(self.baseline, fraction)


async def interleaved(
    subject: Operation, baseline: Operation, *, iterations: int, warmup: int, block: int
) -> Samples:
    """Time ``iterations`` calls of each operation after ``warmup`` untimed calls of each."""
    for _ in range(warmup):
        await subject()
        await baseline()
    gc.collect()
    samples = Samples(subject=[], baseline=[])
    sides: list[tuple[Operation, list[int]]] = [
        (subject, samples.subject),
        (baseline, samples.baseline),
    ]
    clock = time.perf_counter_ns
    while len(samples.subject) < iterations:
        size = min(block, iterations - len(samples.subject))
        for op, sink in sides:
            for _ in range(size):
                start = clock()
                await op()
                sink.append(clock() - start)
        sides.reverse()
    return samples


def percentile_ms(values: Sequence[int], fraction: float) -> float:
    """Nearest-rank percentile of nanosecond samples, in milliseconds."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1] / 1e6
