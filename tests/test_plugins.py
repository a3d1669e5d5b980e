"""Plugins are found through the `timestep` entry-point group of installed distributions.

The suite installs tests/plugins/timestep-example (a real distribution with two entry points),
so these tests exercise the same discovery path a user's `pip install timestep-xyz` does.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib.metadata import distribution
from typing import Any

import pytest
from agents import Agent

from timestep import (
    MultiModelProvider,
    MultiModelProviderMap,
    PluginError,
    UnknownModelPrefixError,
    hookimpl,
    plugins,
    run_agent,
)


def test_the_example_distribution_is_really_installed() -> None:
    names = {ep.name for ep in distribution("timestep-example").entry_points}
    assert {"example", "example_broken"} <= names


@pytest.mark.parametrize("prefix", ["example", "acme"])
async def test_an_installed_plugin_routes_its_model_prefixes(prefix: str) -> None:
    assert plugins.model_provider_factories()[prefix].plugin == "example"
    agent = Agent(name="Echo", model=f"{prefix}/parrot/v2:large")
    result = await run_agent(agent, "hello")
    assert result.final_output == "parrot/v2:large heard: hello"


def test_an_installed_plugin_adds_a_storage_scheme() -> None:
    registration = plugins.state_backend_factories()["memory"]
    assert registration.plugin == "example"


def test_builtins_are_plugins_too() -> None:
    registered = plugins.state_backend_factories()
    assert {"postgresql", "sqlite"} <= set(registered)
    assert registered["sqlite"].plugin == "timestep.storage.sql"


def test_timestep_load_plugins_limits_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMESTEP_LOAD_PLUGINS", "")
    plugins._reset_for_tests()
    assert "example" not in plugins.model_provider_factories()
    assert "sqlite" in plugins.state_backend_factories()  # built-ins always load

    monkeypatch.setenv("TIMESTEP_LOAD_PLUGINS", "example")
    plugins._reset_for_tests()
    assert "example" in plugins.model_provider_factories()


def test_a_broken_plugin_is_reported_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMESTEP_EXAMPLE_BROKEN", "1")
    monkeypatch.delitem(sys.modules, "timestep_example.broken", raising=False)
    with pytest.raises(PluginError) as raised:
        plugins.get_plugin_manager()
    assert raised.value.plugin == "example_broken"
    message = str(raised.value)
    assert "timestep-example" in message and "TIMESTEP_LOAD_PLUGINS" in message

    monkeypatch.setenv("TIMESTEP_LOAD_PLUGINS", "example")
    plugins._reset_for_tests()
    assert "example" in plugins.model_provider_factories()


def test_two_plugins_claiming_one_prefix_is_an_error(
    register_plugin: Callable[..., str],
) -> None:
    class Copycat:
        @hookimpl
        def register_model_providers(self, register: Callable[[str, Any], None]) -> None:
            register("example", object)

    register_plugin(Copycat(), "copycat")
    with pytest.raises(PluginError, match="'example' and 'copycat' both register"):
        plugins.model_provider_factories()


@pytest.mark.parametrize("prefix", ["", "a/b", 3])
def test_invalid_registrations_name_the_plugin(
    register_plugin: Callable[..., str], prefix: object
) -> None:
    class Sloppy:
        @hookimpl
        def register_state_backends(self, register: Callable[[Any, Any], None]) -> None:
            register(prefix, lambda url: None)

    register_plugin(Sloppy(), "sloppy")
    with pytest.raises(PluginError, match="'sloppy'"):
        plugins.state_backend_factories()


def test_unknown_prefix_lists_what_is_known() -> None:
    with pytest.raises(UnknownModelPrefixError) as raised:
        MultiModelProvider().get_model("nosuch/llama3")
    message = str(raised.value)
    assert "'nosuch'" in message and "example" in message and "openai" in message
    assert "pip install timestep-nosuch" in message


def test_provider_map_builds_lazily_and_keeps_slashes() -> None:
    built: list[str] = []

    class Recorder:
        def get_model(self, model_name: str | None) -> Any:
            built.append(str(model_name))
            return model_name

    from agents import ModelProvider

    ModelProvider.register(Recorder)
    provider_map = MultiModelProviderMap(include_plugins=False)
    factory_calls: list[int] = []

    def factory() -> Any:
        factory_calls.append(1)
        return Recorder()

    provider_map.add_provider("hf", factory)
    assert provider_map.has_prefix("hf") and factory_calls == []
    provider = MultiModelProvider(provider_map=provider_map)
    provider.get_model("hf/org/model:Q4")
    provider.get_model("hf/other")
    assert built == ["org/model:Q4", "other"] and factory_calls == [1]
    provider_map.remove_provider("hf")
    assert not provider_map.has_prefix("hf")


def test_plugin_names_import_from_timestep_once_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import timestep

    assert timestep.OllamaModelProvider.__module__.startswith("timestep_ollama")
    monkeypatch.setitem(sys.modules, "timestep_ollama", None)
    with pytest.raises(ImportError, match="pip install timestep-ollama"):
        from timestep import OllamaModelProvider  # noqa: F401
    with pytest.raises(AttributeError):
        _ = timestep.NoSuchName  # type: ignore[attr-defined]
