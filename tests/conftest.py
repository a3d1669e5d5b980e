"""Shared set-up for Timestep's own tests; the reusable fixtures come from timestep.testing."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from workflow_support import Worker, launched

from subprocesses import run_python
from timestep import plugins
from timestep.observability import install as observability_install
from timestep.workflows import WorkflowSettings

OPS_PROCESS = Path(__file__).parent / "ops_process.py"


@pytest.fixture(autouse=True)
def _isolated(timestep_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the developer's database, keys, plugin selection or tracing set-up."""
    for name in ("OPENAI_API_KEY", "TIMESTEP_LOAD_PLUGINS", "TIMESTEP_EXAMPLE_BROKEN"):
        monkeypatch.delenv(name, raising=False)
    plugins._reset_for_tests()
    yield
    observability_install._reset_for_tests()


@pytest.fixture
def ops_process(timestep_home: Path) -> Callable[..., dict[str, Any]]:
    """Run one phase of the ops scenario in a separate Python process; returns its JSON report."""

    def run(*args: str, expect_ok: bool = True) -> dict[str, Any]:
        done = run_python(str(OPS_PROCESS), *args, home=timestep_home, ok=expect_ok)
        report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        report["returncode"] = done.returncode
        return report

    return run


# Durable-workflow engines: DBOS launched on a fresh database for one test, then destroyed.
@pytest.fixture
def engine(db_url: str) -> Iterator[WorkflowSettings]:
    """DBOS on each built-in backend in turn."""
    with launched(db_url) as settings:
        yield settings


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[WorkflowSettings]:
    """DBOS on a fresh SQLite file."""
    with launched(sqlite_url) as settings:
        yield settings


@pytest.fixture
def postgres_engine(postgres_url: str) -> Iterator[WorkflowSettings]:
    """DBOS on a fresh PostgreSQL database."""
    with launched(postgres_url) as settings:
        yield settings


# Worker processes of the crash and fleet tests (tests/workflow_process.py).
@pytest.fixture
def record(tmp_path: Path) -> Path:
    """The file worker processes append their events to (tests/workflow_support.Recorder)."""
    return tmp_path / "record.jsonl"


@pytest.fixture
def worker(timestep_home: Path, record: Path) -> Iterator[Callable[..., Worker]]:
    """Start a worker process on a database (``--start``/``--wait``/... as extra args).

    Workers still alive when the test ends (it failed midway) are killed. Without
    ``--executor-id`` each has an id of its own; they heartbeat every 0.2 s, so a worker killed
    for good has its runs adopted once its heartbeat is 3 s old.
    """
    env = {
        **os.environ,
        "TIMESTEP_HOME": str(timestep_home),
        "TIMESTEP_WORKER_HEARTBEAT": "0.2",
        "TIMESTEP_WORKER_DEAD_AFTER": "3",
    }
    env.pop("TIMESTEP_EXECUTOR_ID", None)
    started: list[Worker] = []

    def start(url: str, *args: str) -> Worker:
        started.append(Worker("worker", url, str(record), *args, env=env))
        return started[-1]

    yield start
    for process in started:
        if not process.ended:
            process.kill()
