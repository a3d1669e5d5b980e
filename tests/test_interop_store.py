"""Cross-language runs in storage: rows keep both forms, files of either SDK load, and what
cannot be translated is kept natively with the reason, never lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from interop_assistant import ASK_BERKELEY, HANDOFF, QUESTION, js_fixture, personal_assistant
from subprocesses import run_python
from timestep import (
    RunStateStore,
    StateConflictError,
    StateCorruptedError,
    StateNotFoundError,
    StateStatus,
    run_agent,
)
from timestep.errors import IncompatibleStateError
from timestep.state_transfer import export_state, import_state
from timestep.storage import get_backend


async def test_a_state_js_cannot_hold_is_still_saved_with_the_reason(sqlite_url: str) -> None:
    assistant, _ = personal_assistant({"Assistant": [HANDOFF], "Weather": [ASK_BERKELEY]}, [])
    store = RunStateStore(agent=assistant, session_id="dev", url=sqlite_url)
    briefed = [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": QUESTION}]

    stored = await store.save(await run_agent(assistant, briefed))

    assert stored.status == StateStatus.INTERRUPTED and stored.portable_state is None
    assert stored.portable_sdk == "js" and stored.portable_error is not None
    assert "original_input[0]" in stored.portable_error
    assert "'developer' message" in stored.portable_error
    assert (await store.load()).get_interruptions()  # Python still resumes it
    with pytest.raises(IncompatibleStateError, match="'dev'") as raised:
        await export_state(get_backend(sqlite_url), "dev", to="js")
    assert raised.value.item == "original_input[0]"


async def test_loading_a_js_row_python_cannot_hold_names_the_run_and_changes_nothing(
    sqlite_url: str,
) -> None:
    state = js_fixture("js_paused_after_oakland")
    hosted = {"type": "hosted_tool_call", "name": "web_search_call", "id": "ws"}
    state["generatedItems"].insert(
        2, {"type": "tool_call_item", "rawItem": hosted, "agent": {"name": "Weather"}}
    )
    await import_state(get_backend(sqlite_url), json.dumps(state), session_id="hosted")
    store = RunStateStore(agent=personal_assistant({}, [])[0], session_id="hosted", url=sqlite_url)
    before = await store.info()

    with pytest.raises(IncompatibleStateError) as raised:
        await store.load()

    assert raised.value.session_id == "hosted" and raised.value.item == "generatedItems[2].rawItem"
    assert "saved by the JS Agents SDK" in str(raised.value)
    assert await store.info() == before


async def test_import_refuses_what_is_not_a_state_and_an_unfinished_run(sqlite_url: str) -> None:
    backend = get_backend(sqlite_url)
    with pytest.raises(StateCorruptedError, match="not valid JSON"):
        await import_state(backend, "{truncated", session_id="s")
    with pytest.raises(StateCorruptedError, match="not a serialized RunState"):
        await import_state(backend, '{"hello": 1}', session_id="s")

    paused = json.dumps(js_fixture("js_paused_after_oakland"))
    first = await import_state(backend, paused, session_id="s")
    assert (first.agent_name, first.sdk, first.portable_sdk) == ("Assistant", "js", "python")
    assert first.status == StateStatus.INTERRUPTED and first.portable_state is not None
    with pytest.raises(StateConflictError, match="--overwrite"):
        await import_state(backend, paused, session_id="s")
    assert (await import_state(backend, paused, session_id="s", overwrite=True)).version == 2

    finished = json.dumps(js_fixture("js_finished_after_reject"))
    done = await import_state(backend, finished, session_id="done", agent_name="Assistant")
    assert done.status == StateStatus.COMPLETED
    # A finished run is history: importing over it needs no --overwrite.
    assert (await import_state(backend, finished, session_id="done")).version == 2


async def test_export_finds_the_run_or_says_how(sqlite_url: str) -> None:
    backend = get_backend(sqlite_url)
    with pytest.raises(StateNotFoundError, match="timestep runs list"):
        await export_state(backend, "nothing", to="js")
    paused = json.dumps(js_fixture("js_paused_after_oakland"))
    await import_state(backend, paused, session_id="shared")
    await import_state(backend, paused, session_id="shared", agent_name="Other")
    with pytest.raises(StateNotFoundError, match="--agent"):
        await export_state(backend, "shared", to="js")
    native = await export_state(backend, "shared", to="js", agent_name="Other")
    assert json.loads(native) == json.loads(paused)  # the writer's own form, unchanged


async def test_the_json_file_form_keeps_the_portable_state(tmp_path: Path) -> None:
    assistant, _ = personal_assistant({"Assistant": [HANDOFF], "Weather": [ASK_BERKELEY]}, [])
    store = RunStateStore(tmp_path / "trip.json", assistant)
    await store.save(await run_agent(assistant, QUESTION))

    document = json.loads((tmp_path / "trip.json").read_text())
    assert document["portable_state"]["$schemaVersion"] == "1.22"
    assert document["timestep"]["portable_sdk"] == "js"
    stored = await store.info()
    assert (
        stored is not None
        and json.loads(stored.portable_state or "{}") == (document["portable_state"])
    )
    assert (await store.load()).get_interruptions()


async def test_a_bare_js_state_file_loads_in_python(tmp_path: Path) -> None:
    # What a TypeScript program writes with fs.writeFileSync(path, state.toString()).
    path = tmp_path / "paused-in-js.json"
    path.write_text(json.dumps(js_fixture("js_paused_after_oakland")))
    assistant, _ = personal_assistant({}, [])
    store = RunStateStore(path, assistant)
    stored = await store.info()
    assert stored is not None and (stored.sdk, stored.status) == ("js", StateStatus.INTERRUPTED)
    assert [i.call_id for i in (await store.load()).get_interruptions()] == ["call-berk"]


def test_cli_import_of_an_unreadable_file_says_why(timestep_home: Path, tmp_path: Path) -> None:
    done = run_python(
        "-m",
        "timestep.cli",
        "state",
        "import",
        str(tmp_path / "nope.json"),
        home=timestep_home,
        ok=False,
    )
    assert done.returncode == 2 and "Cannot read" in done.stderr and "nope.json" in done.stderr
