"""``web_search``: a function tool any model can call, served by a pluggable search backend.

Unlike the SDK's ``WebSearchTool`` (OpenAI's hosted search, OpenAI models only) this is an
ordinary function tool, so it works with every model Timestep routes. Use the ready instance or
build a configured one::

    from agents import Agent
    from timestep.tools import web_search, web_search_tool

    agent = Agent(name="Researcher", model="ollama/llama3", tools=[web_search])
    docs_only = web_search_tool(search_context_size="high", allowed_domains=["python.org"])

``search_context_size`` sets how many results the model gets (:data:`SEARCH_CONTEXT_SIZES`:
low 3, medium 5, high 10). The model passes ``query`` and may pass ``allowed_domains`` to narrow
the configured domains, never to widen them; results are filtered by domain again here,
whatever the backend returned. Backend failures and a missing backend become a short message
for the model plus a logged warning, so a run never dies because search is down.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any, Literal, TypeAlias

from agents import FunctionTool, RunContextWrapper, function_tool

from ..errors import ConfigurationError, SearchBackendError, TimestepError
from ..observability.redaction import Redactor
from .search import SearchBackend, SearchResult, domain_allowed, normalize_domain, url_host
from .search_backends import (
    NOT_CONFIGURED_MESSAGE,
    resolve_search_backend,
    warn_not_configured_once,
)

__all__ = [
    "SEARCH_CONTEXT_SIZES",
    "SearchContextSize",
    "format_results",
    "web_search",
    "web_search_tool",
]

SearchContextSize: TypeAlias = Literal["low", "medium", "high"]

SEARCH_CONTEXT_SIZES: dict[str, int] = {"low": 3, "medium": 5, "high": 10}
"""How many results the model receives for each ``search_context_size``."""

_TITLE_CHARS = 200
_SNIPPET_CHARS = 500
_ERROR_CHARS = 300

logger = logging.getLogger("timestep")

_DESCRIPTION = (
    "Search the web and return the most relevant pages, numbered, each with its title, URL and "
    "a snippet. Use it for current events and facts you are unsure of; cite the URLs you use."
)


def web_search_tool(
    *,
    search_context_size: SearchContextSize = "medium",
    allowed_domains: Sequence[str] | None = None,
    backend: str | SearchBackend | None = None,
) -> FunctionTool:
    """A ``web_search`` function tool with these options.

    Args:
        search_context_size: ``"low"``, ``"medium"`` or ``"high"``: 3, 5 or 10 results.
        allowed_domains: only these domains and their subdomains (``None``: any). The model can
            narrow this list per call but never widen it.
        backend: a registered backend name or a :class:`SearchBackend` object. ``None`` picks
            ``TIMESTEP_SEARCH_BACKEND``, then ``search_backend`` in the config file, then the
            only installed backend.

    Raises:
        UnknownSearchBackendError: ``backend`` names no registered backend (checked now;
            a name from the environment or config file is checked when the tool runs).
        ConfigurationError: an unknown ``search_context_size`` or a malformed domain list.

    Example::

        tool = web_search_tool(search_context_size="low", allowed_domains=["docs.python.org"])
        agent = Agent(name="Helper", model="gpt-4.1", tools=[tool])
    """
    if search_context_size not in SEARCH_CONTEXT_SIZES:
        raise ConfigurationError(
            f"search_context_size={search_context_size!r} is not one of "
            f"{', '.join(SEARCH_CONTEXT_SIZES)}."
        )
    limit = SEARCH_CONTEXT_SIZES[search_context_size]
    configured = _configured_domains(allowed_domains)
    if backend is not None:
        resolve_search_backend(backend)  # fail at start-up, not mid-run, on a wrong name

    async def web_search(query: str, allowed_domains: list[str] | None = None) -> str:
        """Search the web.

        Args:
            query: what to search for, as you would type it into a search engine.
            allowed_domains: domains (e.g. "python.org") to restrict this search to, or null.
        """
        return await _search(
            query, requested=allowed_domains, configured=configured, limit=limit, backend=backend
        )

    description = _DESCRIPTION
    if configured:
        description += f" Results come only from: {', '.join(configured)}."
    return function_tool(
        web_search,
        name_override="web_search",
        description_override=description,
        failure_error_function=_failure_message,
    )


def format_results(results: Sequence[SearchResult]) -> str:
    """Results as the compact, numbered text the model reads.

    Example::

        >>> print(format_results([SearchResult("PEP 8", "https://peps.python.org/pep-0008/",
        ...                                    "Style Guide for Python Code")]))
        1. PEP 8
           https://peps.python.org/pep-0008/
           Style Guide for Python Code
    """
    lines: list[str] = []
    for number, result in enumerate(results, start=1):
        lines.append(f"{number}. {_clip(result.title, _TITLE_CHARS) or result.url}")
        lines.append(f"   {result.url}")
        snippet = _clip(result.snippet, _SNIPPET_CHARS)
        if snippet:
            lines.append(f"   {snippet}")
    return "\n".join(lines)


async def _search(
    query: str,
    *,
    requested: list[str] | None,
    configured: list[str] | None,
    limit: int,
    backend: str | SearchBackend | None,
) -> str:
    query = query.strip()
    if not query:
        return "web_search needs a non-empty query."
    domains, refusal = _effective_domains(configured, requested)
    if refusal:
        return refusal
    # Configuration errors raised here propagate (see _failure_message): they need a developer.
    found = resolve_search_backend(backend)
    if found is None:
        warn_not_configured_once()
        return NOT_CONFIGURED_MESSAGE
    name, search_backend = found
    try:
        raw = await search_backend.search(query, limit=limit, allowed_domains=domains)
    except ConfigurationError as error:
        detail = _scrubbed(error)
        logger.warning("web_search backend %r is not configured: %s", name, detail)
        return f"web search is not configured: {_clip(detail, _ERROR_CHARS)}"
    except SearchBackendError as error:
        detail = _scrubbed(error)
        logger.warning("web_search backend %r failed: %s", name, detail)
        return f"web search failed ({name}): {_clip(detail, _ERROR_CHARS)}"
    except Exception as error:
        detail = _scrubbed(error)
        logger.warning("web_search backend %r failed: %s: %s", name, type(error).__name__, detail)
        return f"web search failed ({name}): {type(error).__name__}. Try again later."
    results = _keep(raw, domains, limit, name)
    if not results:
        where = f" on {', '.join(domains)}" if domains else ""
        return f"No web results for {query!r}{where}."
    return format_results(results)


def _configured_domains(domains: Sequence[str] | None) -> list[str] | None:
    if domains is None:
        return None
    if isinstance(domains, str):
        raise ConfigurationError(
            f"allowed_domains={domains!r} must be a list of domains, e.g. [{domains!r}]."
        )
    normalized = [normalize_domain(d) if isinstance(d, str) else "" for d in domains]
    if not normalized or not all(normalized):
        raise ConfigurationError(
            f"allowed_domains={list(domains)!r} must be a non-empty list of domain names such as "
            "'python.org'; pass None to allow any domain."
        )
    return list(dict.fromkeys(normalized))


def _effective_domains(
    configured: list[str] | None, requested: list[str] | None
) -> tuple[list[str] | None, str | None]:
    """The domains for this call, or a message for the model when it asked for others."""
    asked = list(dict.fromkeys(filter(None, (normalize_domain(d) for d in requested or []))))
    if not asked:
        return configured, None
    if configured is None:
        return asked, None
    kept = [d for d in asked if domain_allowed(d, configured)]
    if not kept:
        return None, (
            f"web search is limited to {', '.join(configured)}; none of the requested domains "
            f"({', '.join(asked)}) is among them. Search again without allowed_domains or with "
            "one of those."
        )
    return kept, None


def _keep(
    results: Sequence[Any], domains: list[str] | None, limit: int, backend_name: str
) -> list[SearchResult]:
    # Backends filter by domain too, but their matching differs (or is absent); checking the
    # returned URLs here is what makes allowed_domains a guarantee.
    kept: list[SearchResult] = []
    seen: set[str] = set()
    for result in results:
        if not isinstance(result, SearchResult):
            logger.warning(
                "web_search backend %r returned %s, not a SearchResult; skipped.",
                backend_name,
                type(result).__name__,
            )
            continue
        if not result.url or result.url in seen:
            continue
        if domains is not None and not domain_allowed(url_host(result.url), domains):
            continue
        seen.add(result.url)
        kept.append(result)
        if len(kept) == limit:
            break
    return kept


def _scrubbed(error: Exception) -> str:
    # A backend's error may quote the URL it called, key included (``?api_key=...``), and this
    # text goes to the log and, as the tool's output, into sessions, run states and traces.
    return Redactor().scrub(str(error))


def _clip(text: str, limit: int) -> str:
    text = re.sub(r"\s+", " ", text or "").strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _failure_message(context: RunContextWrapper[Any], error: Exception) -> str:
    # A Timestep error here is a setup problem (unknown backend name, broken plugin): surface it
    # to the developer instead of letting the model retry forever. Anything else (malformed
    # arguments from the model) goes back to the model.
    if isinstance(error, TimestepError):
        raise error
    return (
        f"web_search could not run: {_clip(str(error), _ERROR_CHARS)}. Call it with "
        '{"query": "what to search for", "allowed_domains": null} (or a list of domains).'
    )


web_search: FunctionTool = web_search_tool()
"""The ``web_search`` tool with the default options (medium: 5 results, any domain)."""
