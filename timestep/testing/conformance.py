"""Conformance suites: every state backend, and every session, must pass theirs.

:class:`SessionConformance` is described on the class. For :class:`StateBackendConformance`,
subclass it in your test module and provide a ``backend`` fixture::

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
from typing import Any, Protocol, cast

import pytest
from agents import Agent, RunConfig, Runner, TResponseInputItem
from agents.memory import Session, SessionSettings
from agents.testing import ScriptedModel, assistant_message

from ..errors import StateConflictError
from ..storage.base import StateBackend, StateRecord, StateStatus

__all__ = [
    "SessionConformance",
    "SessionFactory",
    "StateBackendConformance",
    "UnreadableItemWriter",
    "make_record",
]


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


class SessionFactory(Protocol):
    """Makes the session under test: ``session_factory("chat-1", session_settings=...)``."""

    def __call__(
        self,
        session_id: str,
        *,
        session_settings: SessionSettings | dict[str, Any] | None = None,
    ) -> Session: ...


class UnreadableItemWriter(Protocol):
    """Stores, as the newest item of ``session``'s history, a row that cannot be decoded."""

    async def __call__(self, session: Session) -> None: ...


def _contents(items: list[TResponseInputItem]) -> list[Any]:
    return [item.get("content") for item in items]


def _messages(*contents: str) -> list[TResponseInputItem]:
    roles = ("user", "assistant")
    return [
        cast("TResponseInputItem", {"role": roles[n % 2], "content": text})
        for n, text in enumerate(contents)
    ]


