"""No API key, bearer token, tracing key or database password reaches a stored row or a log line.

The user's scenario first: an ops team runs with every credential set (an OpenAI key, a gateway
token in the agent's headers, an Ollama Cloud key, a Firecrawl key, a tracing export key, a
database password) and everything switched on (``TIMESTEP_TRACING=db``, full payloads, INFO
logging, DBOS at INFO). Their agent searches the web, pauses for approval, is saved, loaded,
approved and resumed with a session; it is a stored agent; a second agent runs durably on DBOS.
Then every table of the database, every column and every row (DBOS's base64-pickled columns
decoded too) and every log record at INFO and above is searched for each secret.

The model servers, Ollama Cloud and Firecrawl are the plugins' fakes on 127.0.0.1, so each
credential is really sent (the test checks that) and nothing leaves the machine.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import pickle
import re
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from agents import (
    Agent,
    GuardrailFunctionOutput,
    ModelRetrySettings,
    ModelSettings,
    RunConfig,
    function_tool,
    input_guardrail,
    retry_policies,
    set_tracing_export_api_key,
)
from agents.testing import ScriptedModel, assistant_message
from agents.testing import function_call as scripted_call
from agents.tracing.processors import default_exporter
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from workflow_support import launched

from timestep import (
    AgentDefinitionError,
    ModelCallError,
    RunStateStore,
    StepError,
    TimestepSession,
    load_agent,
    registry,
    run_agent,
    save_agent,
)
from timestep.errors import SearchBackendError
from timestep.observability import Redactor, approve, flush_tracing
from timestep.run import (
    _reset_default_model_provider,
    close_default_model_provider,
    default_model_provider,
)
from timestep.tools import search_backends as search_backend_cache
from timestep.tools import web_search, web_search_tool
from timestep.workflows import WorkflowSettings, register_agent, run_agent_workflow
from timestep.workflows.sessions import open_session, session_spec

pytest.importorskip("timestep_ollama", reason="the Ollama plugin is not installed")
pytest.importorskip("timestep_firecrawl", reason="the Firecrawl plugin is not installed")

# The plugins' fake servers (loopback HTTP, every request recorded) serve this scenario too.
PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
for fakes in (PLUGINS / "timestep-ollama" / "tests", PLUGINS / "timestep-firecrawl" / "tests"):
    if str(fakes) not in sys.path:
        sys.path.append(str(fakes))

import fake_firecrawl  # noqa: E402
from fake_ollama import FakeOllama  # noqa: E402
from fake_ollama import Reply as OllamaReply  # noqa: E402
from fake_openai import FakeOpenAI, Reply, function_call  # noqa: E402

SECRETS = {
    "OPENAI_API_KEY": "sk-test-SECRET-openai-4f1c9a",
    "OLLAMA_API_KEY": "ollama-SECRET-cloud-8d2e71",
    "FIRECRAWL_API_KEY": "fc-SECRET-firecrawl-3b7d05",
    "tracing export key": "sk-test-SECRET-tracing-a61f3e",
    "gateway bearer token": "gw-SECRET-bearer-5c0b9d",
    "database password": "pw-SECRET-db-e93a42",
}
GATEWAY_TOKEN = SECRETS["gateway bearer token"]
GATEWAY_HEADERS = {"Authorization": f"Bearer {GATEWAY_TOKEN}"}


# --- the scenario ---------------------------------------------------------------------------


async def test_no_secret_reaches_a_stored_row_or_an_info_log_line(
    credentials: Servers,
    durable: WorkflowSettings,
    logs: list[logging.LogRecord],
    request: pytest.FixtureRequest,
) -> None:
    url = durable.url
    ran: list[str] = []

    @function_tool(needs_approval=True)
    def delete_file(path: str) -> str:
        """Delete a file."""
        ran.append(path)
        return f"deleted {path}"

    registry.add(delete_file)
    request.addfinalizer(lambda: registry.remove(delete_file))
    ops = Agent(
        name="Ops",
        instructions="Keep the servers tidy.",
        model="gpt-4.1-mini",  # through the team's OpenAI-compatible gateway
        model_settings=ModelSettings(temperature=0.1, extra_headers=GATEWAY_HEADERS),
        tools=[web_search, delete_file],
    )

    # A stored definition is readable by anyone with the database: the token is refused...
    with pytest.raises(AgentDefinitionError, match=r"extra_headers\['Authorization'\]"):
        await save_agent(ops, url=url)
    # ...so the agent is stored without it and the header is added back after loading.
    await save_agent(ops.clone(model_settings=ModelSettings(temperature=0.1)), url=url)
    ops = await load_agent("Ops", url=url)
    ops.model_settings = ops.model_settings.resolve(ModelSettings(extra_headers=GATEWAY_HEADERS))

    # Search, then ask to delete: the run pauses, is saved, loaded, approved and resumed.
    credentials.openai.reply(
        Reply(tool_calls=[function_call("web_search", query="clean /tmp", allowed_domains=None)]),
        Reply(tool_calls=[function_call("delete_file", path="/tmp/cache")]),
        Reply("Deleted /tmp/cache."),
    )
    session = TimestepSession("ticket-42", url=url)
    store = RunStateStore(agent=ops, session_id="ticket-42", url=url)
    tracing_key = {"api_key": SECRETS["tracing export key"]}
    config = RunConfig(model_provider=default_model_provider(), tracing=tracing_key)
    paused = await run_agent(ops, "Free some disk space", session=session, run_config=config)
    assert paused.interruptions
    await store.save(paused)

    state = await RunStateStore(agent=ops, session_id="ticket-42", url=url).load()
    for item in state.get_interruptions():
        approve(state, item, by="alice@example.com")
    done = await run_agent(ops, state, session=session, run_config=config)
    await store.save(done)
    assert done.final_output == "Deleted /tmp/cache." and ran == ["/tmp/cache"]

    # A second agent on Ollama Cloud: once directly, once as a durable workflow.
    credentials.ollama.reply(OllamaReply("Nothing new on ticket-43."), OllamaReply("Still quiet."))
    scout = register_agent(Agent(name="Scout", model="ollama/gpt-oss:120b-cloud"))
    desk = TimestepSession("ticket-43", url=url)
    await run_agent(scout, "Anything new?", session=desk)
    durable_run = await run_agent_workflow(scout, "And now?", desk, workflow_id="scout-43")
    assert durable_run.final_output == "Still quiet."
    assert flush_tracing()

    # Every credential was really used...
    assert {r.headers["authorization"] for r in credentials.openai.requests} == {
        GATEWAY_HEADERS["Authorization"]
    }
    assert {r.headers["authorization"] for r in credentials.ollama.requests} == {
        f"Bearer {SECRETS['OLLAMA_API_KEY']}"
    }
    assert [r.headers["authorization"] for r in credentials.firecrawl.requests] == [
        f"Bearer {SECRETS['FIRECRAWL_API_KEY']}"
    ]
    assert await desk.count() == 4 and len(await session.get_items()) >= 6
    # ...and none of them was stored or logged (DBOS and both HTTP clients did log, at INFO).
    assert scan_database(url) == []
    assert {"dbos", "httpx"} <= {record.name for record in logs}
    assert scan_logs(logs) == []


async def test_search_backend_errors_that_quote_credentials_are_scrubbed_everywhere(
    sqlite_url: str, logs: list[logging.LogRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Third-party backends whose errors quote what they called: a key in a query string, a
    # password in a URL. Their text goes to the log and, as the tool's output, to the model,
    # the session, the run state and the trace.
    class KeyInQuery:
        async def search(self, query: str, *, limit: int, allowed_domains: Any) -> list[Any]:
            key = SECRETS["FIRECRAWL_API_KEY"]
            raise RuntimeError(f"401 Unauthorized for https://search.example/q?api_key={key}")

    class PasswordInUrl:
        async def search(self, query: str, *, limit: int, allowed_domains: Any) -> list[Any]:
            password = SECRETS["database password"]
            raise SearchBackendError(f"no index at postgresql://search:{password}@db/index")

    monkeypatch.setenv("TIMESTEP_TRACING", "db")
    monkeypatch.setenv("TIMESTEP_TRACE_PAYLOADS", "full")
    monkeypatch.setenv("TIMESTEP_DB_URL", sqlite_url)
    searcher = Agent(
        name="Searcher",
        model=ScriptedModel(
            [
                [scripted_call("first", {"query": "pep 8"}, call_id="c1")],
                [scripted_call("second", {"query": "pep 8"}, call_id="c2")],
                [assistant_message("Search is down.")],
            ]
        ),
        tools=[
            replace(web_search_tool(backend=KeyInQuery()), name="first"),
            replace(web_search_tool(backend=PasswordInUrl()), name="second"),
        ],
    )
    session = TimestepSession("search-1")

    result = await run_agent(searcher, "Find PEP 8", session=session)
    await RunStateStore(agent=searcher, session_id="search-1").save(result)
    assert flush_tracing()

    outputs = [item.output for item in result.new_items if item.type == "tool_call_output_item"]
    assert len(outputs) == 2 and all(str(o).startswith("web search failed") for o in outputs)
    assert "[REDACTED]" in outputs[1]  # the model still learns what went wrong, minus the secret
    assert sum("web_search backend" in r.getMessage() for r in logs) == 2
    assert scan_logs(logs) == []
    assert scan_database(sqlite_url) == []


@pytest.mark.parametrize(
    ("settings", "where"),
    [
        (ModelSettings(extra_headers={"X-Api-Key": "k-123"}), "extra_headers['X-Api-Key']"),
        (ModelSettings(extra_query={"api-key": "k-123"}), "extra_query['api-key']"),
        (ModelSettings(extra_args={"api_key": "k-123"}), "extra_args['api_key']"),
        (
            ModelSettings(extra_body={"auth": {"note": f"Bearer {GATEWAY_TOKEN}"}}),
            "extra_body['auth']['note']",
        ),
    ],
)
async def test_stored_agents_refuse_a_credential_wherever_model_settings_carry_it(
    sqlite_url: str, settings: ModelSettings, where: str
) -> None:
    agent = Agent(name="Gateway", model="gpt-4.1", model_settings=settings)

    with pytest.raises(AgentDefinitionError, match=re.escape(where)) as refused:
        await save_agent(agent, url=sqlite_url)

    assert "load_agent()" in str(refused.value)  # the message says how to do it instead
    assert scan_database(sqlite_url) == []
    # Headers that are no credential are stored as they are.
    plain = agent.clone(model_settings=ModelSettings(extra_headers={"OpenAI-Beta": "v2"}))
    await save_agent(plain, url=sqlite_url)
    loaded = await load_agent("Gateway", url=sqlite_url)
    assert loaded.model_settings.extra_headers == {"OpenAI-Beta": "v2"}


def test_trace_payloads_lose_whatever_is_held_under_a_credentials_name() -> None:
    token = SECRETS["gateway bearer token"]
    payload = {
        "headers": {"X-Api-Key": token, "Accept": "application/json", "api_key_set": True},
        "connect": f"postgresql://app:{SECRETS['database password']}@db/agents",
        "search": f"https://search.example/q?query=pep+8&access_token={token}",
        "usage": {"input_tokens": 12, "max_tokens": 100},
    }

    stored = Redactor("full").payload(payload)

    assert stored == {
        "headers": {"X-Api-Key": "[REDACTED]", "Accept": "application/json", "api_key_set": True},
        "connect": "postgresql://app:[REDACTED]@db/agents",
        "search": "https://search.example/q?query=pep+8&access_token=[REDACTED]",
        "usage": {"input_tokens": 12, "max_tokens": 100},
    }


@pytest.mark.parametrize(
    "form",
    [
        "postgresql://app:{password}@127.0.0.1:5432/agents",
        "postgresql://app@127.0.0.1:5432/agents?password={password}",
        "postgresql://127.0.0.1:5432/agents?user=app&password={password}&ssl=disable",
    ],
    ids=["in-authority", "query", "query-no-user"],
)
def test_a_durable_sessions_password_is_left_out_of_the_workflow_and_supplied_by_the_worker(
    monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    # DBOS stores a workflow's arguments, the session's description among them, in the database.
    password = SECRETS["database password"]
    url = form.format(password=password)
    monkeypatch.setenv("TIMESTEP_DB_URL", url)  # the worker's own configuration
    session = TimestepSession("ticket-44", url=url)

    spec = session_spec(session)

    assert spec is not None and password not in repr(spec)
    reopened = open_session(spec)
    assert isinstance(reopened, TimestepSession) and reopened.url == session.url
    monkeypatch.setenv("TIMESTEP_DB_URL", "postgresql://app@127.0.0.1:5432/elsewhere")
    unknown = open_session(spec).url  # not this worker's database: PGPASSWORD's turn
    assert password not in unknown and "127.0.0.1:5432/agents" in unknown


# --- failing steps of a durable run ----------------------------------------------------------


@pytest.mark.parametrize("failure", ["401", "500", "connection refused"])
async def test_a_durable_runs_failing_model_call_leaves_no_key_in_the_database(
    credentials: Servers,
    durable: WorkflowSettings,
    logs: list[logging.LogRecord],
    monkeypatch: pytest.MonkeyPatch,
    failure: str,
) -> None:
    # DBOS checkpoints what a step raises, pickled: the model client's error holds its request,
    # and with it the Authorization header.
    if failure == "connection refused":
        monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # nothing listens
        _reset_default_model_provider()
    else:
        credentials.openai.reply(*[Reply(status=int(failure))] * 3)  # the client retries 500s
    writer = register_agent(Agent(name="Writer", model="gpt-4.1-mini"))

    with pytest.raises(Exception) as failed:
        await run_agent_workflow(writer, "Draft the release notes", workflow_id=f"w-{failure}")

    assert scan_database(durable.url) == []
    assert scan_logs(logs) == []
    error = failed.value
    assert isinstance(error, ModelCallError) and error.workflow_id == f"w-{failure}"
    if failure == "connection refused":
        assert error.status_code is None and error.is_network_error
        assert "Connection error" in str(error)
    else:
        assert error.status_code == int(failure) and not error.is_network_error
        assert f"scripted HTTP {failure}" in str(error)
        assert credentials.openai.requests  # the key really was sent
    assert error.model == "gpt-4.1-mini" and error.provider == "openai"
    # Attaching to the finished run again returns the recorded (scrubbed) error.
    sent = len(credentials.openai.requests)
    with pytest.raises(ModelCallError) as again:
        await run_agent_workflow(writer, "Draft the release notes", workflow_id=f"w-{failure}")
    assert again.value.status_code == error.status_code and str(again.value) == str(error)
    assert len(credentials.openai.requests) == sent


async def test_a_durable_run_still_retries_a_model_call_from_its_scrubbed_error(
    credentials: Servers, durable: WorkflowSettings
) -> None:
    # The SDK's retry logic reads the status code off the error, outside the step: the
    # scrubbed ModelCallError keeps it, so the provider's advice (retry a 500) still holds.
    credentials.openai.reply(*[Reply(status=500)] * 3, Reply("Recovered."))
    retry = ModelRetrySettings(max_retries=1, policy=retry_policies.provider_suggested())
    writer = register_agent(
        Agent(name="Writer", model="gpt-4.1-mini", model_settings=ModelSettings(retry=retry))
    )

    result = await run_agent_workflow(writer, "Draft the release notes", workflow_id="w-retry")

    assert result.final_output == "Recovered."
    assert len(credentials.openai.requests) == 4  # the client's own 3 tries, then the SDK's
    assert scan_database(durable.url) == []


async def test_a_durable_runs_failing_tool_leaves_no_credential_in_the_database(
    durable: WorkflowSettings, logs: list[logging.LogRecord]
) -> None:
    password = SECRETS["database password"]

    @function_tool(failure_error_function=None)  # the run fails with the tool's error
    async def crm_lookup(order: str) -> str:
        """Look an order up in the CRM."""
        request = httpx.Request(
            "GET", f"https://crm.example/orders/{order}", headers=GATEWAY_HEADERS
        )
        raise httpx.HTTPStatusError(
            f"Client error '401 Unauthorized' (via postgresql://crm:{password}@db/crm)",
            request=request,
            response=httpx.Response(401, request=request),
        )

    agent = register_agent(
        Agent(
            name="Support",
            model=ScriptedModel([[scripted_call("crm_lookup", {"order": "7"}, call_id="c1")]]),
            tools=[crm_lookup],
        )
    )

    with pytest.raises(Exception) as failed:
        await run_agent_workflow(agent, "Where is order 7?", workflow_id="crm-7")

    assert scan_database(durable.url) == []
    assert scan_logs(logs) == []
    error = failed.value
    assert isinstance(error, StepError) and not isinstance(error, ModelCallError)
    assert error.step == "timestep.tool:crm_lookup" and error.status_code == 401
    assert error.error_type == "HTTPStatusError" and "[REDACTED]" in str(error)


async def test_a_durable_runs_failing_guardrail_leaves_no_credential_in_the_database(
    durable: WorkflowSettings, logs: list[logging.LogRecord]
) -> None:
    class PolicyServiceDown(Exception):
        def __init__(self, message: str, headers: dict[str, str]) -> None:
            super().__init__(message)
            self.headers = headers

    @input_guardrail
    async def policy(context: Any, agent: Any, user_input: Any) -> GuardrailFunctionOutput:
        key = SECRETS["OPENAI_API_KEY"]
        raise PolicyServiceDown(f"policy check failed with key {key}", dict(GATEWAY_HEADERS))

    agent = register_agent(
        Agent(
            name="Guarded",
            model=ScriptedModel([[assistant_message("ok")]]),
            input_guardrails=[policy],
        )
    )

    with pytest.raises(Exception) as failed:
        await run_agent_workflow(agent, "hello", workflow_id="guarded-1")

    assert scan_database(durable.url) == []
    assert scan_logs(logs) == []
    error = failed.value
    assert isinstance(error, StepError) and error.step == "timestep.input_guardrail:policy"
    assert error.error_type == "PolicyServiceDown" and "[REDACTED]" in str(error)


# --- the scanners prove they can find what they look for -----------------------------------


async def test_the_database_scan_finds_a_secret_in_text_json_blobs_and_base64_pickles(
    db_url: str,
) -> None:
    secret = SECRETS["gateway bearer token"]
    pickled = base64.b64encode(pickle.dumps({"headers": {"Authorization": secret}})).decode()
    with _sync_engine(db_url) as engine, engine.begin() as conn:
        blob = "BYTEA" if engine.dialect.name == "postgresql" else "BLOB"
        conn.execute(text(f"CREATE TABLE planted (id INTEGER, note TEXT, data {blob})"))
        conn.execute(
            text("INSERT INTO planted VALUES (:id, :note, :data)"),
            [
                {"id": 1, "note": f"header: Bearer {secret}", "data": None},
                {"id": 2, "note": pickled, "data": None},
                {"id": 3, "note": "nothing here", "data": pickle.dumps([secret])},
                {"id": 4, "note": "clean", "data": b"clean"},
            ],
        )

    found = scan_database(db_url)

    assert [(f.table, f.column, f.row, f.secret, f.decoded) for f in found] == [
        ("planted", "note", 1, "gateway bearer token", False),
        ("planted", "note", 2, "gateway bearer token", True),
        ("planted", "data", 3, "gateway bearer token", False),
    ]


def test_the_log_capture_sees_every_logger_at_info_even_those_that_do_not_propagate(
    logs: list[logging.LogRecord],
) -> None:
    hidden = logging.getLogger("timestep-test.hidden")
    hidden.propagate = False  # like DBOS's logger: the root logger's handlers never see it
    hidden.setLevel(logging.INFO)
    try:
        hidden.info("connecting with %s", SECRETS["database password"])
        logging.getLogger("timestep").debug("below INFO: %s", SECRETS["OPENAI_API_KEY"])
    finally:
        hidden.propagate = True

    assert scan_logs(logs) == ["timestep-test.hidden INFO: database password"]


# --- scanning -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """A secret found in one cell: ``table.column`` of the ``row``-th row (1-based)."""

    table: str
    column: str
    row: int
    secret: str
    decoded: bool  # found only after base64-decoding part of the value


def scan_database(url: str) -> list[Finding]:
    """Every cell of every table (every schema) that holds one of :data:`SECRETS`."""
    found: list[Finding] = []
    with _sync_engine(url) as engine, engine.connect() as conn:
        for table in _tables(engine):
            rows = conn.execute(text(f"SELECT * FROM {table}"))
            columns = list(rows.keys())
            for number, row in enumerate(rows, start=1):
                for column, value in zip(columns, row, strict=True):
                    for name, decoded in _secrets_in(value):
                        name_of_table = table.replace('"', "").removeprefix("public.")
                        found.append(Finding(name_of_table, column, number, name, decoded))
    return found


def scan_logs(records: list[logging.LogRecord]) -> list[str]:
    """``"logger LEVEL: secret"`` for each captured record (exception text included) that
    holds one of :data:`SECRETS`."""
    formatter = logging.Formatter("%(message)s")
    return [
        f"{record.name} {record.levelname}: {name}"
        for record in records
        for name, value in SECRETS.items()
        if value in formatter.format(record)
    ]


def _secrets_in(value: Any) -> Iterator[tuple[str, bool]]:
    if value is None:
        return
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
    elif isinstance(value, dict | list):
        raw = json.dumps(value).encode()  # PostgreSQL JSON columns arrive parsed
    else:
        raw = str(value).encode()
    for name, secret in SECRETS.items():
        needle = secret.encode()
        if needle in raw:
            yield name, False
        elif any(needle in decoded for decoded in _base64_parts(raw)):
            yield name, True


def _base64_parts(raw: bytes, depth: int = 2) -> Iterator[bytes]:
    """What base64 runs in ``raw`` decode to (DBOS stores pickles that way), nested twice."""
    for run in re.findall(rb"[A-Za-z0-9+/]{16,}={0,2}", raw):
        try:
            decoded = base64.b64decode(run, validate=True)
        except (binascii.Error, ValueError):
            continue
        yield decoded
        if depth > 1:
            yield from _base64_parts(decoded, depth - 1)


def _tables(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            names = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))
            return [f'"{name}"' for (name,) in names]
        names = conn.execute(
            text(
                "SELECT table_schema, table_name FROM information_schema.tables "
                "WHERE table_type = 'BASE TABLE' "
                "AND table_schema NOT IN ('pg_catalog', 'information_schema')"
            )
        )
        return [f'"{schema}"."{name}"' for schema, name in names]


@contextmanager
def _sync_engine(url: str) -> Iterator[Engine]:
    """A synchronous engine on ``url``'s database (sqlite3 or psycopg), disposed on exit."""
    parsed = make_url(url)
    driver = "sqlite" if parsed.get_backend_name() == "sqlite" else "postgresql+psycopg"
    engine = create_engine(parsed.set(drivername=driver))
    try:
        yield engine
    finally:
        engine.dispose()


