"""TimestepSession: the SDK's Session protocol on the Timestep database."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
import session_writer
from agents.memory import SessionSettings
from sqlalchemy import text
from workflow_support import fork

from scenario import ask_to_delete, ops_agent, say
from timestep import (
    ConfigurationError,
    RunStateStore,
    SessionSettingsError,
    TimestepSession,
    run_agent,
)
from timestep.storage import close_backends, get_backend
from timestep.storage.schema import MIGRATIONS


@pytest.mark.parametrize("stream", [False, True], ids=["run", "streamed"])
async def test_history_survives_an_approval_round_trip_without_duplicates(
    db_url: str, stream: bool
) -> None:
    session = TimestepSession("ticket-42", url=db_url)
    agent = ops_agent(ask_to_delete(), name="Ops")
    paused = await run_agent(agent, "clean up /tmp/x", session=session, stream=stream)
    await RunStateStore(agent=agent, session_id="ticket-42", url=db_url).save(paused)

    # Another process: same session id, a fresh session object and agent.
    resumed_agent = ops_agent(say("Deleted /tmp/x."))
    state = await RunStateStore(agent=resumed_agent, session_id="ticket-42", url=db_url).load()
    state.approve(state.get_interruptions()[0])
    later = TimestepSession("ticket-42", url=db_url)
    result = await run_agent(resumed_agent, state, session=later, stream=stream)
    assert result.final_output == "Deleted /tmp/x."

    items = await later.get_items()
    kinds = [item.get("type") or item.get("role") for item in items]
    assert kinds == ["user", "function_call", "function_call_output", "message"]
    calls = Counter(item["call_id"] for item in items if "call_id" in item)
    assert calls == {"call-1": 2}  # one call, one output: nothing duplicated or orphaned

    # The next turn sends the whole history, once.
    resumed_agent.model.extend([say("Anything else?")])  # type: ignore[union-attr]
    await run_agent(resumed_agent, "thanks", session=later)
    sent = resumed_agent.model.last_call.input  # type: ignore[union-attr]
    assert [i.get("type") or i.get("role") for i in sent] == [*kinds, "user"]


async def test_session_protocol_operations(db_url: str) -> None:
    session = TimestepSession(url=db_url)
    assert len(session.session_id) == 32
    assert await session.get_items() == [] and await session.pop_item() is None

    await session.add_items([{"role": "user", "content": f"m{n}"} for n in range(5)])
    assert [i["content"] for i in await session.get_items(limit=2)] == ["m3", "m4"]
    assert (await session.pop_item()) == {"role": "user", "content": "m4"}
    assert await session.count() == 4

    other = TimestepSession("other", url=db_url)
    await other.add_items([{"role": "user", "content": "elsewhere"}])
    await session.clear_session()
    assert await session.get_items() == []
    assert [i["content"] for i in await other.get_items()] == ["elsewhere"]


async def test_an_append_retried_with_its_idempotency_key_is_stored_once(db_url: str) -> None:
    session = TimestepSession("ticket-7", url=db_url)
    reply = [{"role": "user", "content": "refund?"}, {"role": "assistant", "content": "Done."}]

    # A web handler retries after a timeout that hid a successful write.
    await session.add_items(reply, idempotency_key="ticket-7:turn-1")
    await session.add_items(reply, idempotency_key="ticket-7:turn-1")
    assert await session.get_items() == reply

    # Another key, or no key at all, appends as always.
    await session.add_items([{"role": "user", "content": "thanks"}], idempotency_key="turn-2")
    await session.add_items([{"role": "user", "content": "bye"}])
    await session.add_items([{"role": "user", "content": "bye"}])
    assert [i["content"] for i in await session.get_items()][2:] == ["thanks", "bye", "bye"]

    # A key belongs to its session: the same key elsewhere is another append.
    other = TimestepSession("ticket-8", url=db_url)
    await other.add_items(reply, idempotency_key="ticket-7:turn-1")
    assert await other.get_items() == reply


async def test_the_same_keyed_append_racing_itself_is_stored_once(db_url: str) -> None:
    # Two workers replaying one step at once, on a session that does not exist yet.
    reply = [{"role": "assistant", "content": f"part {n}"} for n in range(3)]
    await asyncio.gather(
        *(
            TimestepSession("race", url=db_url).add_items(reply, idempotency_key="wf:step:4")
            for _ in range(8)
        )
    )
    assert await TimestepSession("race", url=db_url).get_items() == reply


async def test_a_bad_idempotency_key_is_refused_and_stores_nothing(sqlite_url: str) -> None:
    session = TimestepSession("s", url=sqlite_url)
    await session.add_items([{"role": "user", "content": "kept"}])
    for bad in ("", 7):
        with pytest.raises(ConfigurationError, match="idempotency_key must be a non-empty"):
            await session.add_items([{"role": "user", "content": "x"}], idempotency_key=bad)  # type: ignore[arg-type]
    assert [i["content"] for i in await session.get_items()] == ["kept"]


async def test_a_history_stored_before_idempotency_keys_existed_is_kept(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A database written by the release before keys: its sessions chain stops at version 1.
    monkeypatch.setitem(MIGRATIONS, "sessions", MIGRATIONS["sessions"][:1])
    async with get_backend(db_url).transaction() as conn:  # type: ignore[attr-defined]
        for statement in (
            "INSERT INTO timestep_sessions VALUES ('ticket-1', :now, :now)",
            "INSERT INTO timestep_session_items (session_id, item, created_at) "
            """VALUES ('ticket-1', '{"role": "user", "content": "from last year"}', :now)""",
        ):
            await conn.execute(text(statement), {"now": datetime.now(UTC)})
    await close_backends()
    monkeypatch.undo()

    session = TimestepSession("ticket-1", url=db_url)
    await session.add_items([{"role": "user", "content": "now"}], idempotency_key="k")
    await session.add_items([{"role": "user", "content": "now"}], idempotency_key="k")
    assert [i["content"] for i in await session.get_items()] == ["from last year", "now"]


async def test_many_users_writing_first_to_a_new_conversation_at_once_lose_nothing(
    db_url: str,
) -> None:
    # Twenty messages arrive together for each of three brand-new conversations.
    async def say_hello(session_id: str, n: int) -> None:
        await TimestepSession(session_id, url=db_url).add_items(
            [{"role": "user", "content": f"hello {n}"}]
        )

    ids = [f"new-{s}" for s in range(3)]
    await asyncio.gather(*(say_hello(session_id, n) for n in range(20) for session_id in ids))

    for session_id in ids:
        items = await TimestepSession(session_id, url=db_url).get_items()
        assert sorted(i["content"] for i in items) == sorted(f"hello {n}" for n in range(20))


def test_processes_writing_first_to_new_conversations_at_once_lose_nothing(
    db_url: str, timestep_home: Path
) -> None:
    writers, sessions = 4, 10
    start = multiprocessing.get_context("forkserver").Barrier(writers)
    processes = [
        fork(session_writer.write, db_url, start, f"w{w}", sessions) for w in range(writers)
    ]
    for process in processes:
        process.join(timeout=120)
    assert [process.exitcode for process in processes] == [0] * writers

    async def contents(session_id: str) -> list[str]:
        try:
            items = await TimestepSession(session_id, url=db_url).get_items()
        finally:
            await close_backends()
        return sorted(str(i["content"]) for i in items)

    for s in range(sessions):
        expected = sorted(f"w{w}:{s}" for w in range(writers))
        assert asyncio.run(contents(f"fresh-{s}")) == expected


async def test_session_settings_limit_applies_by_default(sqlite_url: str) -> None:
    session = TimestepSession("s", url=sqlite_url, session_settings=SessionSettings(limit=1))
    await session.add_items([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])
    assert [i["content"] for i in await session.get_items()] == ["b"]
    assert len(await session.get_items(limit=10)) == 2


async def test_an_unreadable_item_is_skipped_not_fatal(sqlite_url: str) -> None:
    from timestep.storage import get_backend
    from timestep.storage.schema import session_items

    session = TimestepSession("s", url=sqlite_url)
    await session.add_items([{"role": "user", "content": "ok"}])
    async with get_backend(sqlite_url).transaction() as conn:  # type: ignore[attr-defined]
        await conn.execute(session_items.update().values(item="{broken"))
    await session.add_items([{"role": "user", "content": "after"}])
    assert [i["content"] for i in await session.get_items()] == ["after"]


async def test_bad_session_settings_are_refused_before_anything_is_read(sqlite_url: str) -> None:
    session = TimestepSession("s", url=sqlite_url, session_settings={"limit": 1})
    assert session.session_settings == SessionSettings(limit=1)
    await session.add_items([{"role": "user", "content": "kept"}])

    # A typo, a bad value, the wrong type: refused at construction, as the SDK's sessions do,
    # with an error callers of either catch (TypeError, ValueError) and Timestep's own.
    for bad, problem in [
        ({"limitt": 1}, "Unknown session settings: limitt"),
        ({"limit": "ten"}, "limit: Input should be a valid integer"),
        (50, "got int"),
    ]:
        with pytest.raises(SessionSettingsError, match=problem) as raised:
            TimestepSession("s", url=sqlite_url, session_settings=bad)  # type: ignore[arg-type]
        assert all(isinstance(raised.value, t) for t in (ConfigurationError, TypeError, ValueError))
        assert "session_settings={'limit': 50}" in str(raised.value)
    assert [i["content"] for i in await TimestepSession("s", url=sqlite_url).get_items()] == [
        "kept"
    ]


def test_bad_session_ids_and_backends_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="session_id"):
        TimestepSession("")
    with pytest.raises(ConfigurationError, match="postgresql:// or sqlite:///"):
        TimestepSession("s", url="memory://x")
