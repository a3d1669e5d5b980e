"""Run Python in a separate OS process, as a second user of the same database would.

Every child runs with ``-W error::ResourceWarning``, and a child that leaves something unclosed
(an engine, a pool, a socket, a file) fails the test that ran it: Python reports a
ResourceWarning raised in ``__del__`` as "Exception ignored in: ..." on stderr.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

__all__ = ["HYGIENE_FLAGS", "LEAK_MARKERS", "leaks", "run_python"]

HYGIENE_FLAGS = ("-W", "error::ResourceWarning")
"""Interpreter options every child runs with: an unclosed resource becomes an error."""

LEAK_MARKERS = ("ResourceWarning", "Unclosed", "unclosed", "Exception ignored in")
"""What Python, asyncio and aiohttp-style libraries print about a resource left open."""


def leaks(stderr: str) -> list[str]:
    """The lines of ``stderr`` that report a resource left open (or an error in ``__del__``)."""
    return [line for line in stderr.splitlines() if any(m in line for m in LEAK_MARKERS)]


def run_python(
    *args: str, home: Path, ok: bool = True, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run ``python ARGS`` with ``TIMESTEP_HOME=home`` and no OpenAI key; fail the test on a
    non-zero exit unless ``ok=False``, and always when the process left a resource open."""
    env = {**os.environ, "TIMESTEP_HOME": str(home)}
    env.pop("OPENAI_API_KEY", None)
    done = subprocess.run(
        [sys.executable, *HYGIENE_FLAGS, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    if ok and done.returncode != 0:
        pytest.fail(f"python {args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    if leaks(done.stderr):
        pytest.fail(f"python {args} left resources open:\n{done.stderr}")
    return done
