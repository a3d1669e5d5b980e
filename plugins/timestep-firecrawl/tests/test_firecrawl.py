"""Firecrawl behind web_search, end to end: real firecrawl-py client, fake server on loopback.

The user's story first (install the plugin, set the key, give an agent ``web_search``), then what
goes over the wire, then every way Firecrawl can fail: none of them may stop the run or leak
the key.
"""

from __future__ import annotations

import logging
from importlib.metadata import distribution
from typing import Any

import pytest
from agents import Agent, FunctionTool
from agents.testing import ScriptedModel, assistant_message, function_call

from fake_firecrawl import FakeFirecrawl
from timestep import plugins, run_agent
from timestep.tools import SearchResult, web_search, web_search_tool
from timestep_firecrawl import FirecrawlSearchBackend, MissingFirecrawlKeyError


async def model_sees(tool: FunctionTool, arguments: dict[str, Any]) -> str:
    """Run an agent whose model calls ``tool`` once; return the tool output the model received."""
    model = ScriptedModel(
        [
            [function_call("web_search", arguments, call_id="call-search")],
            [assistant_message("Here is what I found.")],
        ]
    )
    agent = Agent(name="Researcher", model=model, tools=[tool])
    result = await run_agent(agent, "What is new in Python 3.13?")
    assert result.final_output == "Here is what I found."
    model.assert_complete()
    outputs = [
        item["output"]
        for item in model.calls[1].input
        if isinstance(item, dict)
        and item.get("type") == "function_call_output"
        and item.get("call_id") == "call-search"
    ]
    assert len(outputs) == 1
    return str(outputs[0])


async def test_an_agent_searches_the_web_through_firecrawl(firecrawl_env: FakeFirecrawl) -> None:
    output = await model_sees(web_search, {"query": "python 3.13 new features"})

    assert output.startswith("1. What's New In Python 3.13\n")
    assert "https://docs.python.org/3/whatsnew/3.13.html" in output
    assert "This article explains the new features in Python 3.13." in output
    assert "4. History of Python - Wikipedia" in output
    [request] = firecrawl_env.requests
    assert (request.method, request.path) == ("POST", "/v2/search")
    assert request.headers["authorization"] == "Bearer fc-test-key"
    assert request.body["query"] == "python 3.13 new features"
    assert request.body["limit"] == 5  # search_context_size="medium"
    assert "includeDomains" not in request.body


def test_installing_the_distribution_registers_the_firecrawl_backend() -> None:
    entry_points = distribution("timestep-firecrawl").entry_points
    assert [(ep.group, ep.name, ep.value) for ep in entry_points] == [
        ("timestep", "firecrawl", "timestep_firecrawl.plugin")
    ]
    registration = plugins.search_backend_factories()["firecrawl"]
    assert registration.plugin == "firecrawl"
    assert registration.value is FirecrawlSearchBackend


async def test_the_backend_sends_query_limit_and_domains(firecrawl: FakeFirecrawl) -> None:
    backend = FirecrawlSearchBackend(api_key=firecrawl.api_key, api_url=firecrawl.url)

    results = await backend.search("python 3.13", limit=3, allowed_domains=["python.org"])

    assert results == [
        SearchResult(
            title="What's New In Python 3.13",
            url="https://docs.python.org/3/whatsnew/3.13.html",
            snippet="This article explains the new features in Python 3.13.",
        ),
        SearchResult(
            title="PEP 719 - Python 3.13 Release Schedule",
            url="https://peps.python.org/pep-0719/",
            snippet="The release schedule for Python 3.13.",
        ),
    ]
    [request] = firecrawl.requests
    assert request.headers["authorization"] == f"Bearer {firecrawl.api_key}"
    assert request.headers["content-type"] == "application/json"
    assert request.body["query"] == "python 3.13"
    assert request.body["limit"] == 3
    assert request.body["includeDomains"] == ["python.org"]
    assert request.body["timeout"] == 30_000  # our 30 s, in Firecrawl's milliseconds


