"""Run Python in a separate OS process, as a second user of the same database would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def run_python(
    *args: str, home: Path, ok: bool = True, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run ``python ARGS`` with ``TIMESTEP_HOME=home`` and no OpenAI key; fail the test on a
    non-zero exit unless ``ok=False``."""
    env = {**os.environ, "TIMESTEP_HOME": str(home)}
    env.pop("OPENAI_API_KEY", None)
    done = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, timeout=timeout
    )
    if ok and done.returncode != 0:
        pytest.fail(f"python {args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done
