"""Hostile input: whatever lands in a row, a session id, a URL or a command line, Timestep ends
in a TimestepError or in success, quickly, and never changes a stored row it was not asked to.

First the user's story: a paused run keeps working while an outside writer fills the table with
garbage. Then properties, with hypothesis driving the shared generators in tests/hostile.py
(bench/_hostile.py drives the same ones from a seeded random.Random for `bench/faults.py`):

- stored payloads: random bytes, truncations of a real state, valid JSON of the wrong types,
  type-confused and mutated states, nesting 100,000 deep, huge numbers, states over the size
  limit, written as either SDK, then loaded;
- ``timestep.interop.translate`` on mutated and random states of both SDKs;
- session ids with SQL metacharacters, NUL, lone surrogates, RTL and astral text, near-copies
  of another session's id, very long ids: refused at construction, or a round trip that gives
  back exactly what was saved (through the API and `timestep runs list --session`);
- database URLs of random schemes, credentials, hosts, ports and options: refused at
  construction, or, pointed at a closed loopback port, StorageUnavailableError at once;
- `timestep` command lines: every real command (but `demo`) with hostile values, in-process:
  exit 0, 1 or 2 without a traceback.

Every property also checks a bystander row (a paused run no case targets) is untouched.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import hostile
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from scenario import ask_to_delete, ops_agent, say
from timestep import (
    ConfigurationError,
    RunStateStore,
    StateCorruptedError,
    StateTooLargeError,
    StorageUnavailableError,
    TimestepError,
    plugins,
    run_agent,
)
from timestep.cli import _parser
from timestep.config import url_scheme
from timestep.interop import translate
from timestep.storage import close_backends, get_backend

T = TypeVar("T")
Run = Callable[[Coroutine[Any, Any, T]], T]

# Sized for a shared 2-core machine: the module takes well under a minute. A hang fails at the
# deadline. The examples are the same on every run, so a failure here is never a fluke;
# TIMESTEP_HOSTILE_EXAMPLES=500 runs a longer campaign of fresh random ones.
_SCALE = int(os.environ.get("TIMESTEP_HOSTILE_EXAMPLES", "0"))
settings.register_profile(
    "hostile",
    deadline=timedelta(seconds=hostile.TIMEOUT),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=not _SCALE,
    # Shrinking a failure can take longer than the whole module; the Mishandled message
    # already names the case. A campaign shrinks.
    phases=[Phase.explicit, Phase.generate, *([Phase.shrink] if _SCALE else [])],
    database=None,  # no .hypothesis/ folder in the working tree
)
HOSTILE = settings.get_profile("hostile")


def examples(count: int) -> settings:
    return settings(HOSTILE, max_examples=_SCALE or count)


@pytest.fixture
def run() -> Iterator[Run[Any]]:
    """One event loop for all examples of a test, so the database pool is opened once; its
    backends are closed in that loop before it ends."""
    with asyncio.Runner() as runner:
        yield runner.run
        runner.run(close_backends())


@pytest.fixture
def kit(run: Run[hostile.Samples]) -> hostile.Samples:
    return run(hostile.samples())


# --- The user's story --------------------------------------------------------------------------


def test_a_paused_run_survives_garbage_written_next_to_it(
    db_url: str, run: Run[Any], kit: hostile.Samples
) -> None:
    ops = ops_agent(ask_to_delete(), say("Deleted."))

    async def scenario() -> None:
        result = await run_agent(ops, "clean up /tmp/x")
        await RunStateStore(agent=ops, session_id="ticket-42", url=db_url).save(result)
        # An outside writer fills the table with garbage under other sessions ...
        rnd = random.Random(7)
        for kind in hostile.PAYLOAD_KINDS:
            text = hostile.payload(kind, rnd, kit.python_state)
            outcome = await hostile.check_payload(db_url, kit, kind, "python", text)
            # An edited state may still be a valid one; the rest can never load.
            assert outcome != "loaded" or kind in ("mutated", "type confused"), (kind, outcome)
        # ... and the paused run still loads, is approved and finishes.
        state = await RunStateStore(agent=ops, session_id="ticket-42", url=db_url).load()
        for item in state.get_interruptions():
            state.approve(item)
        assert (await run_agent(ops, state)).final_output == "Deleted."

    run(scenario())


# --- Stored payloads ---------------------------------------------------------------------------


@examples(30)
@given(
    kind=st.sampled_from(hostile.PAYLOAD_KINDS),
    sdk=st.sampled_from(["python", "js"]),
    rnd=st.randoms(use_true_random=False),
)
def test_any_stored_payload_loads_or_raises_a_timestep_error(
    db_url: str, run: Run[Any], kit: hostile.Samples, kind: str, sdk: str, rnd: random.Random
) -> None:
    run(kit.add_bystander(db_url))
    real = kit.python_state if sdk == "python" else kit.js_state
    # check_payload also insists that a state over the limit raises StateTooLargeError.
    run(hostile.check_payload(db_url, kit, kind, sdk, hostile.payload(kind, rnd, real)))


@examples(30)
@given(text=st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_any_text_as_a_payload_loads_or_raises_a_timestep_error(
    sqlite_url: str, run: Run[Any], kit: hostile.Samples, text: str
) -> None:
    run(kit.add_bystander(sqlite_url))
    outcome = run(hostile.check_payload(sqlite_url, kit, "text", "python", text))
    assert outcome != "loaded"


@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_nesting_100k_deep_is_a_corrupted_state_not_a_crash(
    sqlite_url: str, run: Run[Any], kit: hostile.Samples, opener: str
) -> None:
    # json.loads raises RecursionError on this; the store must say what it is.
    nested = opener * 100_000 + "1" * (opener != "[") + ("]" if opener == "[" else "}") * 100_000
    assert run(hostile.check_payload(sqlite_url, kit, "deep", "python", nested)) == (
        "StateCorruptedError"
    )


def test_a_state_over_the_size_limit_is_refused_before_it_is_parsed(
    sqlite_url: str, run: Run[Any], kit: hostile.Samples
) -> None:
    store = RunStateStore(
        agent=kit.ops, session_id="big", url=sqlite_url, max_state_bytes=hostile.STATE_LIMIT
    )
    # Not even JSON: were it parsed, this would be StateCorruptedError.
    oversized = "{" * (hostile.STATE_LIMIT + 1)
    run(hostile.check_payload(sqlite_url, kit, "too large", "python", oversized))

    async def load() -> None:
        with pytest.raises(StateTooLargeError) as raised:
            await RunStateStore(
                agent=kit.ops,
                session_id=hostile.HOSTILE_SESSION,
                url=sqlite_url,
                max_state_bytes=hostile.STATE_LIMIT,
            ).load()
        assert (raised.value.size, raised.value.limit) == (len(oversized), hostile.STATE_LIMIT)
        assert isinstance(raised.value, ValueError)

        small = RunStateStore(agent=kit.ops, session_id="big", url=sqlite_url, max_state_bytes=64)
        with pytest.raises(StateTooLargeError):
            await small.save(await kit.paused())
        assert await store.info() is None  # nothing was written

    run(load())


# --- Translation between the SDKs --------------------------------------------------------------


@examples(150)
@given(
    which=st.sampled_from(["ops", "assistant", "js"]),
    rnd=st.randoms(use_true_random=False),
    edits=st.integers(1, 6),
)
def test_translating_a_mutated_state_translates_or_raises_a_timestep_error(
    kit: hostile.Samples, which: str, rnd: random.Random, edits: int
) -> None:
    state = {"ops": kit.python_state, "assistant": kit.assistant_state, "js": kit.js_state}[which]
    source, target = ("js", "python") if which == "js" else ("python", "js")
    hostile.check_translation(hostile.mutate(state, rnd, edits), source, target)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=30,
)
_KEYS = st.sampled_from(
    [
        "currentAgent",
        "current_agent",
        "generatedItems",
        "generated_items",
        "currentStep",
        "current_step",
        "modelResponses",
        "model_responses",
        "context",
        "originalInput",
        "original_input",
        "lastProcessedResponse",
        "last_processed_response",
        "toolUseTracker",
    ]
)


@examples(150)
@given(
    body=st.dictionaries(_KEYS | st.text(max_size=12), _JSON, max_size=8),
    direction=st.sampled_from([("python", "1.21", "js"), ("js", "1.22", "python")]),
    document=_JSON,
    sdks=st.tuples(st.text(max_size=8), st.text(max_size=8)),
)
def test_translating_any_json_translates_or_raises_a_timestep_error(
    body: dict[str, Any], direction: tuple[str, str, str], document: object, sdks: tuple[str, str]
) -> None:
    source, schema, target = direction
    # Shaped enough to reach the translator (the right $schemaVersion), hostile below that.
    hostile.check_translation({**body, "$schemaVersion": schema}, source, target)
    hostile.check_translation(document, source, target)
    hostile.check_translation(body, *sdks)


def test_translating_a_state_nested_beyond_the_recursion_limit_is_corrupted(
    kit: hostile.Samples,
) -> None:
    deep: Any = "Weather"
    for _ in range(5_000):
        deep = {"name": [deep]}
    for state, source, target in (
        ({**kit.assistant_state, "current_agent": deep}, "python", "js"),
        ({**kit.js_state, "currentAgent": deep}, "js", "python"),
    ):
        with pytest.raises(StateCorruptedError, match="nested too deeply"):
            translate(state, source=source, target=target)


# --- Session ids -------------------------------------------------------------------------------


@examples(25)
@given(
    sid=st.sampled_from(hostile.NAMED_SESSION_IDS)
    | st.text(min_size=1, max_size=300)
    | st.builds(hostile.session_id, st.randoms(use_true_random=False))
)
def test_any_session_id_is_refused_or_round_trips_exactly(
    db_url: str, run: Run[Any], kit: hostile.Samples, sid: str
) -> None:
    run(kit.add_bystander(db_url))
    assert run(hostile.check_session_id(db_url, kit, sid)) in ("refused", "round trip")


@pytest.mark.parametrize(
    "sid", [42, b"ticket", ["ticket"], "", " \t", "x" * 256, "a\x00b", "lone \ud800"]
)
def test_session_ids_that_cannot_be_keys_are_refused_at_construction(
    kit: hostile.Samples, sid: object
) -> None:
    with pytest.raises(ConfigurationError, match="session_id"):
        RunStateStore(agent=kit.ops, session_id=sid)  # type: ignore[arg-type]


def test_ids_that_look_alike_are_different_runs(
    db_url: str, run: Run[Any], kit: hostile.Samples
) -> None:
    # Case, trailing spaces, Unicode normalization and LIKE wildcards never merge two sessions.
    lookalikes = ["é", "e\u0301", "Ticket", "ticket", "ticket ", "tick%", "tick_t"]

    async def save_all() -> None:
        saved = []
        for sid in lookalikes:
            store = RunStateStore(agent=kit.ops, session_id=sid, url=db_url)
            saved.append((await store.save(await kit.paused())).id)
        rows = await get_backend(db_url).list(limit=100)
        assert sorted((row.session_id, row.id) for row in rows) == sorted(
            zip(lookalikes, saved, strict=True)
        )

    run(save_all())


# --- Database URLs -----------------------------------------------------------------------------


@examples(60)
@given(rnd=st.randoms(use_true_random=False))
def test_any_database_url_is_refused_or_fails_fast_when_unreachable(
    sqlite_url: str, run: Run[Any], kit: hostile.Samples, tmp_path: Path, rnd: random.Random
) -> None:
    run(kit.add_bystander(sqlite_url))
    case = hostile.db_url_case(rnd, tmp_path / "scratch", hostile.closed_port())
    run(hostile.check_url(case, kit, hostile.closed_port(), sqlite_url))


@examples(60)
@given(url=st.text(max_size=120))
def test_any_text_as_a_url_is_accepted_or_refused_at_construction(
    kit: hostile.Samples, url: str
) -> None:
    # Construction only: it never connects, so any host in the text is safe to name.
    try:
        store = RunStateStore(agent=kit.ops, session_id="s", url=url)
    except TimestepError as error:
        assert isinstance(error, ConfigurationError), error
    else:  # accepted: resolved to a backend that is installed
        assert url_scheme(store.url) in plugins.state_backend_factories()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
@pytest.mark.parametrize("credentials", ["", "app@", "app:p%40ss%3Aw%2Frd@", "a:b:c@"])
def test_a_closed_loopback_port_is_storage_unavailable_at_once(
    run: Run[Any], kit: hostile.Samples, host: str, credentials: str
) -> None:
    url = f"postgresql://{credentials}{host}:{hostile.closed_port()}/agents"
    store = RunStateStore(agent=kit.ops, session_id="s", url=url)
    started = time.monotonic()
    with pytest.raises(StorageUnavailableError, match="nothing was written"):
        run(store.load())
    assert time.monotonic() - started < 5
    assert "p%40ss" not in str(store) and "p@ss" not in str(store)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app@127.0.0.1:99999/agents",
        "postgresql://app@127.0.0.1:port/agents",
        "postgresql://app@[::1/agents",
        "postgresql://app@127.0.0.1:5432/ag\x00ents",
        "sqlite:////tmp/a\ud800b.db",
        42,
    ],
)
def test_urls_the_driver_would_choke_on_are_refused_at_construction(
    kit: hostile.Samples, url: Any
) -> None:
    with pytest.raises(ConfigurationError, match="URL"):
        RunStateStore(agent=kit.ops, session_id="s", url=url)


# --- The command line --------------------------------------------------------------------------


def _commands(parser: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], set[str]]:
    """Every runnable command of the real parser with its option strings."""
    found: dict[tuple[str, ...], set[str]] = {}
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            for name, sub in action.choices.items():
                found |= _commands(sub, (*prefix, name))
    if not found and prefix:
        found[prefix] = {o for a in parser._actions for o in a.option_strings} - {"-h", "--help"}
    return found


def test_the_fuzzer_drives_every_command_but_the_demo() -> None:
    real = _commands(_parser())
    assert set(hostile._COMMANDS) == set(real) - {("demo",)}
    for command, options in hostile._COMMANDS.items():
        assert {o for o in options if o} <= real[command], command


@pytest.fixture
def cli_urls(sqlite_url: str, tmp_path: Path) -> list[str]:
    port = hostile.closed_port()
    return [
        sqlite_url,
        sqlite_url,
        f"sqlite:///{tmp_path / 'scratch' / 'other.db'}",
        f"postgresql://app@127.0.0.1:{port}/agents",
        f"postgresql://app@127.0.0.1:{port}/agents?foo=bar",
        "postgresql://app@127.0.0.1:port/agents",
        "mysql://root@127.0.0.1/db",
        "not a url",
        "",
        "[/]://x",
    ]


@examples(40)
@given(rnd=st.randoms(use_true_random=False))
def test_any_command_line_exits_0_1_or_2_without_a_traceback(
    sqlite_url: str,
    cli_urls: list[str],
    run: Run[Any],
    kit: hostile.Samples,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    rnd: random.Random,
) -> None:
    scratch = tmp_path / "scratch"
    monkeypatch.chdir(tmp_path)  # a stray relative path lands here, never in the repository
    monkeypatch.setenv("TIMESTEP_DB_URL", sqlite_url)  # commands without --url use it too
    hostile.write_cli_files(scratch, kit.python_state, kit.js_state)
    run(hostile.write_cli_rows(sqlite_url, kit))
    run(kit.add_bystander(sqlite_url))
    argv = hostile.cli_argv(rnd, cli_urls, scratch)
    assert run(hostile.check_cli(argv, sqlite_url)) in (0, 1, 2)


# Each of these once ended in a traceback. A user error exits 2 naming it; a stored row that
# cannot be read is still shown (exit 0), its conversation marked unreadable.
CRASHERS = {
    "markup-in-id": (["runs", "show", "[/]"], 2),
    "undecodable-bytes": (["runs", "list", "--session", "\udcff"], 2),
    "huge-limit": (["runs", "list", "--limit", "9" * 20], 2),
    "device": (["state", "import", "/dev/zero"], 2),
    "binary-file": (["state", "import", "binary.json"], 2),
    "deep-file": (["state", "import", "deep.json"], 2),
    "huge-number-file": (["state", "import", "huge-number.json"], 2),
    "huge-number-export": (["state", "export", "hostile-python-huge number", "--to", "js"], 2),
    "huge-number-show": (["runs", "show", "hostile-js-huge number"], 0),
    "deep-show": (["runs", "show", "hostile-python-deep"], 0),
    "nul-path": (["state", "export", "x", "--to", "js", "-o", "a\x00b"], 2),
    "huge-trace-limit": (["traces", "list", "--limit", "9" * 20], 2),
    "huge-since": (["usage", "--since", "9" * 15 + "d"], 2),
    "huge-age": (["gc", "--older-than", "9" * 15 + "d"], 2),
}


@pytest.mark.parametrize("case", list(CRASHERS))
def test_command_lines_that_once_crashed_end_cleanly(
    sqlite_url: str,
    run: Run[Any],
    kit: hostile.Samples,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
) -> None:
    argv, code = CRASHERS[case]
    hostile.write_cli_files(tmp_path / "scratch", kit.python_state, kit.js_state)
    monkeypatch.chdir(tmp_path / "scratch")
    monkeypatch.setenv("TIMESTEP_DB_URL", sqlite_url)
    run(hostile.write_cli_rows(sqlite_url, kit))
    run(kit.add_bystander(sqlite_url))
    done = hostile.run_cli(argv)
    assert done.code == code and "Traceback" not in done.err, done
    if code == 2:
        assert "error:" in done.err or "usage:" in done.err
    else:
        assert "unreadable" in done.out


def test_a_session_id_that_looks_like_markup_is_shown_as_text(
    sqlite_url: str, run: Run[Any], kit: hostile.Samples
) -> None:
    async def save() -> None:
        store = RunStateStore(agent=kit.ops, session_id="[bold]x[/]", url=sqlite_url)
        await store.save(await kit.paused())

    run(save())
    listing = hostile.run_cli(["runs", "list", "--url", sqlite_url])
    assert listing.code == 0 and "[bold]x[/]" in listing.out
    missing = hostile.run_cli(["runs", "show", "[red]nope[/]", "--url", sqlite_url])
    assert missing.code == 2 and "'[red]nope[/]'" in missing.err


def test_the_benchmark_runs_the_same_cases_and_counts_them_all_handled(
    sqlite_url: str, run: Run[Any]
) -> None:
    # bench/faults.py prints these counts; bench scripts import their helpers from bench/.
    sys.path.insert(0, str(Path(__file__).parent.parent / "bench"))
    try:
        from _hostile import hostile_cases
    finally:
        sys.path.pop(0)
    counts = run(hostile_cases(sqlite_url, 3))
    assert counts == dict.fromkeys(hostile.KINDS, (3, 3))
