"""The errors timestep-ollama raises on purpose, all :class:`timestep.TimestepError` subclasses.

Each message names the model, where it was going, and what to change.
"""

from __future__ import annotations

import ollama

from timestep import ConfigurationError, TimestepError

__all__ = [
    "OllamaCloudKeyMissingError",
    "OllamaConnectionError",
    "OllamaResponseError",
    "OllamaUnsupportedError",
]


class OllamaCloudKeyMissingError(ConfigurationError):
    """A Cloud model (``...-cloud`` or ``...:cloud``) was asked for without an Ollama API key.

    Raised before any request is sent. Set ``OLLAMA_API_KEY`` or pass
    ``OllamaModelProvider(api_key=...)``.
    """

    def __init__(self, message: str, *, model: str) -> None:
        super().__init__(message)
        self.model = model


class OllamaUnsupportedError(TimestepError, ValueError):
    """The run asks for something Ollama's chat API cannot express.

    For example a hosted tool (web search, file search), ``tool_choice="required"``, a remote
    image URL, or an input item from another provider that has no Ollama equivalent. Nothing
    was sent.
    """


class OllamaResponseError(TimestepError, ollama.ResponseError):
    """The Ollama server answered with an error (an unknown model, a bad key, an overload).

    Also an ``ollama.ResponseError``, so ``except ollama.ResponseError`` keeps working.
    ``status_code`` is the HTTP status, ``model`` the name that was sent and ``base_url`` the
    server that answered.
    """

    def __init__(self, message: str, *, status_code: int, model: str, base_url: str) -> None:
        ollama.ResponseError.__init__(self, message, status_code)
        self.message = message
        self.model = model
        self.base_url = base_url

    def __str__(self) -> str:
        return self.message


class OllamaConnectionError(TimestepError, ConnectionError):
    """The Ollama server could not be reached at all; nothing was generated.

    Also a ``ConnectionError``, so retry policies that retry network failures still apply.
    """

    def __init__(self, message: str, *, model: str, base_url: str) -> None:
        super().__init__(message)
        self.model = model
        self.base_url = base_url
