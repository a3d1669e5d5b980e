"""A conformance suite every state backend must pass, built-in or third-party.

Subclass it in your test module and provide a ``backend`` fixture::

    from timestep.testing import StateBackendConformance

    class TestMyBackend(StateBackendConformance):
        @pytest.fixture
        async def backend(self):
            backend = MyBackend("mine://...")
            yield backend
            await backend.close()

The fixture must yield an empty backend. Tests run under pytest-asyncio.
"""

from __future__ import annotations

import asyncio
import json
import string
import uuid
from typing import Any

import pytest

from ..errors import StateConflictError
from ..storage.base import StateBackend, StateRecord, StateStatus

__all__ = ["StateBackendConformance", "make_record"]


def make_record(
    session_id: str | None = None,
    *,
    agent_name: str = "Ops",
    status: StateStatus = StateStatus.INTERRUPTED,
    state: str = '{"$schemaVersion": "1.21"}',
    **fields: Any,
) -> StateRecord:
    """A small valid record; any field can be overridden."""
    return StateRecord(
        agent_name=agent_name,
        session_id=session_id or uuid.uuid4().hex,
        status=status,
        sdk=fields.pop("sdk", "python"),
        schema_version=fields.pop("schema_version", "1.21"),
        state=state,
        current_agent=fields.pop("current_agent", agent_name),
        interruptions=fields.pop(
            "interruptions", [{"tool_name": "delete_file", "call_id": "c1", "arguments": "{}"}]
        ),
        **fields,
    )


