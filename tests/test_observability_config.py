"""The tracing settings, the price table and its overrides, and the age format of ``gc``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from agents import Agent
from agents.testing import ModelStep, assistant_message
from observability_support import tokens, usage_rows

from timestep import ConfigurationError, load_settings, run_agent
from timestep.observability import (
    ModelPrice,
    configure_tracing,
    cost_nanousd,
    flush_tracing,
    parse_duration,
    price_for,
)
from timestep.observability.install import _reset_for_tests
from timestep.testing import ScriptedModelProvider


@pytest.fixture(autouse=True)
def _no_tracing_left_behind() -> Iterator[None]:
    yield
    _reset_for_tests()


async def test_a_price_in_timestep_toml_overrides_the_shipped_one(
    sqlite_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    scripted_provider: ScriptedModelProvider,
) -> None:
    (tmp_path / "timestep.toml").write_text(
        f'db_url = "{sqlite_url}"\n'
        'tracing = "db"\n'
        "[prices]\n"
        '"gpt-4.1-mini" = { input = 1, output = 2, cached_input = 0.5 }\n'
        '"scripted/house-model" = { input = 0, output = 0 }\n'
    )
    monkeypatch.chdir(tmp_path)
    scripted_provider.script(
        "gpt-4.1-mini", [ModelStep(output=[assistant_message("a")], usage=tokens(1000, 100))]
    )
    scripted_provider.script(
        "house-model", [ModelStep(output=[assistant_message("b")], usage=tokens(5000, 500))]
    )
    await run_agent(Agent(name="A", model="scripted/gpt-4.1-mini"), "hi")
    await run_agent(Agent(name="B", model="scripted/house-model"), "hi")
    assert flush_tracing()

    # (1000 * $1 + 100 * $2) / 1M = $0.0012; the house model is free, not unknown.
    assert [(row[1], row[8]) for row in await usage_rows(sqlite_url)] == [
        ("gpt-4.1-mini", 1_200_000),
        ("house-model", 0),
    ]


@pytest.mark.parametrize(
    ("value", "mode", "exports"),
    [
        ("off", "off", False),
        ("db", "db", False),
        ("openai", "openai", True),
        ("all", "all", True),
        ("ALL", "all", True),
        ("1", "db", False),
        ("true", "db", False),
        ("0", "off", False),
        ("false", "off", False),
    ],
)
def test_tracing_modes(
    value: str, mode: str, exports: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TIMESTEP_TRACING", value)
    settings = load_settings(cwd=tmp_path)
    assert (settings.tracing_mode, settings.tracing) == (mode, exports)


def test_tracing_and_payloads_from_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TIMESTEP_TRACE_PAYLOADS", raising=False)
    assert load_settings(cwd=tmp_path).trace_payloads == "truncated"
    (tmp_path / "pyproject.toml").write_text(
        '[tool.timestep]\ntracing = true\ntrace_payloads = "off"\n'
        '[tool.timestep.prices]\n"o3" = { input = 1.5, output = 6 }\n'
    )
    settings = load_settings(cwd=tmp_path)
    assert (settings.tracing_mode, settings.trace_payloads) == ("db", "off")
    assert settings.prices == {"o3": ModelPrice(input=Decimal("1.5"), output=Decimal("6"))}
    monkeypatch.setenv("TIMESTEP_TRACE_PAYLOADS", "full")
    assert load_settings(cwd=tmp_path).trace_payloads == "full"


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        ("TIMESTEP_TRACING", "maybe", "TIMESTEP_TRACING must be one of off, db, openai, all"),
        ("TIMESTEP_TRACE_PAYLOADS", "some", "must be one of truncated, full, off, not 'some'"),
        ("TIMESTEP_TRACE_PAYLOADS", "true", "TIMESTEP_TRACE_PAYLOADS must be one of"),
    ],
)
def test_bad_tracing_settings_name_the_choices(
    env: str, value: str, message: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigurationError, match=message):
        load_settings(cwd=tmp_path)


@pytest.mark.parametrize(
    "table",
    [
        'prices = "cheap"',
        '[prices]\n"gpt-x" = 3',
        '[prices]\n"gpt-x" = { input = 1 }',
        '[prices]\n"gpt-x" = { input = -1, output = 2 }',
        '[prices]\n"gpt-x" = { input = 1, output = 2, discount = 3 }',
        '[prices]\n"gpt-x" = { input = "1", output = 2 }',
    ],
)
def test_a_bad_price_table_says_what_a_good_one_looks_like(table: str, tmp_path: Path) -> None:
    (tmp_path / "timestep.toml").write_text(table + "\n")
    with pytest.raises(ConfigurationError, match=r'"gpt-4\.1-mini" = \{ input = 0\.40'):
        load_settings(cwd=tmp_path)


def test_db_mode_needs_a_database_the_writer_can_share(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TIMESTEP_TRACING", "db")
    with pytest.raises(ConfigurationError, match="in-memory SQLite"):
        configure_tracing(load_settings("sqlite://", cwd=tmp_path))
    with pytest.raises(ConfigurationError, match="served by a plugin backend"):
        configure_tracing(load_settings("memory://anything", cwd=tmp_path))


def test_prices_follow_snapshots_and_provider_overrides() -> None:
    assert price_for("gpt-4.1-2025-04-14") == price_for("gpt-4.1")
    assert price_for("gpt-4.1-mini", "openai") == ModelPrice(
        input=Decimal("0.40"), output=Decimal("1.60"), cached_input=Decimal("0.10")
    )
    free = ModelPrice(input=Decimal(0), output=Decimal(0))
    assert price_for("gpt-4.1", "azure", {"azure/gpt-4.1": free}) == free
    assert price_for("gpt-4.1", "openai", {"azure/gpt-4.1": free}) != free
    assert price_for("llama3.2", "ollama") is None and price_for(None) is None


def test_cost_counts_cache_reads_and_writes_at_their_own_prices() -> None:
    luna = price_for("gpt-5.6-luna")
    # 7000 plain * $0.20 + 2000 cache reads * $0.02 + 1000 cache writes * $0.25 + 500 out * $1.20.
    assert cost_nanousd(
        luna, input_tokens=10_000, output_tokens=500, cached_tokens=2_000, cache_write_tokens=1_000
    ) == 2_290_000  # fmt: skip
    assert cost_nanousd(None, input_tokens=10, output_tokens=10) is None
    # Rounded half-even to whole nano-dollars: 1 nano-token price of $0.0005 per 1M.
    tiny = ModelPrice(input=Decimal("0.0005"), output=Decimal(0))
    assert cost_nanousd(tiny, input_tokens=1, output_tokens=0) == 0
    assert cost_nanousd(tiny, input_tokens=3, output_tokens=0) == 2


@pytest.mark.parametrize(
    ("text", "age"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("90m", timedelta(minutes=90)),
        ("2w", timedelta(weeks=2)),
        (" 45s ", timedelta(seconds=45)),
    ],
)
def test_ages(text: str, age: timedelta) -> None:
    assert parse_duration(text) == age