async def test_search_context_size_sets_the_limit_sent(firecrawl_env: FakeFirecrawl) -> None:
    output = await model_sees(web_search_tool(search_context_size="low"), {"query": "python"})

    assert firecrawl_env.requests[0].body["limit"] == 3
    assert output.count("\n   https://") == 3


async def test_configured_domains_hold_even_when_firecrawl_ignores_them(
    firecrawl_env: FakeFirecrawl,
) -> None:
    firecrawl_env.honor_domains = False
    tool = web_search_tool(search_context_size="high", allowed_domains=["python.org"])

    output = await model_sees(tool, {"query": "python 3.13"})

    assert firecrawl_env.requests[0].body["includeDomains"] == ["python.org"]
    assert "docs.python.org" in output and "peps.python.org" in output
    assert "realpython.com" not in output and "wikipedia.org" not in output


async def test_the_model_narrows_the_domains_sent_to_firecrawl(
    firecrawl_env: FakeFirecrawl,
) -> None:
    tool = web_search_tool(allowed_domains=["python.org"])

    output = await model_sees(
        tool, {"query": "release schedule", "allowed_domains": ["peps.python.org"]}
    )

    assert firecrawl_env.requests[0].body["includeDomains"] == ["peps.python.org"]
    assert output.startswith("1. PEP 719")
    assert "docs.python.org" not in output


async def test_no_results_is_said_plainly(firecrawl_env: FakeFirecrawl) -> None:
    firecrawl_env.pages = []

    output = await model_sees(web_search, {"query": "zxqv nothing matches"})

    assert output == "No web results for 'zxqv nothing matches'."


async def test_scraped_results_are_read_from_their_metadata(firecrawl_env: FakeFirecrawl) -> None:
    # With scrape options Firecrawl returns documents: content plus metadata, no top-level url.
    firecrawl_env.pages = [
        {
            "markdown": "# Python 3.13\nThe free-threaded build...",
            "metadata": {
                "title": "Python 3.13 released",
                "sourceURL": "https://www.python.org/downloads/release/python-3130/",
                "url": "https://www.python.org/downloads/release/python-3130/",
                "statusCode": 200,
            },
        }
    ]

    output = await model_sees(web_search, {"query": "python 3.13 release"})

    assert output == (
        "1. Python 3.13 released\n"
        "   https://www.python.org/downloads/release/python-3130/\n"
        "   # Python 3.13 The free-threaded build..."
    )


@pytest.mark.parametrize(
    ("status", "body", "model_message"),
    [
        (
            401,
            {"success": False, "error": "Unauthorized: Invalid token"},
            "Firecrawl rejected the API key (HTTP 401): check FIRECRAWL_API_KEY.",
        ),
        (
            402,
            {"success": False, "error": "Insufficient credits"},
            "the Firecrawl account is out of credits (HTTP 402).",
        ),
        (
            429,
            {"success": False, "error": "Rate limit exceeded"},
            "Firecrawl's rate limit was reached (HTTP 429): try again shortly.",
        ),
        (
            500,
            {"success": False, "error": "search engine unavailable"},
            "Firecrawl answered HTTP 500: Internal Server Error: Failed to search. search engine "
            "unavailable - No additional error details provided.",
        ),
        (
            503,
            "<html>Service Unavailable</html>",
            "Firecrawl answered HTTP 503: Unexpected error during search: Status code 503. "
            "Server returned non-JSON response: <html>Service Unavailable</html> - Full response "
            "status: 503",
        ),
    ],
)
async def test_firecrawl_refusals_reach_the_model_as_a_short_message(
    firecrawl_env: FakeFirecrawl,
    caplog: pytest.LogCaptureFixture,
    status: int,
    body: dict[str, Any] | str,
    model_message: str,
) -> None:
    firecrawl_env.failure = (status, body)

    with caplog.at_level(logging.WARNING, logger="timestep"):
        output = await model_sees(web_search, {"query": "python"})

    assert output == f"web search failed (firecrawl): {model_message}"
    assert model_message in caplog.text
    assert firecrawl_env.api_key not in caplog.text + output


