"""Hostile input for Timestep, shared by tests/test_hostile_input.py and bench/_hostile.py.

Two halves, both free of pytest and hypothesis so a plain script can use them:

- *Generators* turn a ``random.Random`` into one hostile value: a stored payload, a session id,
  a database URL, a command line. The test module drives them from hypothesis (which then
  controls, replays and shrinks the randomness); the benchmark drives them from a seeded
  ``random.Random``.
- *Checks* feed one value to Timestep and raise :class:`Mishandled` unless it ended the way
  hostile input must: in a :class:`~timestep.TimestepError` or in success, within a time limit,
  with every stored row exactly as it was.

Nothing here ever reaches a host other than loopback: database URLs that would be connected to
are built from loopback hosts and a port nobody listens on (:func:`closed_port`), and any URL
whose driver arguments name another host is only constructed, never used. SQLite files only
ever live under the ``scratch`` folder a caller passes in.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import random
import socket
import string
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents import Agent, RunState

from interop_assistant import ASK_BERKELEY, HANDOFF, QUESTION, js_fixture, personal_assistant
from scenario import ask_to_delete, ops_agent, say
from timestep import RunStateStore, StateTooLargeError, StorageUnavailableError, TimestepError
from timestep import run_agent as _run_agent
from timestep.config import load_settings
from timestep.storage import StateRecord, StateStatus, StoredState, get_backend

__all__ = [
    "BYSTANDER_SESSION",
    "HOSTILE_SESSION",
    "KINDS",
    "NAMED_SESSION_IDS",
    "PAYLOAD_KINDS",
    "STATE_LIMIT",
    "TIMEOUT",
    "CliRun",
    "Mishandled",
    "Samples",
    "UrlCase",
    "check_cli",
    "check_payload",
    "check_session_id",
    "check_translation",
    "check_url",
    "cli_argv",
    "closed_port",
    "db_url_case",
    "mutate",
    "payload",
    "run_cli",
    "samples",
    "session_id",
    "snapshot",
    "text",
    "write_cli_files",
    "write_cli_rows",
]

KINDS = ("payload", "session id", "url", "cli")
"""The kinds of hostile case, in the order the benchmark reports them."""

STATE_LIMIT = 1024 * 1024
"""``max_state_bytes`` of the stores under test: small, so "too large" is cheap to build."""

BYSTANDER_SESSION = "bystander-5f0c2e"
"""A paused run no hostile case targets; every check proves it is untouched."""
HOSTILE_SESSION = "hostile-payload"
TIMEOUT = 20.0
"""Seconds any one case may take: a case still running then counts as a hang."""

# --- Building blocks ---------------------------------------------------------------------------

SQL_METACHARACTERS = ["'", '"', ";", "--", "/*", "*/", "%", "_", "\\", "`", "$1", "?", ":x", "[]"]
UNICODE = [
    "é",  # NFC ...
    "e\u0301",  # ... and NFD of the same letter: different keys
    "\u202e",  # right-to-left override
    "مرحبا",
    "שלום",
    "\u200b",  # zero-width space
    "\ufeff",  # byte order mark
    "\U0001f980",  # astral (a surrogate pair in UTF-16)
    "\U0001d518",
    "\x7f",
    "\n",
    "\t",
    "\r",
    " ",
]
NAMED_SESSION_IDS = [
    "'; DROP TABLE run_states; --",
    "'; DROP TABLE timestep_run_states; --",
    "' OR '1'='1",
    '" OR ""="',
    "%",
    "%%",
    "_",
    "bystander-%",
    "bystander-5f0c2_",
    "BYSTANDER-5F0C2E",
    "bystander-5f0c2e ",
    " bystander-5f0c2e",
    "\\",
    "\\%",
    "a\\'b",
    "nul\x00byte",
    "lone \ud800 surrogate",
    "\u202eevil.exe",
    "é",
    "e\u0301",
    "\U0001f980" * 255,
    "x" * 255,
    "x" * 256,
    "",
    " ",
    "\t\n",
    "[/]",
    "[red]markup[/red]",
    "$(rm -rf /)",
    "../../etc/passwd",
]
WRONG_TYPES: list[Any] = [None, True, False, 0, -1, 5, 1.5, "", "x", [], {}, [1], {"a": 1}, [[]]]
TYPE_CONFUSIONS: list[dict[str, Any]] = [
    {"current_agent": 5},
    {"current_agent": {"name": []}},
    {"current_agent": {"name": {"name": "Ops"}}},
    {"generated_items": "x"},
    {"generated_items": [1, "x", None]},
    {"$schemaVersion": []},
    {"$schemaVersion": {"a": 1}},
    {"$schemaVersion": 1.21},
    {"current_step": "x"},
    {"current_step": {"type": "next_step_interruption", "data": []}},
    {"current_step": {"type": "next_step_interruption", "data": {"interruptions": [1]}}},
    {"current_step": {"type": "next_step_interruption", "data": {"interruptions": "x"}}},
    {
        "current_step": {
            "type": "next_step_interruption",
            "data": {"interruptions": [{"tool_name": [1], "agent": {"name": {}}}]},
        }
    },
    {"context": "x"},
    {"model_responses": {"a": 1}},
    {"current_turn": "9" * 5000},
]

_JS_KEYS = {
    "current_agent": "currentAgent",
    "generated_items": "generatedItems",
    "current_step": "currentStep",
    "model_responses": "modelResponses",
    "current_turn": "currentTurn",
}

PAYLOAD_KINDS = (
    "bytes",
    "truncated",
    "wrong type",
    "type confused",
    "mutated",
    "deep",
    "huge number",
    "too large",
)


def text(rnd: random.Random, max_size: int = 40) -> str:
    """Random text mixing SQL metacharacters, unicode (RTL, astral, combining) and ASCII."""
    pieces = []
    for _ in range(rnd.randint(0, max_size)):
        pool = rnd.random()
        if pool < 0.4:
            pieces.append(rnd.choice(string.printable))
        elif pool < 0.6:
            pieces.append(rnd.choice(SQL_METACHARACTERS))
        elif pool < 0.85:
            pieces.append(rnd.choice(UNICODE))
        else:
            pieces.append(chr(rnd.choice([rnd.randint(0, 0xD7FF), rnd.randint(0xE000, 0x10FFFF)])))
    return "".join(pieces)


# --- Payloads ----------------------------------------------------------------------------------


def _paths(node: Any, prefix: tuple[Any, ...] = (), depth: int = 12) -> list[tuple[Any, ...]]:
    """Every path into a JSON value (as key/index tuples), to ``depth`` levels."""
    found = [prefix]
    if depth and isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key), depth - 1)
    elif depth and isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index), depth - 1)
    return found


def mutate(state: dict[str, Any], rnd: random.Random, edits: int | None = None) -> dict[str, Any]:
    """A copy of a state with 1-4 random edits: a value of the wrong type, a key deleted, a list
    item dropped, or one part of the state moved to where another belongs."""
    copy: dict[str, Any] = json.loads(json.dumps(state))
    for _ in range(edits or rnd.randint(1, 4)):
        paths = _paths(copy)[1:]
        if not paths:
            break
        path = rnd.choice(paths)
        parent = copy
        for step in path[:-1]:
            parent = parent[step]
        roll = rnd.random()
        if roll < 0.3 and isinstance(parent, dict | list):
            del parent[path[-1]]
        elif roll < 0.5:
            donor: Any = copy
            for step in rnd.choice(paths):
                donor = donor[step]
            parent[path[-1]] = json.loads(json.dumps(donor))
        else:
            parent[path[-1]] = json.loads(json.dumps(rnd.choice(WRONG_TYPES)))
    return copy


def payload(kind: str, rnd: random.Random, real: dict[str, Any]) -> str:
    """One hostile stored payload of ``kind`` (see :data:`PAYLOAD_KINDS`), built from ``real``
    (a genuine serialized state) where the kind needs one."""
    real_text = json.dumps(real, separators=(",", ":"))
    if kind == "bytes":
        raw = rnd.randbytes(rnd.randint(0, 300))
        return raw.decode(rnd.choice(["utf-8", "latin-1", "utf-16-le"]), errors="replace")
    if kind == "truncated":
        return real_text[: rnd.randrange(len(real_text))]
    if kind == "wrong type":
        return json.dumps(rnd.choice([*WRONG_TYPES, "1e999", [real], {"state": real}]))
    if kind == "type confused":
        confusion = rnd.choice(TYPE_CONFUSIONS)
        if "currentAgent" in real:  # a JS state: the same confusion under its camelCase keys
            confusion = {_JS_KEYS.get(key, key): value for key, value in confusion.items()}
        return json.dumps({**real, **confusion})
    if kind == "mutated":
        return json.dumps(mutate(real, rnd))
    if kind == "deep":
        depth = rnd.choice([1_000, 10_000, 100_000])
        opener, closer = rnd.choice([("[", "]"), ('{"a":', "}")])
        nested = opener * depth + "1" * (opener != "[") + closer * depth
        return rnd.choice([nested, real_text[:-1] + f',"context":{nested}}}'])
    if kind == "huge number":
        return real_text[:-1] + f',"current_turn":{"9" * rnd.randint(4_301, 50_000)}}}'
    if kind == "too large":
        padding = "x" * (STATE_LIMIT + rnd.randint(1, STATE_LIMIT))
        return real_text[:-1] + f',"padding":"{padding}"}}'
    raise ValueError(f"unknown payload kind {kind!r}")


# --- Session ids -------------------------------------------------------------------------------


def session_id(rnd: random.Random) -> str:
    """A session id: a named nasty one, random text, or a named one with random text around."""
    roll = rnd.random()
    if roll < 0.4:
        return rnd.choice(NAMED_SESSION_IDS)
    if roll < 0.8:
        return text(rnd, rnd.choice([10, 40, 300]))
    return text(rnd, 5) + rnd.choice(NAMED_SESSION_IDS) + text(rnd, 5)


# --- Database URLs -----------------------------------------------------------------------------

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def closed_port() -> int:
    """A loopback TCP port nothing listens on (connecting is refused at once)."""
    for candidate in (1, 9, 47):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", candidate)) != 0:
                return candidate
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        return int(taken.getsockname()[1])


@dataclass(frozen=True)
class UrlCase:
    """A URL and whether a check may connect with it: only when its driver would talk to
    loopback on ``port`` (a closed one), or open a SQLite file under ``scratch``."""

    url: str
    connectable: bool


def db_url_case(rnd: random.Random, scratch: Path, port: int) -> UrlCase:
    """A database URL from random schemes, credentials, hosts, ports, paths and options."""
    plausible = rnd.random() < 0.7  # the right shape with hostile parts, else anything
    scheme = rnd.choice(
        ["postgresql", "postgres", "postgresql+asyncpg", "sqlite", "sqlite+aiosqlite"]
        if plausible
        else [
            "postgresql",
            "postgres",
            "postgresql+asyncpg",
            "PostgreSQL",
            "postgresql+psycopg2",
            "sqlite",
            "sqlite+aiosqlite",
            "SQLite",
            "sqlite+pysqlite",
            "mysql",
            "redis",
            "http",
            "",
            "+",
            text(rnd, 8),
        ]
    )
    separator = "://" if plausible else rnd.choice(["://", ":/", ":", "//", ":///", ""])
    if "sqlite" in scheme.lower():
        name = "".join(c for c in text(rnd, 20) if c not in "/\\") or "db"
        rest = rnd.choice(
            [f"/{scratch}/{name}.db", f"/{scratch}/{name}", f"/{scratch}/", "", "/:memory:"]
        )
    else:
        user = rnd.choice(["", "postgres", text(rnd, 12)])
        password = rnd.choice(["", ":", f":{text(rnd, 12)}", ":p@ss:w/rd#?%"])
        at = "@" if user or password else rnd.choice(["", "@"])
        host = rnd.choice(
            [*LOOPBACK[:2], "[::1]"]
            if plausible
            else [*LOOPBACK[:2], "[::1]", "[::1", "", "127.0.0.1,127.0.0.1"]
        )
        port_text = (
            f":{port}"
            if plausible
            else rnd.choice(
                [
                    f":{port}",
                    "",
                    ":",
                    ":0",
                    ":65536",
                    ":99999",
                    ":-1",
                    f":{text(rnd, 4)}",
                ]
            )
        )
        database = rnd.choice(["/db", "/", "", f"/{text(rnd, 12)}"])
        rest = f"{user}{password}{at}{host}{port_text}{database}"
    query = rnd.choice(
        [
            "",
            "",
            "",
            "",
            "",
            "?timeout=abc",
            "?sslmode=require",
            "?ssl=bogus",
            f"?{text(rnd, 6)}={text(rnd, 6)}",
            "?prepared_statement_cache_size=x",
            "?uri=true&mode=ro",
        ]
    )
    url = rnd.choice(["", " ", "\t"]) + f"{scheme}{separator}{rest}{query}"
    if not plausible and rnd.random() < 0.3:
        url = text(rnd, 40)
    return UrlCase(url, _connectable(url, scratch, port))


def _connectable(url: str, scratch: Path, port: int) -> bool:
    """Whether connecting with ``url`` can only reach loopback ``port`` or a file in ``scratch``,
    judged from the very arguments SQLAlchemy's drivers would be given."""
    try:
        from sqlalchemy.engine import make_url

        from timestep.config import normalize_db_url

        parsed = make_url(normalize_db_url(url))
        dialect = parsed.get_dialect()()
        with warnings.catch_warnings():  # SQLite options it ignores: judged all the same
            warnings.simplefilter("ignore")
            _, options = dialect.create_connect_args(parsed)
    except Exception:
        return False  # it cannot even be turned into driver arguments: construction only
    if parsed.get_backend_name() == "postgresql":
        return bool(
            options.get("host") in LOOPBACK
            and options.get("port") == port
            and not {"host", "hostaddr", "port", "dsn", "passfile"} & set(parsed.query)
        )
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:"):
            return True
        resolved = os.path.realpath(database.removeprefix("file:"))
        return resolved.startswith(os.path.realpath(scratch) + os.sep)
    return False