class SessionConformance:
    """The behaviour the SDK's ``Session`` protocol promises, as the SDK's own sessions show it.

    Ported from the session tests of the OpenAI Agents SDK (``SQLiteSession``,
    ``AsyncSQLiteSession``, ``SQLAlchemySession``), so a session that passes behaves like
    them wherever the SDK takes one. Subclass it and provide a ``session_factory`` fixture
    (a :class:`SessionFactory` over an empty store, closing what it made afterwards)::

        class TestMySession(SessionConformance):
            @pytest.fixture
            def session_factory(self, tmp_path):
                def make(session_id, *, session_settings=None):
                    return MySession(session_id, tmp_path / "db", session_settings=session_settings)
                return make

            @pytest.fixture
            def write_unreadable_item(self):
                async def write(session):
                    ...  # insert 'not valid json {{{' as the session's newest row
                return write

    Without a ``write_unreadable_item`` fixture (an :class:`UnreadableItemWriter`), the tests
    of damaged rows are skipped.
    """

    @pytest.fixture
    def write_unreadable_item(self) -> UnreadableItemWriter:
        """Override to run the damaged-row tests; the default skips them."""
        pytest.skip("provide a write_unreadable_item fixture to test damaged rows")

    # -- a conversation ----------------------------------------------------------------------

    async def test_a_conversation_is_stored_popped_and_cleared(
        self, session_factory: SessionFactory
    ) -> None:
        session = session_factory("direct")
        assert await session.get_items() == []
        items = _messages("Hello", "Hi there!", "How are you?")
        await session.add_items(items)
        assert await session.get_items() == items

        assert await session.pop_item() == items[2]
        assert await session.get_items() == items[:2]
        assert await session.pop_item() == items[1]
        assert await session.pop_item() == items[0]
        assert await session.pop_item() is None
        assert await session.get_items() == []

        await session.add_items(items)
        await session.clear_session()
        assert await session.get_items() == []
        assert await session.pop_item() is None

    async def test_the_runner_sends_earlier_turns_to_the_model(
        self, session_factory: SessionFactory
    ) -> None:
        model = ScriptedModel([[assistant_message("San Francisco")], [assistant_message("CA")]])
        agent = Agent(name="Guide", model=model)
        session = session_factory("runner")
        first = await Runner.run(agent, "Where is the Golden Gate Bridge?", session=session)
        assert first.final_output == "San Francisco"
        second = await Runner.run(agent, "Which state?", session=session)
        assert second.final_output == "CA"

        sent = model.last_call.input if model.last_call else []
        assert "Golden Gate Bridge" in str(sent) and "San Francisco" in str(sent)
        assert len(await session.get_items()) == 4  # two questions, two answers

    async def test_sessions_with_different_ids_do_not_share_items(
        self, session_factory: SessionFactory
    ) -> None:
        cats, dogs = session_factory("cats"), session_factory("dogs")
        await cats.add_items(_messages("I like cats."))
        await dogs.add_items(_messages("I like dogs.", "Dogs are great."))

        popped = await dogs.pop_item()
        assert popped is not None and _contents([popped]) == ["Dogs are great."]
        assert _contents(await cats.get_items()) == ["I like cats."]
        assert _contents(await dogs.get_items()) == ["I like dogs."]
        await dogs.clear_session()
        assert _contents(await cats.get_items()) == ["I like cats."]

    async def test_a_second_object_for_the_same_id_sees_the_same_history(
        self, session_factory: SessionFactory
    ) -> None:
        await session_factory("shared").add_items(_messages("one", "two"))
        assert _contents(await session_factory("shared").get_items()) == ["one", "two"]

    # -- limits ------------------------------------------------------------------------------

    async def test_a_limit_gives_the_latest_items_oldest_first(
        self, session_factory: SessionFactory
    ) -> None:
        session = session_factory("limits")
        await session.add_items(_messages("m1", "r1", "m2", "r2", "m3", "r3"))
        assert _contents(await session.get_items(limit=2)) == ["m3", "r3"]
        assert _contents(await session.get_items(limit=4)) == ["m2", "r2", "m3", "r3"]
        assert len(await session.get_items(limit=10)) == 6
        assert await session.get_items(limit=0) == []
        assert len(await session.get_items()) == 6

    async def test_the_settings_limit_applies_unless_a_limit_is_given(
        self, session_factory: SessionFactory
    ) -> None:
        session = session_factory("settings-limit", session_settings=SessionSettings(limit=3))
        await session.add_items(_messages(*(f"m{n}" for n in range(10))))
        assert _contents(await session.get_items()) == ["m7", "m8", "m9"]
        assert _contents(await session.get_items(limit=2)) == ["m8", "m9"]
        assert len(await session.get_items(limit=10)) == 10

    async def test_run_config_settings_override_the_session_settings(
        self, session_factory: SessionFactory
    ) -> None:
        session = session_factory("override", session_settings=SessionSettings(limit=100))
        await session.add_items(_messages(*(f"turn {n}" for n in range(10))))
        model = ScriptedModel([[assistant_message("Got it")]])
        await Runner.run(
            Agent(name="Guide", model=model),
            "New question",
            session=session,
            run_config=RunConfig(session_settings=SessionSettings(limit=2)),
        )
        assert model.last_call is not None
        sent = [item.get("content") for item in model.last_call.input]
        assert sent == ["turn 8", "turn 9", "New question"]

    async def test_a_streamed_run_stores_its_turn_and_a_zero_limit_sends_no_history(
        self, session_factory: SessionFactory
    ) -> None:
        model = ScriptedModel([[assistant_message("Reply 1")], [assistant_message("Reply 2")]])
        agent = Agent(name="Guide", model=model)
        session = session_factory("streamed")
        streamed = Runner.run_streamed(agent, "Message 1", session=session)
        async for _ in streamed.stream_events():
            pass
        assert streamed.final_output == "Reply 1"
        assert len(await session.get_items()) == 2

        await Runner.run(
            agent,
            "Message 2",
            session=session,
            run_config=RunConfig(session_settings=SessionSettings(limit=0)),
        )
        assert model.last_call is not None
        assert [item.get("content") for item in model.last_call.input] == ["Message 2"]
        assert len(await session.get_items()) == 4

    async def test_a_limit_between_a_tool_call_and_its_output_sends_no_orphan_output(
        self, session_factory: SessionFactory
    ) -> None:
        history = cast(
            "list[TResponseInputItem]",
            [
                {"role": "user", "content": "Weather?"},
                {"type": "function_call", "call_id": "c1", "name": "weather", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
                {"role": "assistant", "content": "It is sunny."},
            ],
        )
        session = session_factory("tool-pair")
        await session.add_items(history)
        assert await session.get_items(limit=2) == history[-2:]

        model = ScriptedModel([[assistant_message("Sunny tomorrow too.")]])
        await Runner.run(
            Agent(name="Guide", model=model),
            "And tomorrow?",
            session=session,
            run_config=RunConfig(session_settings=SessionSettings(limit=2)),
        )
        assert model.last_call is not None
        assert model.last_call.input == [history[-1], {"role": "user", "content": "And tomorrow?"}]

    # -- settings ----------------------------------------------------------------------------

    def test_settings_default_to_an_empty_session_settings(
        self, session_factory: SessionFactory
    ) -> None:
        session = session_factory("default-settings")
        assert isinstance(session.session_settings, SessionSettings)
        assert session.session_settings.limit is None

    def test_settings_passed_as_a_dict_become_session_settings(
        self, session_factory: SessionFactory
    ) -> None:
        session = session_factory("dict-settings", session_settings={"limit": 0})
        assert isinstance(session.session_settings, SessionSettings)
        assert session.session_settings.limit == 0
        assert session.session_settings.resolve({"limit": 4}).limit == 4
        typed = session_factory("typed-settings", session_settings=SessionSettings(limit=5))
        assert typed.session_settings == SessionSettings(limit=5)

    def test_unknown_settings_are_refused_when_the_session_is_made(
        self, session_factory: SessionFactory
    ) -> None:
        with pytest.raises(TypeError, match="limitt"):
            session_factory("typo", session_settings={"limitt": 1})

    def test_settings_of_the_wrong_type_are_refused_when_the_session_is_made(
        self, session_factory: SessionFactory
    ) -> None:
        with pytest.raises(TypeError, match="SessionSettings"):
            session_factory("wrong-type", session_settings=5)  # type: ignore[arg-type]

    # -- content and concurrency -------------------------------------------------------------

    async def test_unicode_and_sql_text_are_stored_verbatim(
        self, session_factory: SessionFactory
    ) -> None:
        texts = [
            "こんにちは",
            "😊👍",
            "café Привет",
            "O'Reilly",
            "DROP TABLE sessions;",
            '"SELECT * FROM users WHERE name = "admin";"',
            "Robert'); DROP TABLE students;--",
        ]
        session = session_factory("verbatim")
        await session.add_items(_messages(*texts))
        assert _contents(await session.get_items()) == texts

    async def test_adding_no_items_stores_nothing(self, session_factory: SessionFactory) -> None:
        session = session_factory("empty-add")
        await session.add_items([])
        assert await session.get_items() == []
        assert await session.pop_item() is None

    async def test_items_keep_their_order_within_and_across_appends(
        self, session_factory: SessionFactory
    ) -> None:
        # Appends in quick succession share timestamps; order must not depend on them.
        session = session_factory("order")
        await session.add_items(_messages(*(f"batch {n}" for n in range(5))))
        for n in range(5):
            await session.add_items(_messages(f"single {n}"))
        expected = [f"batch {n}" for n in range(5)] + [f"single {n}" for n in range(5)]
        assert _contents(await session.get_items()) == expected
        assert _contents(await session.get_items(limit=3)) == expected[-3:]
        popped = [await session.pop_item() for _ in range(3)]
        assert _contents([item for item in popped if item is not None]) == expected[:-4:-1]

    async def test_concurrent_appends_lose_nothing(self, session_factory: SessionFactory) -> None:
        session = session_factory("concurrent-add")
        await asyncio.gather(*(session.add_items(_messages(f"m{n}")) for n in range(10)))
        assert sorted(_contents(await session.get_items())) == sorted(f"m{n}" for n in range(10))

    async def test_concurrent_pops_return_each_item_once(
        self, session_factory: SessionFactory
    ) -> None:
        # Several workers share one conversation: none gets an item twice, or None while
        # items remain.
        texts = [f"m{n}" for n in range(8)]
        await session_factory("concurrent-pop").add_items(_messages(*texts))
        workers = [session_factory("concurrent-pop") for _ in texts]
        popped = await asyncio.gather(*(worker.pop_item() for worker in workers))
        assert sorted(_contents([item for item in popped if item is not None])) == texts
        assert await workers[0].get_items() == []

    # -- damaged rows ------------------------------------------------------------------------

    async def test_get_items_skips_an_unreadable_row(
        self, session_factory: SessionFactory, write_unreadable_item: UnreadableItemWriter
    ) -> None:
        session = session_factory("damaged")
        await session.add_items(_messages("before"))
        await write_unreadable_item(session)
        await session.add_items(_messages("after"))
        assert _contents(await session.get_items()) == ["before", "after"]

    async def test_a_limit_counts_readable_items_only(
        self, session_factory: SessionFactory, write_unreadable_item: UnreadableItemWriter
    ) -> None:
        session = session_factory("damaged-limit")
        await session.add_items(_messages("valid 0", "valid 1", "valid 2"))
        await write_unreadable_item(session)
        assert _contents(await session.get_items(limit=2)) == ["valid 1", "valid 2"]
        assert _contents(await session.get_items(limit=5)) == ["valid 0", "valid 1", "valid 2"]

    async def test_the_settings_limit_counts_readable_items_only(
        self, session_factory: SessionFactory, write_unreadable_item: UnreadableItemWriter
    ) -> None:
        session = session_factory("damaged-settings", session_settings=SessionSettings(limit=2))
        await session.add_items(_messages("valid 0", "valid 1", "valid 2"))
        for _ in range(3):
            await write_unreadable_item(session)
        assert _contents(await session.get_items()) == ["valid 1", "valid 2"]

    async def test_pop_item_drops_unreadable_newest_rows_and_returns_the_next_item(
        self, session_factory: SessionFactory, write_unreadable_item: UnreadableItemWriter
    ) -> None:
        session = session_factory("damaged-pop")
        valid = _messages("valid")
        await session.add_items(valid)
        await write_unreadable_item(session)
        await write_unreadable_item(session)
        assert await session.pop_item() == valid[0]
        assert await session.get_items() == []
        assert await session.pop_item() is None

    async def test_pop_item_on_only_unreadable_rows_empties_the_history(
        self, session_factory: SessionFactory, write_unreadable_item: UnreadableItemWriter
    ) -> None:
        session = session_factory("damaged-only")
        await write_unreadable_item(session)
        assert await session.pop_item() is None
        assert await session.get_items() == []
        await session.add_items(_messages("fresh start"))
        assert _contents(await session.get_items()) == ["fresh start"]
