"""Ready-made tools for any model, and the web search backend interface plugins implement.

Example::

    from agents import Agent
    from timestep.tools import web_search

    agent = Agent(name="Researcher", model="gpt-4.1", tools=[web_search])
"""

from .search import SearchBackend, SearchResult
from .search_backends import NOT_CONFIGURED_MESSAGE, resolve_search_backend, search_backend_names
from .web_search import (
    SEARCH_CONTEXT_SIZES,
    SearchContextSize,
    format_results,
    web_search,
    web_search_tool,
)

__all__ = [
    "NOT_CONFIGURED_MESSAGE",
    "SEARCH_CONTEXT_SIZES",
    "SearchBackend",
    "SearchContextSize",
    "SearchResult",
    "format_results",
    "resolve_search_backend",
    "search_backend_names",
    "web_search",
    "web_search_tool",
]
