"""``FirecrawlSearchBackend``: Timestep web search through the Firecrawl API (firecrawl-py).

Example::

    backend = FirecrawlSearchBackend()          # FIRECRAWL_API_KEY, FIRECRAWL_API_URL
    results = await backend.search("pep 8", limit=5, allowed_domains=["python.org"])
"""

from __future__ import annotations

import os
from typing import Any

import httpx

from timestep.errors import SearchBackendError
from timestep.tools import SearchResult

from .errors import MissingFirecrawlKeyError

__all__ = ["DEFAULT_API_URL", "FirecrawlSearchBackend"]

DEFAULT_API_URL = "https://api.firecrawl.dev"

_MESSAGE_CHARS = 200


class FirecrawlSearchBackend:
    """Searches the web with Firecrawl's ``/v2/search`` endpoint.

    Args:
        api_key: the Firecrawl API key; default ``FIRECRAWL_API_KEY``. Required for the hosted
            API; a self-hosted Firecrawl (``api_url``) without authentication needs none.
        api_url: default ``FIRECRAWL_API_URL``, else ``https://api.firecrawl.dev``.
        timeout: seconds to wait for Firecrawl per attempt (also sent as its search timeout).
        max_retries: attempts on connection errors (firecrawl-py's retry loop).

    The environment is read at each search until a key is found, so setting the key after
    start-up works. Every failure becomes a :class:`~timestep.errors.SearchBackendError` with a
    short message that never contains the key.

    Example::

        backend = FirecrawlSearchBackend(api_key="fc-...", timeout=10)
        tool = web_search_tool(backend=backend)
    """

    def __init__(
        self,
        api_key: str | None = None,
        api_url: str | None = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 2,
    ) -> None:
        self._api_key = api_key
        self._api_url = api_url
        self.timeout = timeout
        self.max_retries = max_retries

    def __repr__(self) -> str:
        # The key never appears in a repr, so it cannot reach a log through one.
        return f"FirecrawlSearchBackend(api_url={self.api_url!r})"

    @property
    def api_url(self) -> str:
        """The Firecrawl base URL searches go to."""
        url = self._api_url or os.environ.get("FIRECRAWL_API_URL", "").strip()
        return (url or DEFAULT_API_URL).rstrip("/")

    def _key(self) -> str | None:
        key = self._api_key or os.environ.get("FIRECRAWL_API_KEY", "").strip() or None
        if key is None and self.api_url == DEFAULT_API_URL:
            raise MissingFirecrawlKeyError(
                "FIRECRAWL_API_KEY is not set: create a key at https://firecrawl.dev and export "
                "FIRECRAWL_API_KEY, or pass FirecrawlSearchBackend(api_key=...)."
            )
        return key

    async def search(
        self, query: str, *, limit: int, allowed_domains: list[str] | None
    ) -> list[SearchResult]:
        """Up to ``limit`` web results for ``query``, only from ``allowed_domains`` if given.

        Raises:
            MissingFirecrawlKeyError: no key for the hosted API.
            SearchBackendError: Firecrawl refused, failed, timed out or was unreachable.
        """
        key = self._key()
        # Imported here: firecrawl-py takes most of a second to import, and every process that
        # loads Timestep's plugins loads this module, searching or not.
        from firecrawl import AsyncFirecrawl, FirecrawlError

        # A client per search: it is cheap next to a web search, and its httpx pool belongs to
        # the event loop that made it, so a long-lived one breaks across asyncio.run calls.
        client = AsyncFirecrawl(
            api_key=key, api_url=self.api_url, timeout=self.timeout, max_retries=self.max_retries
        )
        try:
            data = await client.search(
                query,
                limit=limit,
                include_domains=allowed_domains or None,
                timeout=int(self.timeout * 1000),
            )
        # "from None" throughout: the chained errors hold the request, Authorization header
        # included, and a traceback logger could print it.
        except FirecrawlError as error:
            raise SearchBackendError(self._describe_refusal(error)) from None
        except httpx.TimeoutException:
            raise SearchBackendError(
                f"Firecrawl did not answer within {self.timeout:g} s."
            ) from None
        except httpx.HTTPError as error:
            raise SearchBackendError(
                f"cannot reach Firecrawl at {self.api_url} ({type(error).__name__})."
            ) from None
        except ValueError as error:  # a request firecrawl-py rejects, or a malformed response
            raise SearchBackendError(
                f"Firecrawl search failed: {self._scrub(str(error))}"
            ) from None
        return [result for item in data.web or [] if (result := _to_result(item)) is not None]

    def _describe_refusal(self, error: Any) -> str:
        status = getattr(error, "status_code", None)
        if status == 401:
            return "Firecrawl rejected the API key (HTTP 401): check FIRECRAWL_API_KEY."
        if status == 402:
            return "the Firecrawl account is out of credits (HTTP 402)."
        if status == 429:
            return "Firecrawl's rate limit was reached (HTTP 429): try again shortly."
        return f"Firecrawl answered HTTP {status}: {self._scrub(str(error))}"

    def _scrub(self, text: str) -> str:
        # Server messages are passed on to the model and the log: make sure no key rides along.
        key = self._api_key or os.environ.get("FIRECRAWL_API_KEY", "").strip()
        if key:
            text = text.replace(key, "***")
        text = " ".join(text.split())
        return text if len(text) <= _MESSAGE_CHARS else text[: _MESSAGE_CHARS - 1] + "…"


def _to_result(item: Any) -> SearchResult | None:
    # Plain hits carry url/title/description; hits Firecrawl also scraped come back as
    # documents with the same facts under metadata.
    url = getattr(item, "url", None)
    title = getattr(item, "title", None)
    snippet = getattr(item, "description", None)
    metadata = getattr(item, "metadata", None)
    if metadata is not None:
        url = url or getattr(metadata, "url", None) or getattr(metadata, "source_url", None)
        title = title or getattr(metadata, "title", None)
        snippet = snippet or getattr(metadata, "description", None)
        snippet = snippet or getattr(item, "summary", None) or getattr(item, "markdown", None)
    if not isinstance(url, str) or not url:
        return None
    return SearchResult(title=str(title or ""), url=url, snippet=str(snippet or ""))