async def test_a_wrong_key_is_refused_and_never_logged(
    firecrawl_env: FakeFirecrawl,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("FIRECRAWL_API_KEY", "fc-wrong-key-0123")

    with caplog.at_level(logging.DEBUG):
        output = await model_sees(web_search, {"query": "python"})

    assert "HTTP 401" in output
    assert firecrawl_env.requests[0].headers["authorization"] == "Bearer fc-wrong-key-0123"
    assert "fc-wrong-key-0123" not in caplog.text + output


async def test_a_server_message_echoing_the_key_is_scrubbed(
    firecrawl_env: FakeFirecrawl, caplog: pytest.LogCaptureFixture
) -> None:
    firecrawl_env.failure = (500, {"success": False, "error": f"bad token {firecrawl_env.api_key}"})

    with caplog.at_level(logging.WARNING, logger="timestep"):
        output = await model_sees(web_search, {"query": "python"})

    assert "bad token ***" in output
    assert firecrawl_env.api_key not in caplog.text + output


async def test_a_slow_firecrawl_times_out_without_stopping_the_run(
    firecrawl: FakeFirecrawl, caplog: pytest.LogCaptureFixture
) -> None:
    firecrawl.delay = 5
    backend = FirecrawlSearchBackend(
        api_key=firecrawl.api_key, api_url=firecrawl.url, timeout=0.2, max_retries=1
    )

    with caplog.at_level(logging.WARNING, logger="timestep"):
        output = await model_sees(web_search_tool(backend=backend), {"query": "python"})

    assert (
        output == "web search failed (FirecrawlSearchBackend): Firecrawl did not answer "
        "within 0.2 s."
    )
    assert "did not answer within 0.2 s" in caplog.text


async def test_an_unreachable_firecrawl_is_reported(
    closed_port_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("FIRECRAWL_API_KEY", "fc-test-key")
    backend = FirecrawlSearchBackend(api_url=closed_port_url, max_retries=1)

    with caplog.at_level(logging.WARNING, logger="timestep"):
        output = await model_sees(web_search_tool(backend=backend), {"query": "python"})

    assert output == (
        f"web search failed (FirecrawlSearchBackend): cannot reach Firecrawl at "
        f"{closed_port_url} (ConnectError)."
    )
    assert "cannot reach Firecrawl" in caplog.text


async def test_a_missing_key_is_a_clear_error_at_first_use() -> None:
    backend = FirecrawlSearchBackend()  # building it needs no key

    with pytest.raises(MissingFirecrawlKeyError, match="FIRECRAWL_API_KEY is not set"):
        await backend.search("python", limit=5, allowed_domains=None)


async def test_without_a_key_the_model_hears_search_is_not_configured(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="timestep"):
        output = await model_sees(web_search, {"query": "python"})

    assert output.startswith("web search is not configured: FIRECRAWL_API_KEY is not set")
    assert "FIRECRAWL_API_KEY is not set" in caplog.text


async def test_the_key_is_read_when_searching_not_when_built(
    firecrawl: FakeFirecrawl, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = FirecrawlSearchBackend(api_url=firecrawl.url)
    monkeypatch.setenv("FIRECRAWL_API_KEY", firecrawl.api_key)

    results = await backend.search("python", limit=1, allowed_domains=None)

    assert [r.url for r in results] == ["https://docs.python.org/3/whatsnew/3.13.html"]


async def test_a_self_hosted_firecrawl_needs_no_key(firecrawl: FakeFirecrawl) -> None:
    firecrawl.api_key = ""  # a self-hosted server with authentication off
    backend = FirecrawlSearchBackend(api_url=firecrawl.url)

    results = await backend.search("python", limit=2, allowed_domains=None)

    assert len(results) == 2
    assert "authorization" not in firecrawl.requests[0].headers
    assert "api_url='http://127.0.0.1:" in repr(backend)
