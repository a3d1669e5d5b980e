"""RunStateStore: saving, loading, listing, conflicts, the JSON-file form, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from agents import Agent

from scenario import ask_to_delete, ops_agent, paused_run, say
from timestep import (
    AgentMismatchError,
    ConfigurationError,
    RunStateStore,
    StateConflictError,
    StateCorruptedError,
    StateNotFoundError,
    StateStatus,
    StateTooLargeError,
    StorageUnavailableError,
    TimestepError,
    UnsupportedSchemaError,
    run_agent,
)
from timestep.storage import get_backend


async def test_save_load_approve_resume_in_one_process(db_url: str) -> None:
    calls: list[str] = []
    agent = ops_agent(ask_to_delete(), say("Deleted."), calls=calls)
    store = RunStateStore(agent=agent, session_id="ticket-42", url=db_url)

    result = await run_agent(agent, "clean up /tmp/x")
    stored = await store.save(result.to_state())
    assert (stored.status, stored.version, stored.sdk) == (StateStatus.INTERRUPTED, 1, "python")
    assert stored.schema_version == "1.21"
    assert stored.interruptions[0]["tool_name"] == "delete_file"
    assert json.loads(stored.interruptions[0]["arguments"]) == {"path": "/tmp/x"}

    state = await RunStateStore(agent=agent, session_id="ticket-42", url=db_url).load()
    for item in state.get_interruptions():
        state.approve(item)
    resumed = await run_agent(agent, state)
    assert resumed.final_output == "Deleted." and calls == ["/tmp/x"]


async def test_listing_finds_paused_runs_by_status_agent_and_session(db_url: str) -> None:
    for session in ("a", "b"):
        agent, result = await paused_run()
        await RunStateStore(agent=agent, session_id=session, url=db_url).save(result)
    other, result = await paused_run("Billing")
    store = RunStateStore(agent=other, session_id="c", url=db_url)
    await store.save(result)
    await store.save(result, status="completed")

    paused = await store.list(status="interrupted")
    assert sorted(row.session_id for row in paused) == ["a", "b"]
    assert [row.session_id for row in await store.list(agent_name="Billing")] == ["c"]
    assert [row.agent_name for row in await store.list(session_id="a")] == ["Ops"]


async def test_generated_session_id_and_saving_a_result_directly(sqlite_url: str) -> None:
    agent, result = await paused_run()
    store = RunStateStore(agent=agent, url=sqlite_url)
    assert len(store.session_id) == 32
    assert (await store.save(result)).status == StateStatus.INTERRUPTED
    assert store.version == 1


async def test_two_writers_racing_on_one_session_one_wins(db_url: str) -> None:
    agent, result = await paused_run()
    await RunStateStore(agent=agent, session_id="s", url=db_url).save(result)
    first = RunStateStore(agent=agent, session_id="s", url=db_url)
    second = RunStateStore(agent=agent, session_id="s", url=db_url)
    state_one, state_two = await first.load(), await second.load()

    await first.save(state_one, status="running")
    with pytest.raises(StateConflictError) as raised:
        await second.save(state_two)
    assert (raised.value.expected_version, raised.value.actual_version) == (1, 2)
    assert raised.value.session_id == "s" and "load" in str(raised.value)
    row = await first.info()
    assert row is not None and (row.version, row.status) == (2, StateStatus.RUNNING)


async def test_a_fresh_store_never_overwrites_a_paused_run(db_url: str) -> None:
    agent, result = await paused_run()
    await RunStateStore(agent=agent, session_id="s", url=db_url).save(result)
    with pytest.raises(StateConflictError, match="overwrite=True"):
        await RunStateStore(agent=agent, session_id="s", url=db_url).save(result)
    forced = await RunStateStore(agent=agent, session_id="s", url=db_url).save(
        result, overwrite=True
    )
    assert forced.version == 2


async def test_a_new_run_replaces_a_completed_one_of_the_same_session(sqlite_url: str) -> None:
    agent, result = await paused_run()
    await RunStateStore(agent=agent, session_id="s", url=sqlite_url).save(
        result, status="completed"
    )
    stored = await RunStateStore(agent=agent, session_id="s", url=sqlite_url).save(result)
    assert (stored.version, stored.status) == (2, StateStatus.INTERRUPTED)


async def test_clear_removes_the_state(db_url: str) -> None:
    agent, result = await paused_run()
    store = RunStateStore(agent=agent, session_id="s", url=db_url)
    await store.save(result)
    assert await store.clear() is True
    assert await store.clear() is False
    with pytest.raises(StateNotFoundError):
        await store.load()
    assert (await store.save(result)).version == 1


async def test_embedded_sqlite_is_the_default(timestep_home: Path) -> None:
    agent, result = await paused_run()
    store = RunStateStore(agent=agent, session_id="s")
    await store.save(result)
    assert store.url == f"sqlite+aiosqlite:///{timestep_home / 'timestep.db'}"
    assert (timestep_home / "timestep.db").is_file()


async def test_json_file_form_keeps_the_state_in_that_file(tmp_path: Path) -> None:
    path = tmp_path / "agent_state.json"
    agent, result = await paused_run()
    await RunStateStore(path, agent).save(result)
    document = json.loads(path.read_text())
    assert document["state"]["$schemaVersion"] == "1.21"
    assert document["timestep"]["status"] == "interrupted"

    state = await RunStateStore(str(path), agent).load()
    assert [i.tool_name for i in state.get_interruptions()] == ["delete_file"]
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".agent_state")]
    assert leftovers == [], "temporary files left behind"


async def test_json_file_form_detects_a_racing_writer(tmp_path: Path) -> None:
    path = tmp_path / "agent_state.json"
    agent, result = await paused_run()
    await RunStateStore(path, agent).save(result)
    first, second = RunStateStore(path, agent), RunStateStore(path, agent)
    await first.load()
    await second.load()
    await first.save(result)
    with pytest.raises(StateConflictError):
        await second.save(result)


async def test_json_file_form_reads_a_bare_sdk_state(tmp_path: Path) -> None:
    path = tmp_path / "agent_state.json"
    agent, result = await paused_run()
    path.write_text(result.to_state().to_string())
    state = await RunStateStore(path, agent).load()
    assert len(state.get_interruptions()) == 1


# Bad input: each case names the session and the fix, and changes nothing stored.


async def _tamper(db_url: str, session: str, **values: object) -> RunStateStore:
    """Save a paused run, then overwrite columns of its row as an outside writer would."""
    agent, result = await paused_run()
    store = RunStateStore(agent=agent, session_id=session, url=db_url)
    await store.save(result)
    from sqlalchemy import update

    from timestep.storage.schema import run_states

    backend = get_backend(db_url)
    async with backend.transaction() as conn:  # type: ignore[attr-defined]
        await conn.execute(
            update(run_states).where(run_states.c.session_id == session).values(**values)
        )
    return RunStateStore(agent=agent, session_id=session, url=db_url)


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ("{not json", StateCorruptedError),
        ('{"$schemaVersion": "1.21", "current_agent": {"name": "Ops"', StateCorruptedError),
        ("[1, 2, 3]", StateCorruptedError),
        ('{"$schemaVersion": "9.99", "current_agent": {"name": "Ops"}}', UnsupportedSchemaError),
        ('{"current_agent": {"name": "Ops"}}', UnsupportedSchemaError),
        ('{"$schemaVersion": "1.21", "current_agent": {"name": "Ops"}}', StateCorruptedError),
    ],
    ids=["not-json", "truncated", "not-an-object", "future-schema", "no-schema", "missing-fields"],
)
async def test_unusable_payloads_raise_named_errors_and_change_nothing(
    db_url: str, payload: str, error: type[TimestepError]
) -> None:
    store = await _tamper(db_url, "broken-run", state=payload)
    before = await store.info()

    with pytest.raises(error) as raised:
        await store.load()

    message = str(raised.value)
    assert "broken-run" in message and ("store.clear()" in message or "Upgrade" in message)
    assert raised.value.session_id == "broken-run"  # type: ignore[attr-defined]
    assert await store.info() == before


async def test_a_js_state_in_a_schema_timestep_cannot_translate_is_refused_by_name(
    sqlite_url: str,
) -> None:
    # A Python payload labelled as JS: its $schemaVersion (1.21) is not a JS schema Timestep
    # translates. (Real JS rows are resumed: tests/test_cross_language.py.)
    store = await _tamper(sqlite_url, "from-js", sdk="js", schema_version="1.21")
    with pytest.raises(UnsupportedSchemaError, match=r"JS Agents SDK.*js RunState.*'1\.21'"):
        await store.load()
    store = await _tamper(sqlite_url, "from-ruby", sdk="ruby", schema_version="1.0")
    with pytest.raises(UnsupportedSchemaError, match="'ruby' SDK"):
        await store.load()


async def test_loading_with_a_different_agent_graph_is_refused(db_url: str) -> None:
    agent, result = await paused_run("Ops")
    await RunStateStore(agent=agent, session_id="s", url=db_url).save(result)
    impostor = Agent(name="Ops")  # same name, but without the delete_file tool
    with pytest.raises((AgentMismatchError, StateCorruptedError), match="'s'"):
        await RunStateStore(agent=impostor, session_id="s", url=db_url).load()

    await _tamper(db_url, "moved", current_agent="Elsewhere")
    store = await _tamper(
        db_url, "moved-2", state=result.to_state().to_string().replace('"Ops"', '"Elsewhere"')
    )
    with pytest.raises(AgentMismatchError, match="Elsewhere"):
        await store.load()


@pytest.mark.parametrize(
    "url",
    ["not a url", "mysql+pymysql://root@localhost/db", "postgresql+psycopg2://h/db", "://x"],
)
def test_bad_database_urls_fail_at_construction(url: str) -> None:
    with pytest.raises(ConfigurationError):
        RunStateStore(agent=ops_agent(), session_id="s", url=url)


def test_an_unknown_scheme_lists_the_known_ones() -> None:
    with pytest.raises(ConfigurationError, match=r"Known schemes: .*postgresql://.*sqlite://"):
        RunStateStore(agent=ops_agent(), session_id="s", url="mysql://root@localhost/db")


async def test_a_state_over_the_size_limit_is_refused_on_save_and_load(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent, result = await paused_run()
    big = RunStateStore(agent=agent, session_id="s", url=db_url)
    stored = await big.save(result)
    size = len(stored.state)

    monkeypatch.setenv("TIMESTEP_MAX_STATE_BYTES", str(size - 1))
    small = RunStateStore(agent=agent, session_id="s", url=db_url)
    with pytest.raises(StateTooLargeError, match="TIMESTEP_MAX_STATE_BYTES") as caught:
        await small.load()
    assert (caught.value.size, caught.value.limit) == (size, size - 1)
    with pytest.raises(StateTooLargeError):
        await RunStateStore(agent=agent, session_id="s2", url=db_url).save(result)
    assert await small.info() == stored
    assert await RunStateStore(agent=agent, session_id="s2", url=db_url).info() is None

    exact = RunStateStore(agent=agent, session_id="s", url=db_url, max_state_bytes=size)
    await exact.load()


@pytest.mark.parametrize(
    ("given", "limit"), [("1024", 1024), ("16MiB", 16 * 1024**2), (" 2 kb ", 2048), (7, 7)]
)
def test_the_size_limit_reads_bytes_and_binary_units(given: object, limit: int) -> None:
    store = RunStateStore(agent=ops_agent(), session_id="s", max_state_bytes=given)  # type: ignore[arg-type]
    assert store.max_state_bytes == limit


@pytest.mark.parametrize("given", ["0", "-5", "lots", "5 parsecs", "1.5MB", True])
def test_a_bad_size_limit_is_a_configuration_error(
    given: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigurationError, match="size"):
        RunStateStore(agent=ops_agent(), session_id="s", max_state_bytes=given)  # type: ignore[arg-type]
    monkeypatch.setenv("TIMESTEP_MAX_STATE_BYTES", str(given))
    with pytest.raises(ConfigurationError, match="TIMESTEP_MAX_STATE_BYTES"):
        RunStateStore(agent=ops_agent(), session_id="s")


@pytest.mark.parametrize(
    "session_id", ["", "   ", "x" * 256, "nul\x00byte", 42, "lone \ud800 surrogate"]
)
def test_bad_session_ids_are_refused(session_id: object) -> None:
    with pytest.raises(ConfigurationError, match="session_id"):
        RunStateStore(agent=ops_agent(), session_id=session_id)  # type: ignore[arg-type]


async def test_an_unreachable_database_raises_storage_unavailable() -> None:
    store = RunStateStore(
        agent=ops_agent(), session_id="s", url="postgresql://nobody@127.0.0.1:1/none"
    )
    with pytest.raises(StorageUnavailableError, match=r"127\.0\.0\.1:1.*nothing was written"):
        await store.load()


async def test_a_missing_postgres_database_raises_storage_unavailable(postgres_server: str) -> None:
    base = postgres_server.rpartition("/")[0]
    store = RunStateStore(agent=ops_agent(), session_id="s", url=f"{base}/no_such_db_here")
    with pytest.raises(StorageUnavailableError, match="no_such_db_here"):
        await store.load()


def test_the_store_needs_an_agent() -> None:
    with pytest.raises(ConfigurationError, match="starting agent"):
        RunStateStore(session_id="s")


async def test_a_state_file_that_is_not_utf8_is_corrupted_and_left_as_it_is(
    tmp_path: Path,
) -> None:
    agent, _ = await paused_run()
    path = tmp_path / "agent_state.json"
    path.write_bytes(b'{"timestep": "\xff\xfe broken"}')
    with pytest.raises(StateCorruptedError) as corrupted:
        await RunStateStore(path, agent).load()
    assert str(path) in str(corrupted.value) and "UTF-8" in str(corrupted.value)
    assert path.read_bytes() == b'{"timestep": "\xff\xfe broken"}'
