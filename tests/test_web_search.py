"""web_search: a function tool any model can call, served by a backend a plugin registers.

The user's story first (give an agent ``web_search``, get numbered results), then options,
domain rules and how the backend is chosen; then every misconfiguration and failure. Backends
here are tiny in-test plugins; tests/../plugins/timestep-firecrawl proves a real one over HTTP.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, FunctionTool, UserError
from agents.testing import ScriptedModel, assistant_message, function_call

from timestep import ConfigurationError, PluginError, hookimpl, load_settings, plugins, run_agent
from timestep.errors import SearchBackendError, UnknownSearchBackendError
from timestep.tools import (
    NOT_CONFIGURED_MESSAGE,
    SEARCH_CONTEXT_SIZES,
    SearchResult,
    format_results,
    resolve_search_backend,
    search_backend_names,
    search_backends,
    web_search,
    web_search_tool,
)

PYTHON_PAGES = [
    SearchResult("What's New In Python 3.13", "https://docs.python.org/3/whatsnew/3.13.html",
                 "This article explains the new features in Python 3.13."),
    SearchResult("PEP 719", "https://peps.python.org/pep-0719/", "Python 3.13 Release Schedule"),
    SearchResult("Python 3.13 tour", "https://realpython.com/python313/", "New REPL"),
    SearchResult("Not Python", "https://notpython.org/", "A look-alike domain"),
    SearchResult("Python.org", "https://www.python.org/", "The official home of Python"),
]  # fmt: skip


class RecordingBackend:
    """A search backend that returns fixed pages (or raises) and records every call."""

    def __init__(self, results: list[Any] | None = None, error: Exception | None = None) -> None:
        self.results = PYTHON_PAGES if results is None else results
        self.error = error
        self.calls: list[dict[str, Any]] = []

    async def search(
        self, query: str, *, limit: int, allowed_domains: list[str] | None
    ) -> list[Any]:
        self.calls.append({"query": query, "limit": limit, "allowed_domains": allowed_domains})
        if self.error is not None:
            raise self.error
        return list(self.results)


class SearchPlugin:
    """A plugin registering each name (keyword or dict key) as a search backend factory."""

    def __init__(self, factories: dict[Any, Any] | None = None, /, **named: Any) -> None:
        self.factories = {**(factories or {}), **named}

    @hookimpl
    def register_search_backends(self, register: Callable[[str, Any], None]) -> None:
        for name, factory in self.factories.items():
            register(name, factory)


@pytest.fixture(autouse=True)
def _no_installed_search_backends(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Only built-ins and the backends a test registers; no config file or env choice."""
    monkeypatch.setenv("TIMESTEP_LOAD_PLUGINS", "")
    monkeypatch.delenv("TIMESTEP_SEARCH_BACKEND", raising=False)
    monkeypatch.chdir(tmp_path)
    plugins._reset_for_tests()
    search_backends._reset_for_tests()


@pytest.fixture
def backend(register_plugin: Callable[..., str]) -> RecordingBackend:
    """One registered backend, ``recording``: the only one, so web_search picks it."""
    recording = RecordingBackend()
    register_plugin(SearchPlugin(recording=lambda: recording))
    return recording


async def model_sees(tool: FunctionTool, arguments: dict[str, Any]) -> str:
    """Run an agent whose model calls ``tool`` once; return the tool output the model received."""
    model = ScriptedModel(
        [
            [function_call("web_search", arguments, call_id="call-1")],
            [assistant_message("Done.")],
        ]
    )
    result = await run_agent(Agent(name="Researcher", model=model, tools=[tool]), "Look it up.")
    assert result.final_output == "Done."  # whatever search did, the run finished
    outputs = [
        item["output"]
        for item in model.calls[1].input
        if isinstance(item, dict) and item.get("type") == "function_call_output"
    ]
    assert len(outputs) == 1
    return str(outputs[0])


# --- the user's story -------------------------------------------------------------------------


