"""Firecrawl web search for Timestep's ``web_search`` tool.

Install it and set ``FIRECRAWL_API_KEY``; any agent given ``timestep.tools.web_search`` then
searches through Firecrawl::

    from agents import Agent
    from timestep.tools import web_search

    agent = Agent(name="Researcher", model="gpt-4.1", tools=[web_search])

Use :class:`FirecrawlSearchBackend` directly for other options::

    web_search_tool(backend=FirecrawlSearchBackend(timeout=10))
"""

from .backend import DEFAULT_API_URL, FirecrawlSearchBackend
from .errors import MissingFirecrawlKeyError

__all__ = ["DEFAULT_API_URL", "FirecrawlSearchBackend", "MissingFirecrawlKeyError"]