# --- Command lines -----------------------------------------------------------------------------

# Each command of `timestep` the fuzzer drives (never `demo`: it starts processes and may use
# the network), with the options it takes and how to fill each one.
_COMMANDS: dict[tuple[str, ...], dict[str, str]] = {
    ("runs", "list"): {
        "--status": "status",
        "--agent": "text",
        "--session": "session",
        "--limit": "number",
        "--url": "url",
        "--json": "flag",
    },
    ("runs", "show"): {"": "session", "--url": "url", "--json": "flag"},
    ("state", "export"): {
        "": "session",
        "--to": "sdk",
        "--agent": "text",
        "--url": "url",
        "-o": "output",
    },
    ("state", "import"): {
        "": "file",
        "--agent": "text",
        "--session": "session",
        "--url": "url",
        "--overwrite": "flag",
        "--trust-unsigned": "flag",
    },
    ("usage",): {
        "--by": "grouping",
        "--since": "age",
        "--agent": "text",
        "--session": "session",
        "--url": "url",
        "--json": "flag",
    },
    ("traces", "list"): {
        "--session": "session",
        "--limit": "number",
        "--url": "url",
        "--json": "flag",
    },
    ("traces", "export"): {"": "session", "--url": "url", "-o": "output"},
    ("gc",): {"--older-than": "age", "--dry-run": "flag", "--url": "url", "--json": "flag"},
    ("workflows", "list"): {"--status": "text", "--limit": "number", "--url": "url"},
    ("workflows", "show"): {"": "session", "--url": "url", "--json": "flag"},
    ("workflows", "cancel"): {"": "session", "--url": "url"},
    ("workflows", "resume"): {"": "session", "--url": "url", "--force": "flag"},
    ("workers",): {"--url": "url", "--json": "flag"},
    ("approve",): {"": "session", "--call-id": "text", "--url": "url"},
    ("reject",): {"": "session", "--call-id": "text", "--message": "text", "--url": "url"},
}
_FILES = (
    "python-state.json",
    "js-state.json",
    "garbage.json",
    "deep.json",
    "binary.json",
    "huge-number.json",
)
_ROW_SESSIONS = tuple(f"hostile-{sdk}-{kind}" for sdk in ("python", "js") for kind in PAYLOAD_KINDS)