async def test_an_agent_gets_numbered_results_from_the_installed_backend(
    backend: RecordingBackend,
) -> None:
    output = await model_sees(web_search, {"query": "  python 3.13  "})

    assert output.splitlines()[:6] == [
        "1. What's New In Python 3.13",
        "   https://docs.python.org/3/whatsnew/3.13.html",
        "   This article explains the new features in Python 3.13.",
        "2. PEP 719",
        "   https://peps.python.org/pep-0719/",
        "   Python 3.13 Release Schedule",
    ]
    assert output.count("\n   https://") == 5  # medium: 5 results
    assert backend.calls == [{"query": "python 3.13", "limit": 5, "allowed_domains": None}]


def test_the_tool_is_an_ordinary_function_tool_for_any_model() -> None:
    assert isinstance(web_search, FunctionTool)
    assert web_search.name == "web_search"
    schema = web_search.params_json_schema
    assert set(schema["properties"]) == {"query", "allowed_domains"}
    assert schema["properties"]["query"]["type"] == "string"
    # Strict schemas list every property; allowed_domains stays optional by being nullable.
    assert {"type": "null"} in schema["properties"]["allowed_domains"]["anyOf"]
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize(("size", "count"), [("low", 3), ("medium", 5), ("high", 10)])
async def test_search_context_size_sets_how_many_results(
    register_plugin: Callable[..., str], size: Any, count: int
) -> None:
    many = [SearchResult(f"Page {n}", f"https://example.com/{n}", "") for n in range(1, 30)]
    recording = RecordingBackend(many)
    register_plugin(SearchPlugin(many=lambda: recording))

    output = await model_sees(web_search_tool(search_context_size=size), {"query": "pages"})

    assert SEARCH_CONTEXT_SIZES[size] == count
    assert recording.calls[0]["limit"] == count
    # More than asked for from the backend is cut here.
    assert output.splitlines()[-2:] == [f"{count}. Page {count}", f"   https://example.com/{count}"]


async def test_configured_domains_are_sent_and_enforced_on_returned_urls(
    backend: RecordingBackend,
) -> None:
    tool = web_search_tool(search_context_size="high", allowed_domains=["https://Python.org/"])

    output = await model_sees(tool, {"query": "python"})

    assert backend.calls[0]["allowed_domains"] == ["python.org"]
    urls = [line.strip() for line in output.splitlines() if line.startswith("   https://")]
    assert urls == [
        "https://docs.python.org/3/whatsnew/3.13.html",
        "https://peps.python.org/pep-0719/",
        "https://www.python.org/",
    ]
    assert "only from: python.org" in tool.description


async def test_the_model_can_narrow_the_configured_domains(backend: RecordingBackend) -> None:
    tool = web_search_tool(allowed_domains=["python.org"])

    output = await model_sees(tool, {"query": "pep", "allowed_domains": ["peps.python.org"]})

    assert backend.calls[0]["allowed_domains"] == ["peps.python.org"]
    assert output.splitlines() == [
        "1. PEP 719",
        "   https://peps.python.org/pep-0719/",
        "   Python 3.13 Release Schedule",
    ]


async def test_the_model_cannot_widen_the_configured_domains(backend: RecordingBackend) -> None:
    tool = web_search_tool(allowed_domains=["python.org"])

    refused = await model_sees(tool, {"query": "x", "allowed_domains": ["realpython.com"]})
    mixed = await model_sees(
        tool, {"query": "x", "allowed_domains": ["realpython.com", "docs.python.org"]}
    )

    assert refused == (
        "web search is limited to python.org; none of the requested domains (realpython.com) "
        "is among them. Search again without allowed_domains or with one of those."
    )
    assert [call["allowed_domains"] for call in backend.calls] == [["docs.python.org"]]
    assert "realpython.com" not in mixed


