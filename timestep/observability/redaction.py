"""What of a span's inputs and outputs may be stored, and the secrets that never are.

``TIMESTEP_TRACE_PAYLOADS`` (or ``trace_payloads`` in the config file) picks how much of a
payload (a tool's arguments and result, a model's input and output, a custom span's data) is
kept: ``truncated`` (default, ``PAYLOAD_LIMIT`` characters), ``full`` or ``off`` (dropped). In
every mode each stored string is scrubbed of API keys and bearer tokens: anything shaped like
``sk-...`` or ``Bearer ...``, a password in a URL, a key in a query string (``?api_key=...``),
the values of ``SECRET_ENV_VARS`` when set, and whatever a mapping
holds under a credential's name (``Authorization``, ``api_key``, ``X-Api-Key``, ``password``,
...; see :func:`is_credential_name`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any

from ..config import QUERY_CREDENTIAL_NAME, TracePayloads

__all__ = [
    "PAYLOAD_LIMIT",
    "REDACTED",
    "SECRET_ENV_VARS",
    "Redactor",
    "contains_secret",
    "is_credential_name",
]

PAYLOAD_LIMIT = 2000
"""Characters of each payload kept in ``truncated`` mode."""

REDACTED = "[REDACTED]"
SECRET_ENV_VARS = ("OPENAI_API_KEY", "OLLAMA_API_KEY", "FIRECRAWL_API_KEY")
"""Environment variables whose values are scrubbed from everything stored."""

_KEY_PATTERNS = (
    re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=\-]{8,}"),
)
# A password in a URL (``postgresql://app:PASSWORD@db/agents``) and a credential in a query
# string (``?api_key=...``, ``&access_token=...``): error messages of HTTP clients and database
# drivers quote their URLs.
_URL_PASSWORD = re.compile(r"(?i)(\b[a-z][a-z0-9+.\-]*://[^/\s:@]+:)[^@\s/]+@")
_QUERY_CREDENTIAL = re.compile(rf"(?i)([?&]{QUERY_CREDENTIAL_NAME}=)[^&#\s'\"]+")
# Values shorter than this are too likely to occur in ordinary text to replace blindly.
_MIN_SECRET_LENGTH = 8
# Names (lower case, without "-" and "_") under which headers, query parameters and settings
# carry credentials. Matched whole or as a suffix, so "x-api-key" and "openai_api_key" count
# while "max_tokens" or "input_tokens" (usage counts) do not.
_CREDENTIAL_NAMES = frozenset(
    {"authorization", "proxyauthorization", "cookie", "setcookie", "password", "passwd"}
)
_CREDENTIAL_SUFFIXES = (
    "apikey",
    "accesstoken",
    "authtoken",
    "refreshtoken",
    "idtoken",
    "bearertoken",
    "secret",
    "secretkey",
    "subscriptionkey",
)


def is_credential_name(name: str) -> bool:
    """Whether a header, parameter or setting called ``name`` carries a credential.

    Example: ``is_credential_name("X-Api-Key")`` is true, ``is_credential_name("max_tokens")``
    is false.
    """
    folded = name.lower().replace("-", "").replace("_", "")
    return folded in _CREDENTIAL_NAMES or folded.endswith(_CREDENTIAL_SUFFIXES)


def contains_secret(text: str) -> bool:
    """Whether :meth:`Redactor.scrub` would change ``text``: it holds something key-shaped
    (``sk-...``, ``Bearer ...``) or the value of one of ``SECRET_ENV_VARS``."""
    return Redactor().scrub(text) != text


class Redactor:
    """Applies the payload mode and scrubs secrets; one per batch of writes.

    Example::

        redactor = Redactor("truncated")
        redactor.payload({"path": "/tmp/x"})   # -> {"path": "/tmp/x"} (short: kept as is)
        redactor.scrub("key sk-abc123456789")  # -> "key [REDACTED]"
    """

    def __init__(self, mode: TracePayloads = "truncated", *, limit: int = PAYLOAD_LIMIT) -> None:
        self.mode = mode
        self.limit = limit
        # Read now rather than at import: a key set after start-up is still scrubbed.
        self._secrets = sorted(
            {
                value
                for name in SECRET_ENV_VARS
                if len(value := os.environ.get(name, "").strip()) >= _MIN_SECRET_LENGTH
            },
            key=len,
            reverse=True,
        )

    def scrub(self, text: str) -> str:
        """``text`` without API keys, bearer tokens, URL passwords or query-string keys."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        if "sk-" in text:
            text = _KEY_PATTERNS[0].sub(REDACTED, text)
        if "bearer" in text.lower():
            text = _KEY_PATTERNS[1].sub(rf"\1 {REDACTED}", text)
        if "://" in text:
            text = _URL_PASSWORD.sub(rf"\1{REDACTED}@", text)
        if "=" in text:
            text = _QUERY_CREDENTIAL.sub(rf"\1{REDACTED}", text)
        return text

    def scrub_all(self, value: Any) -> Any:
        """``value`` (JSON-like) with every string scrubbed and whatever a mapping holds under a
        credential's name (``{"Authorization": ...}``) replaced; other objects become strings."""
        if isinstance(value, str):
            return self.scrub(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, Mapping):
            return {
                self.scrub(str(k)): REDACTED if _credential(k, v) else self.scrub_all(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple | set | frozenset):
            return [self.scrub_all(v) for v in value]
        dump = getattr(value, "model_dump", None)
        if callable(dump):
            return self.scrub_all(dump(mode="json", exclude_none=True))
        return self.scrub(str(value))

    def payload(self, value: Any) -> Any:
        """An input or output as the mode allows: dropped (``None``), whole, or truncated.

        In ``truncated`` mode a payload whose JSON form is longer than the limit is stored as
        that JSON text, cut at the limit and marked with how much was left out.
        """
        if self.mode == "off" or value is None:
            return None
        cleaned = self.scrub_all(value)
        if self.mode == "full":
            return cleaned
        text = cleaned if isinstance(cleaned, str) else _compact(cleaned)
        if len(text) <= self.limit:
            return cleaned
        return f"{text[: self.limit]}... [truncated {len(text) - self.limit} chars]"

    def text(self, value: str | None, *, limit: int | None = None) -> str | None:
        """A diagnostic string (an error message, a name): scrubbed and capped, in every mode."""
        if value is None:
            return None
        cleaned = self.scrub(value)
        cap = limit or self.limit
        return cleaned if len(cleaned) <= cap else f"{cleaned[:cap]}... [truncated]"


def _credential(key: Any, value: Any) -> bool:
    # Flags (``{"api_key_set": true}``-like) and empty values say nothing secret; keep them.
    empty = value is None or value == "" or isinstance(value, bool)
    return not empty and is_credential_name(str(key))


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
