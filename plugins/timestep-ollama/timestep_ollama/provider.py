"""``OllamaModelProvider``: local and Cloud Ollama models behind one ``ollama/`` prefix.

Where a model runs is decided per model name, not per provider:

- a name ending in ``-cloud`` (``gpt-oss:120b-cloud``) or with the ``:cloud`` tag
  (``glm-4.6:cloud``) goes to Ollama Cloud (``OLLAMA_CLOUD_HOST``, default
  ``https://ollama.com``) with ``OLLAMA_API_KEY`` as a bearer token. The Cloud API knows the
  model by its plain name, so the suffix is removed on the way: ``gpt-oss:120b-cloud`` is
  sent as ``gpt-oss:120b`` and ``glm-4.6:cloud`` as ``glm-4.6``.
- any other name goes, unchanged, to the local server (``OLLAMA_HOST``, default
  ``http://localhost:11434``).

Example::

    provider = OllamaModelProvider()
    local = provider.get_model("llama3.2")              # http://localhost:11434
    cloud = provider.get_model("gpt-oss:120b-cloud")    # https://ollama.com, as gpt-oss:120b
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import AsyncGenerator
from functools import partial
from urllib.parse import urlsplit
from weakref import WeakKeyDictionary

import ollama
from agents import Model, ModelProvider

from timestep import ConfigurationError
from timestep._loops import at_loop_shutdown

from .errors import OllamaCloudKeyMissingError
from .model import DEFAULT_HOST, OllamaModel, open_client

__all__ = ["DEFAULT_CLOUD_HOST", "OllamaModelProvider", "cloud_model_name"]

DEFAULT_CLOUD_HOST = "https://ollama.com"
"""Ollama Cloud's API host, unless ``OLLAMA_CLOUD_HOST`` or ``cloud_base_url`` says otherwise."""


def cloud_model_name(name: str) -> str | None:
    """The name Ollama Cloud's API expects for ``name``, or ``None`` for a local model.

    ``gpt-oss:120b-cloud`` -> ``gpt-oss:120b``; ``glm-4.6:cloud`` -> ``glm-4.6``;
    ``llama3.2`` -> ``None``.
    """
    namespace, slash, base = name.rpartition("/")
    repository, colon, tag = base.partition(":")
    parts = tag.split(":") if colon else []
    if "cloud" in parts:
        # ``cloud`` used as a tag of its own, in any position (``glm-4.6:cloud``).
        parts = [part for part in parts if part != "cloud"]
    elif base.endswith("-cloud"):
        # The older form: ``-cloud`` glued to the size tag (``gpt-oss:120b-cloud``).
        if parts:
            parts[-1] = parts[-1].removesuffix("-cloud")
        else:
            repository = repository.removesuffix("-cloud")
    else:
        return None
    plain = ":".join([repository, *[part for part in parts if part]])
    return f"{namespace}{slash}{plain}"


