"""The one place settings are resolved.

Precedence, highest first: an explicit argument, ``TIMESTEP_DB_URL``, ``PG_CONNECTION_URI``,
``[tool.timestep]`` in the nearest ``pyproject.toml`` or the nearest ``timestep.toml`` (which wins
when both sit in the same folder), then an embedded SQLite file in the user data directory
(``TIMESTEP_HOME`` overrides that directory).

Example::

    >>> settings = load_settings("postgresql://localhost/app")
    >>> settings.db_url
    'postgresql+asyncpg://localhost/app'
"""

from __future__ import annotations

import functools
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from urllib.parse import urlsplit

import platformdirs

from .errors import ConfigurationError

if TYPE_CHECKING:
    from .observability.prices import ModelPrice

__all__ = [
    "DEFAULT_MAX_STATE_BYTES",
    "QUERY_CREDENTIAL_NAME",
    "Settings",
    "TracePayloads",
    "TracingMode",
    "default_home",
    "load_settings",
    "normalize_db_url",
    "parse_size",
    "redact_url",
    "url_scheme",
]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

TracingMode = Literal["off", "db", "openai", "all"]
"""Where traces go: nowhere, the Timestep database, the SDK's OpenAI exporter, or both."""
TracePayloads = Literal["truncated", "full", "off"]
"""How much of span inputs and outputs the database keeps."""
_TRACING_MODES: tuple[TracingMode, ...] = ("off", "db", "openai", "all")
_TRACE_PAYLOADS: tuple[TracePayloads, ...] = ("truncated", "full", "off")
_Choice = TypeVar("_Choice", bound=str)
_PRICE_FIELDS = ("input", "output", "cached_input", "cache_write_input")

DEFAULT_MAX_STATE_BYTES = 64 * 1024 * 1024
"""The default largest run state Timestep stores or parses: 64 MiB of serialized JSON."""
_SIZE_UNITS = {"": 1, "b": 1, "kb": 1024, "kib": 1024, "mb": 1024**2, "mib": 1024**2}
_SIZE_UNITS |= {"gb": 1024**3, "gib": 1024**3}
# An HMAC key shorter than this is guessable; secrets.token_urlsafe(32) gives 43 characters.
_MIN_STATE_KEY_LENGTH = 32


@dataclass(frozen=True)
class Settings:
    """Resolved settings. ``db_url_source`` says where the URL came from, for diagnostics.

    ``search_backend`` names the ``web_search`` backend from ``TIMESTEP_SEARCH_BACKEND`` or
    ``search_backend`` in the config file (``None``: not configured).

    ``tracing_mode`` is ``TIMESTEP_TRACING`` / ``tracing``: ``off`` (default), ``db`` (traces,
    spans and usage in the Timestep database only), ``openai`` (the SDK's own exporter) or
    ``all``; true/1 mean ``db``, false/0 ``off``. ``tracing`` is true exactly when the SDK's
    exporter may send traces to OpenAI (``openai`` or ``all``), its meaning before the modes.
    ``trace_payloads`` (``TIMESTEP_TRACE_PAYLOADS``) keeps span inputs and outputs
    ``truncated`` (default), ``full`` or ``off``; ``prices`` are the ``[prices]`` overrides.

    ``max_state_bytes`` (``TIMESTEP_MAX_STATE_BYTES`` / ``max_state_bytes``, e.g. ``"16MiB"``)
    caps the size of a stored run state. ``state_key`` (``TIMESTEP_STATE_KEY``, environment
    only) signs stored states and ``previous_state_keys`` (``TIMESTEP_STATE_PREVIOUS_KEYS``,
    comma-separated) still verify rows signed before a key rotation; neither is ever printed.
    """

    db_url: str
    db_url_source: str
    tracing: bool = False
    search_backend: str | None = None
    tracing_mode: TracingMode = "off"
    trace_payloads: TracePayloads = "truncated"
    prices: Mapping[str, ModelPrice] = field(default_factory=dict)
    max_state_bytes: int = DEFAULT_MAX_STATE_BYTES
    state_key: str | None = field(default=None, repr=False)
    previous_state_keys: tuple[str, ...] = field(default=(), repr=False)


