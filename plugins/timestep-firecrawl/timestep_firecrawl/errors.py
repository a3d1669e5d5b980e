"""The errors this plugin raises on purpose, all :class:`timestep.TimestepError` subclasses."""

from __future__ import annotations

from timestep.errors import ConfigurationError

__all__ = ["MissingFirecrawlKeyError"]


class MissingFirecrawlKeyError(ConfigurationError):
    """No Firecrawl API key: set ``FIRECRAWL_API_KEY`` or pass ``api_key=``.

    Raised by the first search, not when the backend is built, so installing the plugin never
    breaks an app that does not search. The ``web_search`` tool turns it into a
    "web search is not configured" message for the model and a logged warning::

        FirecrawlSearchBackend(api_key=None)   # fine
        await backend.search("x", limit=5, allowed_domains=None)   # raises without a key
    """