async def test_without_configured_domains_the_models_domains_apply(
    backend: RecordingBackend,
) -> None:
    output = await model_sees(
        web_search, {"query": "x", "allowed_domains": ["https://RealPython.com/python313"]}
    )

    assert backend.calls[0]["allowed_domains"] == ["realpython.com"]
    assert output.splitlines()[0] == "1. Python 3.13 tour"


async def test_no_results_are_said_plainly(register_plugin: Callable[..., str]) -> None:
    register_plugin(SearchPlugin(empty=lambda: RecordingBackend([])))

    assert await model_sees(web_search, {"query": "zxqv"}) == "No web results for 'zxqv'."
    tool = web_search_tool(allowed_domains=["python.org"])
    assert await model_sees(tool, {"query": "zxqv"}) == "No web results for 'zxqv' on python.org."


def test_results_are_compact_text() -> None:
    results = [
        SearchResult("", "https://example.com/untitled", ""),
        SearchResult("A\n  spaced   title", "https://example.com/a", "word " * 200),
    ]

    lines = format_results(results).splitlines()

    assert lines[:3] == ["1. https://example.com/untitled", "   https://example.com/untitled",
                         "2. A spaced title"]  # fmt: skip
    assert lines[4].endswith("…") and len(lines[4]) == 3 + 500
    assert format_results([]) == ""


# --- choosing the backend ---------------------------------------------------------------------