def default_home() -> Path:
    """The folder holding the embedded database: ``TIMESTEP_HOME`` or the user data directory."""
    home = os.environ.get("TIMESTEP_HOME")
    return Path(home).expanduser() if home else Path(platformdirs.user_data_dir("timestep"))


def url_scheme(url: str) -> str:
    """The backend scheme of a URL: ``postgresql+asyncpg://...`` -> ``postgresql``."""
    head, sep, _ = url.partition("://")
    if not sep or not head:
        raise ConfigurationError(
            f"{redact_url(url)!r} is not a database URL. Use e.g. 'sqlite:///path/to/timestep.db' "
            "or 'postgresql://user@host:5432/db'."
        )
    return head.split("+", 1)[0].lower()


def normalize_db_url(url: str) -> str:
    """Give ``postgresql://`` and ``sqlite:///`` URLs the async drivers Timestep uses.

    URLs of other schemes (from plugin backends) are returned unchanged.
    """
    if not isinstance(url, str):
        raise ConfigurationError(f"A database URL must be a string, not {type(url).__name__}.")
    url = url.strip()
    scheme = url_scheme(url)
    head, _, rest = url.partition("://")
    driver = head.partition("+")[2].lower()
    if scheme in {"postgresql", "postgres"}:
        if driver not in {"", "asyncpg"}:
            raise ConfigurationError(
                f"Database URL {redact_url(url)!r} asks for driver {driver!r}; Timestep talks to "
                "PostgreSQL through asyncpg. Use 'postgresql://...' or 'postgresql+asyncpg://...'."
            )
        return _checked_sql_url(f"postgresql+asyncpg://{rest}")
    if scheme == "sqlite":
        if driver not in {"", "aiosqlite"}:
            raise ConfigurationError(
                f"Database URL {redact_url(url)!r} asks for driver {driver!r}; Timestep talks to "
                "SQLite through aiosqlite. Use 'sqlite:///path' or 'sqlite+aiosqlite:///path'."
            )
        return _checked_sql_url(f"sqlite+aiosqlite://{rest}")
    return url


def _checked_sql_url(url: str) -> str:
    """``url``, refused now if the driver would only fail at the first connection, and not
    with a Timestep error: a NUL byte, text that is not UTF-8, a malformed host or port."""
    problem = None
    if "\x00" in url:
        problem = "it contains a NUL byte"
    else:
        try:
            url.encode("utf-8")
            urlsplit(url).port  # noqa: B018 (parsing the port is the check)
        except UnicodeError:
            problem = "it is not valid Unicode text (it holds a lone surrogate)"
        except ValueError as error:
            problem = f"its host or port is malformed ({error})"
    if problem is not None:
        # !r keeps unprintable characters escaped, so the message itself can be printed.
        raise ConfigurationError(
            f"Database URL {redact_url(url)!r} cannot be used: {problem}. Use e.g. "
            "'sqlite:///path/to/timestep.db' or 'postgresql://user@host:5432/db'."
        )
    return url


def load_settings(db_url: str | None = None, *, cwd: Path | None = None) -> Settings:
    """Resolve settings from the argument, the environment, config files and defaults."""
    file_settings, file_source = _read_config_file(cwd or Path.cwd())
    url, source = _pick_db_url(db_url, file_settings, file_source)
    tracing_mode = _pick_choice(
        "TIMESTEP_TRACING",
        "tracing",
        file_settings,
        file_source,
        _TRACING_MODES,
        default="off",
        true_means="db",
        false_means="off",
    )
    return Settings(
        db_url=normalize_db_url(url),
        db_url_source=source,
        tracing=tracing_mode in ("openai", "all"),
        search_backend=_pick_search_backend(file_settings, file_source),
        tracing_mode=tracing_mode,
        trace_payloads=_pick_choice(
            "TIMESTEP_TRACE_PAYLOADS",
            "trace_payloads",
            file_settings,
            file_source,
            _TRACE_PAYLOADS,
            default="truncated",
        ),
        prices=_pick_prices(file_settings.get("prices"), file_source),
        max_state_bytes=_pick_max_state_bytes(file_settings, file_source),
        state_key=_pick_state_key(file_settings, file_source),
        previous_state_keys=tuple(
            _check_state_key(key.strip(), "a key in TIMESTEP_STATE_PREVIOUS_KEYS")
            for key in os.environ.get("TIMESTEP_STATE_PREVIOUS_KEYS", "").split(",")
            if key.strip()
        ),
    )


