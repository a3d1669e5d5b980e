"""Files Timestep creates are readable by their owner only: stored conversations are private.

With the usual umask (022) a new file is world-readable. The embedded database, its WAL and
shared-memory files, the JSON-file form and the folders Timestep makes for them must not be.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from scenario import paused_run
from timestep import RunStateStore, TimestepSession, aclose
from timestep.workflows.config import _prepare_database


@pytest.fixture(autouse=True)
def _usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_embedded_database_and_its_folder_are_private(timestep_home: Path) -> None:
    assert not timestep_home.exists()
    agent, result = await paused_run()
    store = RunStateStore(agent=agent, session_id="ticket-42")
    await store.save(result)
    await TimestepSession("ticket-42").add_items([{"role": "user", "content": "my address"}])
    # Checked while the pool is open, so the WAL and shared-memory files exist.
    database = timestep_home / "timestep.db"
    files = [database, Path(f"{database}-wal"), Path(f"{database}-shm")]
    assert all(f.exists() for f in files)
    assert {str(f.name): oct(mode(f)) for f in files} == {f.name: "0o600" for f in files}
    assert oct(mode(timestep_home)) == "0o700"
    await aclose()


async def test_a_database_url_in_new_folders_gets_private_folders(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/a/b/runs.db"
    before = mode(tmp_path)
    agent, result = await paused_run()
    await RunStateStore(agent=agent, session_id="t", url=url).save(result)
    assert oct(mode(tmp_path / "a")) == oct(mode(tmp_path / "a" / "b")) == "0o700"
    assert oct(mode(tmp_path / "a" / "b" / "runs.db")) == "0o600"
    # A folder that already existed is the user's: its mode is left alone.
    assert mode(tmp_path) == before
    await aclose()


async def test_the_file_form_and_its_lock_are_private(tmp_path: Path) -> None:
    agent, result = await paused_run()
    path = tmp_path / "runs" / "agent_state.json"
    await RunStateStore(path, agent).save(result)
    assert oct(mode(path)) == "0o600"
    assert oct(mode(path.with_name("agent_state.json.lock"))) == "0o600"
    assert oct(mode(path.parent)) == "0o700"


def test_the_durable_workflow_database_file_is_private(tmp_path: Path) -> None:
    database = tmp_path / "new" / "dbos.db"
    _prepare_database(f"sqlite:///{database}")
    assert oct(mode(database)) == "0o600" and oct(mode(database.parent)) == "0o700"
