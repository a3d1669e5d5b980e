"""Settings precedence: argument > TIMESTEP_DB_URL > PG_CONNECTION_URI > config file > embedded."""

from __future__ import annotations

from pathlib import Path

import pytest

from timestep import ConfigurationError, load_settings
from timestep.config import normalize_db_url, redact_url


def test_embedded_sqlite_under_timestep_home_by_default(
    timestep_home: Path, tmp_path: Path
) -> None:
    settings = load_settings(cwd=tmp_path)
    assert settings.db_url == f"sqlite+aiosqlite:///{timestep_home / 'timestep.db'}"
    assert settings.db_url_source == "embedded default"
    assert settings.tracing is False


def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.timestep]\ndb_url = "sqlite:///from-pyproject.db"\n'
    )
    nested = tmp_path / "src" / "app"
    nested.mkdir(parents=True)
    assert load_settings(cwd=nested).db_url == "sqlite+aiosqlite:///from-pyproject.db"

    (tmp_path / "timestep.toml").write_text('db_url = "sqlite:///from-timestep-toml.db"\n')
    assert load_settings(cwd=nested).db_url.endswith("from-timestep-toml.db")

    monkeypatch.setenv("PG_CONNECTION_URI", "postgresql://pg-uri/db")
    assert load_settings(cwd=nested).db_url == "postgresql+asyncpg://pg-uri/db"
    assert load_settings(cwd=nested).db_url_source == "PG_CONNECTION_URI"

    monkeypatch.setenv("TIMESTEP_DB_URL", "postgres://timestep-url/db")
    assert load_settings(cwd=nested).db_url == "postgresql+asyncpg://timestep-url/db"

    assert load_settings("sqlite:///explicit.db", cwd=nested).db_url_source == "argument"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u@h:5432/db", "postgresql+asyncpg://u@h:5432/db"),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("sqlite:///rel.db", "sqlite+aiosqlite:///rel.db"),
        ("sqlite:////abs/path.db", "sqlite+aiosqlite:////abs/path.db"),
        ("memory://x", "memory://x"),
    ],
)
def test_urls_get_async_drivers(given: str, expected: str) -> None:
    assert normalize_db_url(given) == expected


@pytest.mark.parametrize(
    "bad", ["nonsense", "://", "postgresql+psycopg2://h/db", "sqlite+pysqlite:///x"]
)
def test_bad_urls_raise_configuration_errors(bad: str) -> None:
    with pytest.raises(ConfigurationError, match=r"postgresql|sqlite"):
        normalize_db_url(bad)


def test_passwords_never_appear_in_messages() -> None:
    assert redact_url("postgresql://me:s3cret@h/db") == "postgresql://me:***@h/db"
    assert (
        redact_url("postgresql://me@h/db?sslmode=require&Password=s3cret")
        == "postgresql://me@h/db?sslmode=require&Password=***"
    )
    with pytest.raises(ConfigurationError) as raised:
        normalize_db_url("postgresql+psycopg2://me:s3cret@h/db")
    assert "s3cret" not in str(raised.value)


def test_broken_config_files_are_named(tmp_path: Path) -> None:
    (tmp_path / "timestep.toml").write_text("db_url = [unclosed")
    with pytest.raises(ConfigurationError, match=r"timestep\.toml"):
        load_settings(cwd=tmp_path)
    (tmp_path / "timestep.toml").write_text("db_url = 42")
    with pytest.raises(ConfigurationError, match="non-empty string"):
        load_settings(cwd=tmp_path)


def test_tracing_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # "yes" records in the Timestep database; only openai/all let the SDK export (`tracing`).
    monkeypatch.setenv("TIMESTEP_TRACING", "yes")
    assert load_settings(cwd=tmp_path).tracing_mode == "db"
    assert load_settings(cwd=tmp_path).tracing is False
    monkeypatch.setenv("TIMESTEP_TRACING", "all")
    assert load_settings(cwd=tmp_path).tracing is True
    monkeypatch.setenv("TIMESTEP_TRACING", "maybe")
    with pytest.raises(ConfigurationError, match="TIMESTEP_TRACING"):
        load_settings(cwd=tmp_path)