class StateBackendConformance:
    """The behaviour :class:`~timestep.storage.StateBackend` promises, as tests."""

    async def test_save_then_load_round_trips_every_field(self, backend: StateBackend) -> None:
        record = make_record(
            state='{"big": "' + "x" * 200_000 + '", "uni": "日本 ✓"}',
            portable_state='{"$schemaVersion": "1.22", "uni": "日本 ✓"}',
            portable_sdk="js",
            portable_schema_version="1.22",
            signature="v1:0123456789ab:" + "f" * 64,
        )
        stored = await backend.save(record, expected_version=None)
        loaded = await backend.load(record.agent_name, record.session_id)
        assert loaded is not None
        assert stored.version == loaded.version == 1
        assert stored.id and loaded.id == stored.id
        for field in (
            "agent_name",
            "session_id",
            "sdk",
            "schema_version",
            "state",
            "portable_sdk",
            "portable_schema_version",
            "portable_error",
            "signature",
        ):
            assert getattr(loaded, field) == getattr(record, field), field
        assert loaded.portable_state is not None and record.portable_state is not None
        assert json.loads(loaded.portable_state) == json.loads(record.portable_state)
        assert loaded.status == StateStatus.INTERRUPTED
        assert loaded.interruptions == record.interruptions
        assert loaded.current_agent == record.current_agent
        assert loaded.created_at is not None and loaded.created_at.tzinfo is not None
        assert loaded.updated_at is not None and loaded.updated_at >= loaded.created_at

    async def test_an_update_replaces_the_portable_form_with_the_state(
        self, backend: StateBackend
    ) -> None:
        # The portable form is written with the native state or not at all: an update that
        # cannot translate clears the old translation and says why.
        await backend.save(
            make_record("s1", portable_state='{"old": 1}', portable_sdk="js"),
            expected_version=None,
        )
        await backend.save(
            make_record("s1", state='{"new": 1}', portable_sdk="js", portable_error="no way"),
            expected_version=1,
        )
        loaded = await backend.load("Ops", "s1")
        assert loaded is not None
        assert (loaded.state, loaded.portable_state) == ('{"new": 1}', None)
        assert (loaded.portable_sdk, loaded.portable_error) == ("js", "no way")

    async def test_load_of_unknown_session_is_none(self, backend: StateBackend) -> None:
        assert await backend.load("Ops", "no-such-session") is None
        assert await backend.get("no-such-id") is None

    async def test_update_at_expected_version_bumps_version(self, backend: StateBackend) -> None:
        first = await backend.save(make_record("s1"), expected_version=None)
        second = await backend.save(
            make_record("s1", status=StateStatus.COMPLETED, state="{}"), expected_version=1
        )
        assert second.version == 2 and second.id == first.id
        loaded = await backend.load("Ops", "s1")
        assert loaded is not None
        assert (loaded.status, loaded.state, loaded.version) == (StateStatus.COMPLETED, "{}", 2)
        assert loaded.created_at == first.created_at

    async def test_create_over_existing_row_conflicts(self, backend: StateBackend) -> None:
        await backend.save(make_record("s1", state='{"a": 1}'), expected_version=None)
        with pytest.raises(StateConflictError) as raised:
            await backend.save(make_record("s1", state='{"b": 2}'), expected_version=None)
        assert (raised.value.expected_version, raised.value.actual_version) == (None, 1)
        loaded = await backend.load("Ops", "s1")
        assert loaded is not None and loaded.state == '{"a": 1}'

    async def test_stale_version_conflicts_and_writes_nothing(self, backend: StateBackend) -> None:
        await backend.save(make_record("s1", state='{"v": 1}'), expected_version=None)
        await backend.save(make_record("s1", state='{"v": 2}'), expected_version=1)
        with pytest.raises(StateConflictError) as raised:
            await backend.save(make_record("s1", state='{"stale": true}'), expected_version=1)
        assert (raised.value.expected_version, raised.value.actual_version) == (1, 2)
        loaded = await backend.load("Ops", "s1")
        assert loaded is not None and (loaded.state, loaded.version) == ('{"v": 2}', 2)

    async def test_update_of_deleted_row_conflicts(self, backend: StateBackend) -> None:
        await backend.save(make_record("s1"), expected_version=None)
        assert await backend.delete("Ops", "s1") is True
        with pytest.raises(StateConflictError) as raised:
            await backend.save(make_record("s1"), expected_version=1)
        assert raised.value.actual_version is None
        assert await backend.load("Ops", "s1") is None

    async def test_overwrite_replaces_whatever_is_there(self, backend: StateBackend) -> None:
        created = await backend.save(make_record("s1"), expected_version=None, overwrite=True)
        replaced = await backend.save(
            make_record("s1", state='{"new": 1}'), expected_version=None, overwrite=True
        )
        assert (created.version, replaced.version) == (1, 2)
        loaded = await backend.load("Ops", "s1")
        assert loaded is not None and loaded.state == '{"new": 1}'

    async def test_racing_writers_exactly_one_wins(self, backend: StateBackend) -> None:
        await backend.save(make_record("s1"), expected_version=None)
        attempts = [
            backend.save(make_record("s1", state=f'{{"writer": {n}}}'), expected_version=1)
            for n in range(8)
        ]
        outcomes = await asyncio.gather(*attempts, return_exceptions=True)
        winners = [o for o in outcomes if not isinstance(o, BaseException)]
        losers = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(winners) == 1
        assert all(isinstance(o, StateConflictError) for o in losers), losers
        loaded = await backend.load("Ops", "s1")
        assert loaded is not None and loaded.version == 2
        assert loaded.state == winners[0].state

    async def test_rows_are_keyed_by_agent_and_session(self, backend: StateBackend) -> None:
        await backend.save(
            make_record("shared", agent_name="A", state='{"a": 1}'), expected_version=None
        )
        await backend.save(
            make_record("shared", agent_name="B", state='{"b": 1}'), expected_version=None
        )
        a, b = await backend.load("A", "shared"), await backend.load("B", "shared")
        assert a is not None and b is not None
        assert (a.state, b.state) == ('{"a": 1}', '{"b": 1}')
        assert await backend.delete("A", "shared") is True
        assert await backend.delete("A", "shared") is False
        assert await backend.load("B", "shared") is not None

    async def test_get_finds_a_row_by_id(self, backend: StateBackend) -> None:
        stored = await backend.save(make_record("s1"), expected_version=None)
        found = await backend.get(stored.id)
        assert found is not None and found.session_id == "s1"

    async def test_list_filters_and_orders_newest_first(self, backend: StateBackend) -> None:
        await backend.save(make_record("p1"), expected_version=None)
        await backend.save(make_record("done", status=StateStatus.COMPLETED), expected_version=None)
        await backend.save(make_record("p2", agent_name="Other"), expected_version=None)
        paused = await backend.list(status=StateStatus.INTERRUPTED)
        assert [r.session_id for r in paused] == ["p2", "p1"]
        assert [r.session_id for r in await backend.list(agent_name="Other")] == ["p2"]
        assert [r.session_id for r in await backend.list(session_id="done")] == ["done"]
        assert len(await backend.list(limit=2)) == 2
        assert await backend.list(status=StateStatus.RUNNING) == []

    async def test_hostile_keys_are_stored_verbatim(self, backend: StateBackend) -> None:
        hostile = [
            "'; DROP TABLE timestep_run_states; --",
            "日本語 ✓",
            string.punctuation,
            "a" * 255,
        ]
        for session_id in hostile:
            await backend.save(make_record(session_id), expected_version=None)
        for session_id in hostile:
            loaded = await backend.load("Ops", session_id)
            assert loaded is not None and loaded.session_id == session_id
        assert len(await backend.list(limit=1000)) == len(hostile)

    async def test_close_then_use_again(self, backend: StateBackend) -> None:
        await backend.save(make_record("s1"), expected_version=None)
        await backend.close()
        assert await backend.load("Ops", "s1") is not None
