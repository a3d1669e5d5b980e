"""What a web search backend is: the :class:`SearchBackend` protocol and :class:`SearchResult`.

A backend plugin implements one async method and registers a factory for it::

    class MySearch:
        async def search(self, query, *, limit, allowed_domains):
            return [SearchResult(title="Example", url="https://example.com", snippet="...")]

    @timestep.hookimpl
    def register_search_backends(register):
        register("mine", MySearch)

The helpers here normalise and match domains the same way for every backend, so the
``web_search`` tool can enforce ``allowed_domains`` on whatever a backend returns.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

__all__ = [
    "SearchBackend",
    "SearchResult",
    "domain_allowed",
    "normalize_domain",
    "url_host",
]


@dataclass(frozen=True)
class SearchResult:
    """One web search hit: a page title, its URL and a snippet (or extract) of its content.

    Example::

        SearchResult(title="PEP 8", url="https://peps.python.org/pep-0008/",
                     snippet="Style Guide for Python Code")
    """

    title: str
    url: str
    snippet: str = ""


@runtime_checkable
class SearchBackend(Protocol):
    """A web search service behind the ``web_search`` tool.

    ``limit`` is the most results wanted; ``allowed_domains`` (``None``: any) restricts results
    to those domains and their subdomains. Raise
    :class:`~timestep.errors.SearchBackendError` with a short, key-free message when the
    service fails; the tool shows it to the model and logs a warning.

    Example::

        results = await backend.search("pep 8", limit=5, allowed_domains=["python.org"])
    """

    async def search(
        self, query: str, *, limit: int, allowed_domains: list[str] | None
    ) -> list[SearchResult]:
        """Up to ``limit`` results for ``query``, best first."""
        ...


def normalize_domain(domain: str) -> str:
    """The bare host of a domain a person or model wrote, lower-cased.

    Schemes, paths, ports, a leading ``*.`` or ``.`` and a trailing dot are dropped, so
    ``"https://Docs.Python.org/3/"`` and ``"*.docs.python.org"`` both become
    ``"docs.python.org"``. Returns ``""`` when nothing host-like is left.

    Example::

        >>> normalize_domain("https://Docs.Python.org/3/")
        'docs.python.org'
    """
    text = domain.strip().lower()
    if "://" not in text:
        text = f"//{text}"
    try:
        host = urlsplit(text).hostname or ""
    except ValueError:  # e.g. an unbalanced "[" from a model: no usable host
        return ""
    return host.removeprefix("*.").strip(".")


def url_host(url: str) -> str:
    """The lower-case host of a URL (``""`` when it has none).

    Example::

        >>> url_host("https://www.Example.com:8443/a?b")
        'www.example.com'
    """
    try:
        return (urlsplit(url.strip()).hostname or "").strip(".")
    except ValueError:  # malformed URLs (bad IPv6 brackets, ports) from a backend match nothing
        return ""


def domain_allowed(host: str, domains: Iterable[str]) -> bool:
    """Whether ``host`` is one of ``domains`` or a subdomain of one.

    Example::

        >>> domain_allowed("docs.python.org", ["python.org"])
        True
        >>> domain_allowed("notpython.org", ["python.org"])
        False
    """
    return bool(host) and any(host == d or host.endswith(f".{d}") for d in domains)
