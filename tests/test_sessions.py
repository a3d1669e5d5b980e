"""TimestepSession: the SDK's Session protocol on the Timestep database."""

from __future__ import annotations

from collections import Counter

import pytest
from agents.memory import SessionSettings

from scenario import ask_to_delete, ops_agent, say
from timestep import ConfigurationError, RunStateStore, TimestepSession, run_agent


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


def test_bad_session_ids_and_backends_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="session_id"):
        TimestepSession("")
    with pytest.raises(ConfigurationError, match="postgresql:// or sqlite:///"):
        TimestepSession("s", url="memory://x")