async def test_backend_choice_precedence(
    register_plugin: Callable[..., str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    alpha, beta, gamma = RecordingBackend(), RecordingBackend(), RecordingBackend()
    register_plugin(SearchPlugin(alpha=lambda: alpha, beta=lambda: beta))
    register_plugin(SearchPlugin(gamma=lambda: gamma))

    (tmp_path / "timestep.toml").write_text('search_backend = "alpha"\n')
    assert load_settings().search_backend == "alpha"
    assert resolve_search_backend() == ("alpha", alpha)

    monkeypatch.setenv("TIMESTEP_SEARCH_BACKEND", "Beta")  # names are case-insensitive
    assert resolve_search_backend() == ("beta", beta)

    assert resolve_search_backend("gamma") == ("gamma", gamma)
    explicit = RecordingBackend()
    assert resolve_search_backend(explicit) == ("RecordingBackend", explicit)

    # The choice is made when the tool runs, so configuration set after start-up applies.
    await model_sees(web_search, {"query": "q"})
    await model_sees(web_search_tool(backend="gamma"), {"query": "q"})
    await model_sees(web_search_tool(backend=explicit), {"query": "q"})
    assert [len(b.calls) for b in (alpha, beta, gamma, explicit)] == [0, 1, 1, 1]


def test_the_config_file_choice_can_live_in_pyproject(
    register_plugin: Callable[..., str], tmp_path: Path
) -> None:
    register_plugin(SearchPlugin(alpha=RecordingBackend, beta=RecordingBackend))
    (tmp_path / "pyproject.toml").write_text('[tool.timestep]\nsearch_backend = "beta"\n')

    name, chosen = resolve_search_backend() or ("", None)

    assert name == "beta" and isinstance(chosen, RecordingBackend)


def test_the_only_installed_backend_is_used_and_built_once(
    register_plugin: Callable[..., str],
) -> None:
    built: list[RecordingBackend] = []

    def factory() -> RecordingBackend:
        built.append(RecordingBackend())
        return built[-1]

    register_plugin(SearchPlugin(solo=factory))

    assert search_backend_names() == ["solo"]
    first, second = resolve_search_backend(), resolve_search_backend()
    assert first == second == ("solo", built[0])
    assert len(built) == 1


def test_several_backends_and_no_choice_is_an_error(register_plugin: Callable[..., str]) -> None:
    register_plugin(SearchPlugin(beta=RecordingBackend, alpha=RecordingBackend))

    with pytest.raises(ConfigurationError) as raised:
        resolve_search_backend()

    message = str(raised.value)
    assert "(alpha, beta)" in message and "TIMESTEP_SEARCH_BACKEND" in message


# --- no backend -------------------------------------------------------------------------------


async def test_without_a_backend_the_model_is_told_and_a_warning_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="timestep"):
        first = await model_sees(web_search, {"query": "python"})
        second = await model_sees(web_search_tool(search_context_size="low"), {"query": "x"})

    assert first == second == NOT_CONFIGURED_MESSAGE
    assert NOT_CONFIGURED_MESSAGE == (
        "web search is not configured: install timestep-firecrawl and set FIRECRAWL_API_KEY"
    )
    warnings = [r for r in caplog.records if r.name == "timestep" and r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "pip install timestep-firecrawl" in warnings[0].getMessage()
    assert resolve_search_backend() is None


# --- unknown names ----------------------------------------------------------------------------


def test_an_unknown_explicit_name_fails_when_the_tool_is_built(backend: RecordingBackend) -> None:
    with pytest.raises(UnknownSearchBackendError) as raised:
        web_search_tool(backend="bing")

    error = raised.value
    assert (error.name, error.available) == ("bing", ["recording"])
    assert "'bing' (from backend=)" in str(error) and "Registered: recording." in str(error)
    assert isinstance(error, ConfigurationError) and isinstance(error, LookupError)


async def test_an_unknown_name_from_the_environment_stops_the_run(
    backend: RecordingBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TIMESTEP_SEARCH_BACKEND", "bing")

    # The SDK wraps every exception a tool raises in UserError; ours is its cause.
    with pytest.raises(UserError) as raised:
        await model_sees(web_search, {"query": "python"})

    cause = raised.value.__cause__
    assert isinstance(cause, UnknownSearchBackendError)
    assert "(from TIMESTEP_SEARCH_BACKEND)" in str(cause)
    assert backend.calls == []


def test_an_unknown_name_in_the_config_file_says_where_it_came_from(tmp_path: Path) -> None:
    (tmp_path / "timestep.toml").write_text('search_backend = "bing"\n')

    with pytest.raises(UnknownSearchBackendError, match=r"from search_backend in the config"):
        resolve_search_backend()
    with pytest.raises(UnknownSearchBackendError, match="Registered: none"):
        resolve_search_backend()


@pytest.mark.parametrize("value", ['""', "3", '["firecrawl"]'])
def test_a_malformed_config_file_choice_is_rejected(tmp_path: Path, value: str) -> None:
    (tmp_path / "timestep.toml").write_text(f"search_backend = {value}\n")

    with pytest.raises(ConfigurationError, match=r"'search_backend' in .*timestep.toml"):
        load_settings()


def test_an_empty_explicit_name_is_rejected(backend: RecordingBackend) -> None:
    with pytest.raises(ConfigurationError, match="backend='' names no web search backend"):
        web_search_tool(backend=" ")


# --- bad definitions --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "web/search", 7])
def test_a_plugin_registering_a_bad_name_is_reported(
    register_plugin: Callable[..., str], name: Any
) -> None:
    register_plugin(SearchPlugin({name: RecordingBackend}), "bad-names")

    with pytest.raises(PluginError, match="invalid search backend name") as raised:
        plugins.search_backend_factories()
    assert raised.value.plugin == "bad-names"


def test_a_plugin_registering_something_not_callable_is_reported(
    register_plugin: Callable[..., str],
) -> None:
    register_plugin(SearchPlugin(broken=RecordingBackend()), "not-callable")

    with pytest.raises(PluginError, match=r"search backend name 'broken' with .*not callable"):
        resolve_search_backend()


def test_two_plugins_registering_one_name_is_an_error(register_plugin: Callable[..., str]) -> None:
    register_plugin(SearchPlugin(dup=RecordingBackend), "first-search")
    register_plugin(SearchPlugin(DUP=RecordingBackend), "second-search")

    with pytest.raises(PluginError) as raised:
        resolve_search_backend("dup")

    message = str(raised.value)
    assert "'first-search'" in message and "'second-search'" in message


def test_a_factory_that_fails_is_reported_with_its_plugin(
    register_plugin: Callable[..., str],
) -> None:
    def needs_a_missing_package() -> RecordingBackend:
        raise ImportError("No module named 'searchlib'")

    register_plugin(SearchPlugin(broken=needs_a_missing_package), "fails-to-build")

    with pytest.raises(PluginError) as raised:
        resolve_search_backend()

    assert raised.value.plugin == "fails-to-build"
    assert "ImportError: No module named 'searchlib'" in str(raised.value)


class SyncSearch:
    def search(self, query: str, *, limit: int, allowed_domains: list[str] | None) -> list[Any]:
        return []


@pytest.mark.parametrize("built", [object(), SyncSearch(), None])
def test_a_factory_building_a_non_backend_is_reported(
    register_plugin: Callable[..., str], built: object
) -> None:
    register_plugin(SearchPlugin(odd=lambda: built), "odd-search")

    with pytest.raises(PluginError, match="has no `async def search"):
        resolve_search_backend()


@pytest.mark.parametrize("explicit", [object(), SyncSearch()])
def test_an_explicit_backend_without_async_search_is_rejected(explicit: Any) -> None:
    with pytest.raises(ConfigurationError, match="is not a web search backend"):
        web_search_tool(backend=explicit)


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"search_context_size": "huge"}, "search_context_size='huge' is not one of"),
        ({"allowed_domains": "python.org"}, "must be a list of domains, e.g. ['python.org']"),
        ({"allowed_domains": []}, "must be a non-empty list"),
        ({"allowed_domains": ["python.org", " "]}, "must be a non-empty list"),
        ({"allowed_domains": ["https://"]}, "must be a non-empty list"),
    ],
)
def test_bad_tool_options_are_rejected(options: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        web_search_tool(**options)

    assert fragment in str(raised.value)


# --- backend failures never stop the run ------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "model_message", "logged"),
    [
        (
            SearchBackendError("the service answered HTTP 500."),
            "web search failed (recording): the service answered HTTP 500.",
            "the service answered HTTP 500.",
        ),
        (
            TimeoutError("read timed out"),
            "web search failed (recording): TimeoutError. Try again later.",
            "TimeoutError: read timed out",
        ),
        (
            ConfigurationError("SEARCH_KEY is not set."),
            "web search is not configured: SEARCH_KEY is not set.",
            "SEARCH_KEY is not set.",
        ),
    ],
)
async def test_backend_errors_become_a_message_and_a_warning(
    register_plugin: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
    error: Exception,
    model_message: str,
    logged: str,
) -> None:
    register_plugin(SearchPlugin(recording=lambda: RecordingBackend(error=error)))

    with caplog.at_level(logging.WARNING, logger="timestep"):
        output = await model_sees(web_search, {"query": "python"})

    assert output == model_message
    assert "web_search backend 'recording'" in caplog.text and logged in caplog.text


async def test_malformed_results_are_skipped_with_a_warning(
    register_plugin: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    results = [{"url": "https://example.com"}, SearchResult("Kept", "https://kept.example", "")]
    register_plugin(SearchPlugin(sloppy=lambda: RecordingBackend(results)))

    with caplog.at_level(logging.WARNING, logger="timestep"):
        output = await model_sees(web_search, {"query": "x"})

    assert output == "1. Kept\n   https://kept.example"
    assert "returned dict, not a SearchResult" in caplog.text


async def test_an_empty_query_is_answered_without_searching(backend: RecordingBackend) -> None:
    assert await model_sees(web_search, {"query": "   "}) == "web_search needs a non-empty query."
    assert backend.calls == []


async def test_malformed_arguments_go_back_to_the_model(backend: RecordingBackend) -> None:
    output = await model_sees(web_search, {"allowed_domains": "python.org"})

    assert output == (
        "web_search could not run: Invalid JSON input for tool web_search. Call it with "
        '{"query": "what to search for", "allowed_domains": null} (or a list of domains).'
    )
    assert backend.calls == []
