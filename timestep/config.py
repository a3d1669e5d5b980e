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

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from .errors import ConfigurationError

__all__ = [
    "Settings",
    "default_home",
    "load_settings",
    "normalize_db_url",
    "redact_url",
    "url_scheme",
]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Settings:
    """Resolved settings. ``db_url_source`` says where the URL came from, for diagnostics."""

    db_url: str
    db_url_source: str
    tracing: bool = False


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
        return f"postgresql+asyncpg://{rest}"
    if scheme == "sqlite":
        if driver not in {"", "aiosqlite"}:
            raise ConfigurationError(
                f"Database URL {redact_url(url)!r} asks for driver {driver!r}; Timestep talks to "
                "SQLite through aiosqlite. Use 'sqlite:///path' or 'sqlite+aiosqlite:///path'."
            )
        return f"sqlite+aiosqlite://{rest}"
    return url


def load_settings(db_url: str | None = None, *, cwd: Path | None = None) -> Settings:
    """Resolve settings from the argument, the environment, config files and defaults."""
    file_settings, file_source = _read_config_file(cwd or Path.cwd())
    url, source = _pick_db_url(db_url, file_settings, file_source)
    tracing = _parse_bool(
        os.environ.get("TIMESTEP_TRACING", file_settings.get("tracing", False)), "TIMESTEP_TRACING"
    )
    return Settings(db_url=normalize_db_url(url), db_url_source=source, tracing=tracing)


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
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigurationError(f"Cannot read {path}: {error}. Fix or remove the file.") from None


def _parse_bool(value: object, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigurationError(f"{name} must be true or false, not {value!r}.")


def redact_url(url: str) -> str:
    """Hide a password in a URL before it goes into a message."""
    head, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{head}://{user}:***@{host}" if ":" in credentials else url
