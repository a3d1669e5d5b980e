"""Run one step of a cross-language test in Node with the real JS Agents SDK (tests/js)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

JS_DIR = Path(__file__).parent / "js"
SETUP = "npm ci --prefix tests/js"


def require_js_harness() -> str:
    """The ``node`` executable; fails the test (never skips) when the harness is missing."""
    node = shutil.which("node")
    if node is None:
        pytest.fail(f"Node.js is not installed; install Node 20+ and run `{SETUP}`.")
    if not (JS_DIR / "node_modules" / "@openai" / "agents").is_dir():
        pytest.fail(f"The JS harness is not installed; run `{SETUP}` from the repository root.")
    return node


def js_step(script: str, *args: str, ok: bool = True, timeout: float = 120) -> dict[str, Any]:
    """Run ``node tests/js/SCRIPT ARGS`` and return the JSON line it prints last."""
    node = require_js_harness()
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    done = subprocess.run(
        [node, str(JS_DIR / script), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=JS_DIR,
    )
    lines = done.stdout.strip().splitlines()
    if ok and (done.returncode != 0 or not lines):
        pytest.fail(f"node {script} {args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    report: dict[str, Any] = json.loads(lines[-1]) if lines else {}
    report["returncode"] = done.returncode
    return report


def assistant_step(
    phase: str, replies: dict[str, Any], *args: str, ok: bool = True
) -> dict[str, Any]:
    """One phase of the personal-assistant scenario in JS (see tests/js/step.mjs)."""
    return js_step("step.mjs", phase, "--replies", json.dumps(replies), *args, ok=ok)
