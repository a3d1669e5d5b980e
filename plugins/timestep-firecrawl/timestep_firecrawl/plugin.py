"""The ``firecrawl`` entry point: registers Firecrawl as a Timestep web search backend.

Installed with ``pip install timestep-firecrawl``; ``web_search`` then uses it when it is the
only backend, or when ``TIMESTEP_SEARCH_BACKEND=firecrawl`` / ``web_search_tool(backend=
"firecrawl")`` asks for it.
"""

from __future__ import annotations

from collections.abc import Callable

import timestep
from timestep.hookspecs import SearchBackendFactory

from .backend import FirecrawlSearchBackend

__all__ = ["register_search_backends"]


@timestep.hookimpl
def register_search_backends(register: Callable[[str, SearchBackendFactory], None]) -> None:
    """Register ``firecrawl``, built from ``FIRECRAWL_API_KEY`` and ``FIRECRAWL_API_URL``.

    Example::

        web_search_tool(backend="firecrawl")
    """
    register("firecrawl", FirecrawlSearchBackend)