def write_cli_files(scratch: Path, python_state: dict[str, Any], js_state: dict[str, Any]) -> None:
    """The files `state import` is given: real states of both SDKs and hostile ones."""
    scratch.mkdir(parents=True, exist_ok=True)
    (scratch / "python-state.json").write_text(json.dumps(python_state), encoding="utf-8")
    (scratch / "js-state.json").write_text(json.dumps(js_state), encoding="utf-8")
    (scratch / "garbage.json").write_text('{"$schemaVersion": "1.21", "current_agent": 5')
    (scratch / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (scratch / "binary.json").write_bytes(bytes(range(256)) * 4)
    (scratch / "huge-number.json").write_text(
        json.dumps(python_state)[:-1] + f',"current_turn":{"9" * 5000}}}', encoding="utf-8"
    )


async def write_cli_rows(url: str, kit: Samples) -> None:
    """Rows for the command line to list, show and export: one hostile payload of each kind
    from each SDK, paused, under the sessions the command lines name (``hostile-SDK-KIND``)."""
    rnd = random.Random(0)
    for session in _ROW_SESSIONS:
        _, sdk, kind = session.split("-", 2)
        record = StateRecord(
            agent_name=kit.ops.name if sdk == "python" else kit.assistant.name,
            session_id=session,
            status=StateStatus.INTERRUPTED,
            sdk=sdk,
            schema_version="1.21" if sdk == "python" else "1.22",
            state=payload(kind, rnd, kit.python_state if sdk == "python" else kit.js_state),
        )
        with contextlib.suppress(TimestepError):  # PostgreSQL refuses a NUL character
            await get_backend(url).save(record, expected_version=None, overwrite=True)


def cli_argv(rnd: random.Random, urls: Sequence[str], scratch: Path) -> list[str]:
    """A `timestep` command line: a real command with real and hostile option values, or
    random tokens. Every file it writes or URL it names is under ``scratch`` / in ``urls``."""
    values: dict[str, Callable[[], str]] = {
        "text": lambda: text(rnd, 20),
        "session": lambda: rnd.choice(_ROW_SESSIONS) if rnd.random() < 0.3 else session_id(rnd),
        "status": lambda: rnd.choice(["interrupted", "running", "completed", "INTERRUPTED", ""]),
        "number": lambda: rnd.choice(["1", "0", "-1", "50", "x", "9" * 20, "9" * 5000, "1e3"]),
        "url": lambda: rnd.choice(list(urls)),
        "sdk": lambda: rnd.choice(["js", "python", "ruby", ""]),
        "grouping": lambda: rnd.choice(["day", "agent", "model", "session", "week"]),
        "age": lambda: rnd.choice(["30d", "12h", "0d", "-1d", "9" * 15 + "d", "x", "1y", ""]),
        "file": lambda: str(scratch / rnd.choice([*_FILES, "missing.json", ""])),
        "output": lambda: str(scratch / rnd.choice(["out.json", "no/such/dir/out.json", ""])),
        "flag": lambda: "",
    }
    command = rnd.choice(list(_COMMANDS))
    argv = list(command)
    for option, kind in _COMMANDS[command].items():
        if option == "" and rnd.random() < 0.9:
            argv.append(values[kind]())
        elif option and rnd.random() < 0.5:
            argv += [option] if kind == "flag" else [option, values[kind]()]
    for _ in range(rnd.choice([0, 0, 0, 1, 2])):
        # Unknown options and stray arguments; never an abbreviation of a real option
        # (argparse would accept `--out`), so only the values above name files and URLs.
        argv.insert(
            rnd.randint(0, len(argv)),
            rnd.choice(["--nope", "-z", "--", "-", "--json", text(rnd, 8).lstrip("-")]),
        )
    return argv


# --- Checks ------------------------------------------------------------------------------------


class Mishandled(AssertionError):
    """A hostile case ended some other way than a TimestepError or success with nothing
    changed: another exception, a hang, or a stored row that changed."""


async def snapshot(url: str) -> list[StoredState]:
    """Every stored row, in a stable order (timestamps and versions included)."""
    rows = await get_backend(url).list(limit=1_000_000)
    return sorted(rows, key=lambda row: row.id)


@dataclass(frozen=True)
class Samples:
    """Genuine material the hostile cases are cut from, and the agents that own it."""

    ops: Agent[Any]
    python_state: dict[str, Any]
    assistant: Agent[Any]
    js_state: dict[str, Any]
    assistant_state: dict[str, Any]

    def __repr__(self) -> str:
        return "Samples(ops, assistant, their paused states)"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # Hypothesis prints every argument of a failing example; the states are pages long.
        printer.text(repr(self))

    async def paused(self) -> RunState[Any, Agent[Any]]:
        """A fresh copy of the paused ops run (the ops agent's scripted model is used up)."""
        return await RunState.from_json(self.ops, self.python_state)

    async def add_bystander(self, url: str) -> StoredState:
        """Save the paused ops run every check proves untouched."""
        store = RunStateStore(agent=self.ops, session_id=BYSTANDER_SESSION, url=url)
        return await store.save(await self.paused(), overwrite=True)


async def samples() -> Samples:
    """A paused ops run, and the personal assistant paused in Python and in JS."""
    ops = ops_agent(ask_to_delete(), say("done"))
    paused = await _run_agent(ops, "clean up /tmp/x")
    assistant, _ = personal_assistant({"Weather": [ASK_BERKELEY]}, [])
    assistant_paused, _ = personal_assistant(
        {"Assistant": [HANDOFF], "Weather": [ASK_BERKELEY]}, []
    )
    assistant_state = (await _run_agent(assistant_paused, QUESTION)).to_state().to_json()
    return Samples(
        ops=ops,
        python_state=paused.to_state().to_json(),
        assistant=assistant,
        js_state=js_fixture("js_paused_after_oakland"),
        assistant_state=assistant_state,
    )


def _describe(value: object) -> str:
    shown = repr(value)
    return shown if len(shown) <= 300 else f"{shown[:300]}... ({len(shown)} characters)"


async def _settled(work: Any, what: str) -> Any:
    """``await work`` within :data:`TIMEOUT`; a hang is mishandled."""
    try:
        return await asyncio.wait_for(work, TIMEOUT)
    except TimeoutError:
        raise Mishandled(f"{what} did not finish within {TIMEOUT:.0f}s (a hang)") from None


async def check_payload(url: str, kit: Samples, kind: str, sdk: str, text_: str) -> str:
    """Store ``text_`` as the state of a row written by ``sdk``, then load it.

    Returns the outcome (``"loaded"`` or the error class); raises :class:`Mishandled` for any
    other exception, a hang, or a row (this one or the bystander) that changed.
    """
    agent = kit.ops if sdk == "python" else kit.assistant
    record = StateRecord(
        agent_name=agent.name,
        session_id=HOSTILE_SESSION,
        status=StateStatus.INTERRUPTED,
        sdk=sdk,
        schema_version="1.21" if sdk == "python" else "1.22",
        state=text_,
    )
    try:
        await get_backend(url).save(record, expected_version=None, overwrite=True)
    except TimestepError as refused:
        # The database itself refuses the text (PostgreSQL cannot hold a NUL character).
        return f"not stored ({type(refused).__name__})"
    before = await snapshot(url)
    store = RunStateStore(
        agent=agent, session_id=HOSTILE_SESSION, url=url, max_state_bytes=STATE_LIMIT
    )
    what = f"loading a {kind} {sdk} payload {_describe(text_)}"
    try:
        await _settled(store.load(), what)
        outcome = "loaded"
    except TimestepError as error:
        if kind == "too large" and not isinstance(error, StateTooLargeError):
            raise Mishandled(f"{what} raised {error!r}, not StateTooLargeError") from error
        outcome = type(error).__name__
    except Mishandled:
        raise
    except Exception as error:
        raise Mishandled(f"{what} raised {type(error).__name__}: {error}") from error
    if await snapshot(url) != before:
        raise Mishandled(f"{what} changed a stored row")
    return outcome


async def check_session_id(url: str, kit: Samples, sid: object, *, cli: bool = True) -> str:
    """Save, find, load and clear a paused run under ``sid``; returns ``"refused"`` when the
    store refuses the id, ``"round trip"`` when everything came back exactly as saved."""
    what = f"session id {_describe(sid)}"
    try:
        store = RunStateStore(agent=kit.ops, session_id=sid, url=url)  # type: ignore[arg-type]
    except TimestepError:
        return "refused"
    except Exception as error:
        raise Mishandled(f"{what}: the store raised {type(error).__name__}: {error}") from error
    before = await snapshot(url)
    state = await kit.paused()
    try:
        saved = await _settled(store.save(state), f"saving under {what}")
        row = await store.info()
        if row is None or (row.session_id, row.state, row.id) != (sid, saved.state, saved.id):
            raise Mishandled(f"{what}: the stored row is not the one saved: {row!r}")
        listed = await store.list(session_id=sid)  # type: ignore[arg-type]
        if [r.id for r in listed] != [saved.id]:
            raise Mishandled(f"{what}: listing the session found {[r.id for r in listed]}")
        if cli:
            # --session=ID: an id starting with "-" would otherwise read as an option.
            found = await asyncio.to_thread(
                run_cli, ["runs", "list", f"--session={sid}", "--json", "--url", url]
            )
            if found.code != 0 or [r["id"] for r in json.loads(found.out)] != [saved.id]:
                raise Mishandled(f"{what}: `timestep runs list --session` said {found}")
        again = await RunStateStore(agent=kit.ops, session_id=sid, url=url).load()  # type: ignore[arg-type]
        if again.to_json() != state.to_json():
            raise Mishandled(f"{what}: the loaded state differs from the saved one")
        if await store.clear() is not True:
            raise Mishandled(f"{what}: clear() found nothing to delete")
    except Exception as error:
        # Leave no row behind: the next case must start from the same table.
        with contextlib.suppress(Exception):
            await store.clear()
        if isinstance(error, Mishandled):
            raise
        raise Mishandled(f"{what}: the round trip raised {type(error).__name__}: {error}") from (
            error
        )
    if await snapshot(url) != before:
        raise Mishandled(f"{what}: the round trip changed another row")
    return "round trip"


async def check_url(case: UrlCase, kit: Samples, port: int, bystander_url: str) -> str:
    """Construct a store (and resolve settings) with ``case.url``; load with it only when it
    is connectable. Rows in ``bystander_url`` (another database) must not change."""
    what = f"database URL {_describe(case.url)}"
    before = await snapshot(bystander_url)
    try:
        load_settings(case.url)
        store = RunStateStore(agent=kit.ops, session_id="s", url=case.url)
    except TimestepError as error:
        outcome = f"refused ({type(error).__name__})"
    except Exception as error:
        raise Mishandled(f"{what}: construction raised {type(error).__name__}: {error}") from error
    else:
        outcome = "accepted"
        if case.connectable:
            started = time.monotonic()
            try:
                await _settled(store.load(), f"loading from {what}")
                outcome = "loaded"
            except TimestepError as error:
                outcome = type(error).__name__
                # A plain URL of a closed loopback port: refused at once, and said so.
                closed = f"127.0.0.1:{port}/" in store.url and "?" not in store.url
                if closed and not isinstance(error, StorageUnavailableError):
                    raise Mishandled(f"{what}: a closed port raised {error!r}") from error
                if closed and time.monotonic() - started > 5:
                    raise Mishandled(f"{what}: a closed port took over 5s to fail") from error
            except Mishandled:
                raise
            except Exception as error:
                raise Mishandled(f"{what}: loading raised {type(error).__name__}: {error}") from (
                    error
                )
    if await snapshot(bystander_url) != before:
        raise Mishandled(f"{what} changed a stored row")
    return outcome


@dataclass(frozen=True)
class CliRun:
    """What one in-process `timestep` invocation did."""

    code: object
    out: str
    err: str


def run_cli(argv: list[str]) -> CliRun:
    """``timestep.cli.main(argv)`` in this process, its output captured; other exceptions
    propagate. Call it outside any running event loop (or through ``asyncio.to_thread``)."""
    from timestep.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(argv)
        except SystemExit as done:
            return CliRun(done.code, out.getvalue(), err.getvalue())
    return CliRun("returned without SystemExit", out.getvalue(), err.getvalue())


async def check_cli(argv: list[str], bystander_url: str) -> int:
    """Run `timestep` with ``argv``: it must exit 0, 1 or 2 without a traceback and leave the
    rows in ``bystander_url`` alone (only `state import` may add rows, never change one)."""
    what = f"`timestep {' '.join(map(repr, argv))}`"
    before = await snapshot(bystander_url)
    try:
        done = await _settled(asyncio.to_thread(run_cli, argv), what)
    except Mishandled:
        raise
    except Exception as error:
        raise Mishandled(f"{what} raised {type(error).__name__}: {error}") from error
    if done.code not in (0, 1, 2) or "Traceback" in done.err:
        raise Mishandled(f"{what} ended with {done.code!r}: {done.err[-2000:]}")
    after = {row.id: row for row in await snapshot(bystander_url)}
    changed = [row.session_id for row in before if after.get(row.id) != row]
    if changed and argv[:2] != ["state", "import"]:
        raise Mishandled(f"{what} changed the stored rows of sessions {changed}")
    if any(row.session_id == BYSTANDER_SESSION for row in before if after.get(row.id) != row):
        raise Mishandled(f"{what} changed the bystander row")
    assert isinstance(done.code, int)
    return done.code


def check_translation(state: object, source: str, target: str) -> str:
    """``translate`` must return a translation or raise a TimestepError, nothing else."""
    from timestep.interop import translate

    try:
        translate(state, source=source, target=target)  # type: ignore[arg-type]
    except TimestepError as error:
        return type(error).__name__
    except Exception as error:
        raise Mishandled(
            f"translate({_describe(state)}, source={source!r}, target={target!r}) raised "
            f"{type(error).__name__}: {error}"
        ) from error
    return "translated"