class OllamaModelProvider(ModelProvider):
    """Serves ``Agent(model="ollama/NAME")``: local models and Ollama Cloud models.

    Args:
        api_key: The Ollama Cloud API key. Defaults to ``OLLAMA_API_KEY``; only Cloud models
            need one, and it is only ever sent to the Cloud host.
        base_url: The local (or self-hosted) server for every non-Cloud model. Defaults to
            ``OLLAMA_HOST``, else ``http://localhost:11434``.
        ollama_client: An ``ollama.AsyncClient`` to use for every non-Cloud model instead of
            one built from ``base_url`` (give one or the other). It stays yours to close.
        cloud_base_url: Where Cloud models go. Defaults to ``OLLAMA_CLOUD_HOST``, else
            ``https://ollama.com``.

    Environment variables are read when a model is looked up, so a provider built early
    still follows later configuration. Clients are opened lazily, one per (server, key,
    event loop), and closed by :meth:`aclose` or, at the latest, when their loop shuts down.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        ollama_client: ollama.AsyncClient | None = None,
        *,
        cloud_base_url: str | None = None,
    ) -> None:
        if ollama_client is not None and base_url is not None:
            raise ConfigurationError(
                "OllamaModelProvider got both base_url and ollama_client; the client already "
                "knows its server. Pass one of them."
            )
        if ollama_client is not None and not isinstance(ollama_client, ollama.AsyncClient):
            raise ConfigurationError(
                f"OllamaModelProvider(ollama_client=...) needs an ollama.AsyncClient, not "
                f"{type(ollama_client).__name__}."
            )
        self._api_key = api_key
        self._base_url = base_url
        self._ollama_client = ollama_client
        self._cloud_base_url = cloud_base_url
        self._clients: WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[tuple[str, str | None], ollama.AsyncClient]
        ] = WeakKeyDictionary()
        # Per loop, the hook that closes its clients as it shuts down (timestep._loops).
        self._hooks: WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncGenerator[None]] = (
            WeakKeyDictionary()
        )

    def get_model(self, model_name: str | None) -> Model:
        """The model for ``model_name`` (the part after ``ollama/``), local or Cloud.

        Raises:
            OllamaCloudKeyMissingError: for a Cloud model when no API key is configured.
        """
        if not model_name:
            raise ConfigurationError(
                "An Ollama model needs a name: use Agent(model='ollama/llama3.2') or "
                "OllamaModelProvider().get_model('llama3.2')."
            )
        cloud_name = cloud_model_name(model_name)
        if cloud_name is not None:
            host = self._cloud_host()
            key = self._api_key or os.environ.get("OLLAMA_API_KEY")
            if not key:
                raise OllamaCloudKeyMissingError(
                    f"Model {model_name!r} runs on Ollama Cloud ({host}), which needs an API "
                    "key, and none is set. Create one at https://ollama.com/settings/keys, then "
                    "set OLLAMA_API_KEY or pass OllamaModelProvider(api_key=...).",
                    model=model_name,
                )
            return OllamaModel(cloud_name, lambda: self._client(host, key), base_url=host)
        if self._ollama_client is not None:
            return OllamaModel(model_name, self._ollama_client)
        host = self._base_url or os.environ.get("OLLAMA_HOST") or DEFAULT_HOST
        # Someone who points the "local" server at Ollama Cloud itself (the ollama library's
        # own way to reach it) means to use the key there; any other server never gets it.
        key = self._api_key or os.environ.get("OLLAMA_API_KEY")
        local_key = key if _origin(host) == _origin(self._cloud_host()) else None
        return OllamaModel(model_name, lambda: self._client(host, local_key), base_url=host)

    async def aclose(self) -> None:
        """Close the clients this provider opened on the running event loop.

        Clients of event loops that have already finished are dropped (their connections
        went with their loop). A client passed as ``ollama_client`` is left open.
        """
        running = asyncio.get_running_loop()
        clients = list(self._clients.items())
        self._clients.clear()
        hook = self._hooks.pop(running, None)
        for loop, by_server in clients:
            if loop is running:
                await _close(by_server)
        if hook is not None:
            await hook.aclose()

    def _cloud_host(self) -> str:
        return self._cloud_base_url or os.environ.get("OLLAMA_CLOUD_HOST") or DEFAULT_CLOUD_HOST

    def _client(self, host: str, key: str | None) -> ollama.AsyncClient:
        # httpx clients hold connections tied to the loop that opened them, so each event
        # loop gets its own client per server and key.
        loop = asyncio.get_running_loop()
        by_server = self._clients.get(loop)
        if by_server is None:
            by_server = self._clients[loop] = {}
            # A loop that ends without aclose() (asyncio.run per call) closes its clients as
            # it shuts down, instead of leaving a connection open per loop.
            hook = at_loop_shutdown(partial(self._loop_ended, weakref.ref(loop), by_server))
            if hook is not None:
                self._hooks[loop] = hook
        client = by_server.get((host, key))
        if client is None:
            client = by_server[(host, key)] = open_client(host, key)
        return client

    async def _loop_ended(
        self,
        loop_ref: weakref.ref[asyncio.AbstractEventLoop],
        by_server: dict[tuple[str, str | None], ollama.AsyncClient],
    ) -> None:
        loop = loop_ref()
        if loop is not None and self._clients.get(loop) is by_server:
            del self._clients[loop]
            self._hooks.pop(loop, None)
        await _close(by_server)


async def _close(by_server: dict[tuple[str, str | None], ollama.AsyncClient]) -> None:
    clients = list(by_server.values())
    by_server.clear()
    for client in clients:
        await client.close()  # type: ignore[no-untyped-call]  # ollama leaves it bare


def _origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port of a server address, the way the ollama client reads them."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    default_port = {"http": 80, "https": 443}.get(parts.scheme) if "://" in url else 11434
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default_port