# --- fixtures -------------------------------------------------------------------------------


@dataclass
class Servers:
    """The fake services the credentials are sent to."""

    openai: FakeOpenAI
    ollama: FakeOllama
    firecrawl: fake_firecrawl.FakeFirecrawl


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[logging.LogRecord]]:
    """Every record at INFO and above from every logger, with the root logger at INFO.

    ``Logger.handle`` is where every emitted record passes, including those of loggers that do
    not propagate to the root (DBOS's), which a root handler or ``caplog`` would miss.
    """
    records: list[logging.LogRecord] = []
    handle = logging.Logger.handle

    def recording(self: logging.Logger, record: logging.LogRecord) -> Any:
        if record.levelno >= logging.INFO:
            records.append(record)
        return handle(self, record)

    monkeypatch.setattr(logging.Logger, "handle", recording)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)
    yield records
    root.setLevel(level)


@pytest.fixture
async def credentials(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Servers]:
    """Every credential set, each for a fake service on 127.0.0.1 that checks it."""
    openai, ollama = FakeOpenAI(), FakeOllama()
    openai.start()
    ollama.start()
    firecrawl = fake_firecrawl.FakeFirecrawl(api_key=SECRETS["FIRECRAWL_API_KEY"])
    firecrawl_server = fake_firecrawl.start(firecrawl)
    for name in ("OPENAI_API_KEY", "OLLAMA_API_KEY", "FIRECRAWL_API_KEY"):
        monkeypatch.setenv(name, SECRETS[name])
    monkeypatch.setenv("OPENAI_BASE_URL", openai.base_url)
    monkeypatch.setenv("OLLAMA_CLOUD_HOST", ollama.url)
    monkeypatch.setenv("OLLAMA_HOST", "http://127.0.0.1:9")  # nothing local is used
    monkeypatch.setenv("FIRECRAWL_API_URL", firecrawl.url)
    monkeypatch.setenv("TIMESTEP_SEARCH_BACKEND", "firecrawl")
    monkeypatch.setenv("TIMESTEP_TRACING", "db")
    monkeypatch.setenv("TIMESTEP_TRACE_PAYLOADS", "full")
    exporter = default_exporter()
    monkeypatch.setattr(exporter, "_api_key", exporter._api_key)  # restored afterwards
    set_tracing_export_api_key(SECRETS["tracing export key"])
    # Providers and search backends read their keys when built: build them with these.
    _reset_default_model_provider()
    search_backend_cache._reset_for_tests()
    yield Servers(openai=openai, ollama=ollama, firecrawl=firecrawl)
    await close_default_model_provider()  # the HTTP clients' connections belong to this loop
    search_backend_cache._reset_for_tests()
    fake_firecrawl.stop(firecrawl_server)
    ollama.stop()
    openai.stop()


@pytest.fixture
def secret_db_url(db_url: str, credentials: Servers, monkeypatch: pytest.MonkeyPatch) -> str:
    """The test database, reached with a password in its URL where there can be one.

    The local PostgreSQL trusts loopback connections, so the password is accepted and unused:
    what matters is that Timestep is handed it everywhere a user's URL goes.
    """
    url = db_url
    if make_url(db_url).get_backend_name() == "postgresql":
        url = db_url.replace("postgres@", f"postgres:{SECRETS['database password']}@", 1)
        assert SECRETS["database password"] in url
    monkeypatch.setenv("TIMESTEP_DB_URL", url)
    return url


@pytest.fixture
def durable(secret_db_url: str, logs: list[logging.LogRecord]) -> Iterator[WorkflowSettings]:
    """DBOS launched on the test database, logging at INFO (its own logger's level)."""
    with launched(secret_db_url, log_level="INFO") as settings:
        yield settings