def parse_size(value: object, where: str) -> int:
    """A positive byte count from an int or a string like ``"16MiB"`` / ``"512 KB"``.

    Units are binary (1 KB = 1024 bytes). Raises :class:`ConfigurationError` naming ``where``.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    else:
        match = re.fullmatch(r"\s*(\d{1,20})\s*([a-zA-Z]*)\s*", str(value))
        unit = match.group(2).lower() if match else None
        if match is None or unit not in _SIZE_UNITS:
            raise ConfigurationError(
                f"{where} must be a size in bytes such as 67108864, '64MiB' or '512KB', "
                f"not {value!r}."
            )
        size = int(match.group(1)) * _SIZE_UNITS[unit]
    if size <= 0:
        raise ConfigurationError(f"{where} must be a positive size, not {value!r}.")
    return size


def _pick_max_state_bytes(file_settings: dict[str, Any], file_source: str) -> int:
    from_env = os.environ.get("TIMESTEP_MAX_STATE_BYTES", "").strip()
    if from_env:
        return parse_size(from_env, "TIMESTEP_MAX_STATE_BYTES")
    if "max_state_bytes" in file_settings:
        return parse_size(file_settings["max_state_bytes"], f"'max_state_bytes' in {file_source}")
    return DEFAULT_MAX_STATE_BYTES


def _pick_state_key(file_settings: dict[str, Any], file_source: str) -> str | None:
    if "state_key" in file_settings:
        # A key in a file that is usually committed is not a secret any more.
        raise ConfigurationError(
            f"Remove 'state_key' from {file_source}: the signing key is a secret, read only "
            "from the TIMESTEP_STATE_KEY environment variable (set it from your secret store)."
        )
    key = os.environ.get("TIMESTEP_STATE_KEY", "").strip()
    return _check_state_key(key, "TIMESTEP_STATE_KEY") if key else None


def _check_state_key(key: str, where: str) -> str:
    if len(key) < _MIN_STATE_KEY_LENGTH:
        raise ConfigurationError(
            f"{where} is {len(key)} characters; a signing key needs at least "
            f"{_MIN_STATE_KEY_LENGTH}. Generate one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return key


def _pick_search_backend(file_settings: dict[str, Any], file_source: str) -> str | None:
    from_env = os.environ.get("TIMESTEP_SEARCH_BACKEND", "").strip()
    if from_env:
        return from_env
    from_file = file_settings.get("search_backend")
    if from_file is None:
        return None
    if not isinstance(from_file, str) or not from_file.strip():
        raise ConfigurationError(
            f"'search_backend' in {file_source} must be a non-empty string naming an installed "
            'web search backend, e.g. search_backend = "firecrawl".'
        )
    return from_file.strip()


def _pick_db_url(
    explicit: str | None, file_settings: dict[str, Any], file_source: str
) -> tuple[str, str]:
    if explicit:
        return explicit, "argument"
    for var in ("TIMESTEP_DB_URL", "PG_CONNECTION_URI"):
        value = os.environ.get(var, "").strip()
        if value:
            return value, var
    from_file = file_settings.get("db_url")
    if from_file is not None:
        if not isinstance(from_file, str) or not from_file.strip():
            raise ConfigurationError(
                f"'db_url' in {file_source} must be a non-empty string database URL."
            )
        return from_file, file_source
    path = default_home() / "timestep.db"
    return f"sqlite:///{path}", "embedded default"


def _read_config_file(start: Path) -> tuple[dict[str, Any], str]:
    for folder in (start, *start.parents):
        dedicated = folder / "timestep.toml"
        if dedicated.is_file():
            return _load_toml(dedicated), str(dedicated)
        project = folder / "pyproject.toml"
        if project.is_file():
            table = _load_toml(project).get("tool", {}).get("timestep")
            if table is not None:
                if not isinstance(table, dict):
                    raise ConfigurationError(f"[tool.timestep] in {project} must be a table.")
                return table, f"[tool.timestep] in {project}"
    return {}, ""


def _load_toml(path: Path) -> dict[str, Any]:
    """The parsed file (treat it as read-only: it is shared between calls)."""
    try:
        stat = path.stat()
        # run_agent resolves settings on every run; parse a file again only when it changed.
        return _parse_toml(str(path), stat.st_mtime_ns, stat.st_size)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigurationError(f"Cannot read {path}: {error}. Fix or remove the file.") from None


@functools.lru_cache(maxsize=32)
def _parse_toml(path: str, mtime_ns: int, size: int) -> dict[str, Any]:
    with open(path, "rb") as f:
        return tomllib.load(f)


def _pick_choice(
    env: str,
    key: str,
    file_settings: dict[str, Any],
    file_source: str,
    choices: tuple[_Choice, ...],
    *,
    default: _Choice,
    true_means: _Choice | None = None,
    false_means: _Choice | None = None,
) -> _Choice:
    """One of ``choices`` from ``env``, else ``key`` in the config file, else ``default``.

    true/1/yes mean ``true_means`` and false/0/no ``false_means``, when given.
    """
    raw: object = os.environ.get(env)
    where = env
    if raw is None:
        raw, where = file_settings.get(key, default), f"{key!r} in {file_source}"
    text = ("true" if raw else "false") if isinstance(raw, bool) else str(raw).strip().lower()
    for choice in choices:
        if text == choice:
            return choice
    if text in _TRUE and true_means is not None:
        return true_means
    if text in _FALSE and false_means is not None:
        return false_means
    also = " (or true/false)" if true_means is not None else ""
    raise ConfigurationError(f"{where} must be one of {', '.join(choices)}{also}, not {raw!r}.")


def _pick_prices(table: object, file_source: str) -> dict[str, ModelPrice]:
    """The ``[prices]`` overrides: model name -> USD per 1M tokens (``_PRICE_FIELDS``)."""
    if table is None:
        return {}
    example = '"gpt-4.1-mini" = { input = 0.40, output = 1.60, cached_input = 0.10 }'
    if not isinstance(table, dict):
        raise ConfigurationError(f"[prices] in {file_source} must be a table like: {example}")
    from .observability.prices import ModelPrice

    prices: dict[str, ModelPrice] = {}
    for model, entry in table.items():
        fields = entry if isinstance(entry, dict) else {}
        amounts = {name: fields.get(name) for name in _PRICE_FIELDS}
        valid = (
            isinstance(entry, dict)
            and set(fields) <= set(amounts)
            and amounts["input"] is not None
            and amounts["output"] is not None
            and all(_is_amount(value) for value in amounts.values() if value is not None)
        )
        if not valid:
            raise ConfigurationError(
                f"[prices] {model!r} in {file_source} must give non-negative USD per 1M tokens "
                "for input and output (cached_input, cache_write_input optional), e.g. "
                f"{example}"
            )
        usd = {name: None if v is None else Decimal(str(v)) for name, v in amounts.items()}
        prices[model] = ModelPrice(
            input=Decimal(str(amounts["input"])),
            output=Decimal(str(amounts["output"])),
            cached_input=usd["cached_input"],
            cache_write_input=usd["cache_write_input"],
        )
    return prices


def _is_amount(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def redact_url(url: str) -> str:
    """Hide a password in a URL (``user:***@`` and ``?password=***``) before it is shown."""
    url = _SECRET_QUERY.sub(r"\1***", url)
    head, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{head}://{user}:***@{host}" if ":" in credentials else url


QUERY_CREDENTIAL_NAME = r"(?:[a-z0-9_\-]*(?:key|token|secret|password|passwd|signature)|pwd)"
"""Query parameters that carry a credential (``password``, ``pwd``, ``api_key``, ``access_token``,
...), as a regular expression to use case-insensitively; :func:`redact_url` and the trace
redaction both mask them."""
_SECRET_QUERY = re.compile(rf"(?i)([?&]{QUERY_CREDENTIAL_NAME}=)[^&#]*")
