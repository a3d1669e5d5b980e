"""Model routing by prefix, on top of the SDK's own ``MultiProvider``.

``gpt-4.1`` and ``openai/gpt-4.1`` go to OpenAI; ``PREFIX/rest`` goes to the provider registered
for ``PREFIX`` (through the ``register_model_providers`` hook or ``add_provider``), which gets
``rest`` with any further slashes intact.

Example::

    provider_map = MultiModelProviderMap()
    provider_map.add_provider("local", MyProvider())
    provider = MultiModelProvider(provider_map=provider_map)
    result = await run_agent(agent, "hi", run_config=RunConfig(model_provider=provider))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agents import Model, ModelProvider
from agents.models.multi_provider import MultiProvider, MultiProviderMap

from . import plugins
from .errors import PluginError, UnknownModelPrefixError

__all__ = ["MultiModelProvider", "MultiModelProviderMap"]

# Prefixes the SDK's MultiProvider resolves by itself.
_SDK_PREFIXES = frozenset({"openai", "litellm", "any-llm"})


class MultiModelProviderMap(MultiProviderMap):
    """Prefix -> provider, with every installed plugin's prefixes available on demand.

    A provider may be given ready-made or as a factory (a class or a function without
    arguments); factories, including the plugins', are built on first use and then reused.
    """

    def __init__(self, *, include_plugins: bool = True) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # the SDK leaves it unannotated
        self._include_plugins = include_plugins
        self._factories: dict[str, Callable[[], ModelProvider]] = {}
        self._removed: set[str] = set()

    def add_provider(
        self, prefix: str, provider: ModelProvider | Callable[[], ModelProvider]
    ) -> None:
        """Route ``prefix/...`` model names to ``provider`` (or to what the factory builds)."""
        prefix = _check_prefix(prefix)
        self._removed.discard(prefix)
        self._mapping.pop(prefix, None)
        self._factories.pop(prefix, None)
        if isinstance(provider, ModelProvider):
            self._mapping[prefix] = provider
        elif callable(provider):
            self._factories[prefix] = provider
        else:
            raise TypeError(f"add_provider({prefix!r}, ...) needs a ModelProvider or a factory.")

    def remove_provider(self, prefix: str) -> None:
        """Stop routing ``prefix`` (including a plugin's registration of it)."""
        prefix = prefix.lower()
        if not self.has_prefix(prefix):
            raise KeyError(prefix)
        self._mapping.pop(prefix, None)
        self._factories.pop(prefix, None)
        self._removed.add(prefix)

    def has_prefix(self, prefix: str) -> bool:
        """Whether ``prefix`` is routed, built yet or not."""
        prefix = prefix.lower()
        return prefix in self._mapping or self._factory(prefix) is not None

    def get_provider(self, prefix: str) -> ModelProvider | None:
        """The provider for ``prefix``, built on first request; ``None`` if unrouted."""
        prefix = prefix.lower()
        provider = self._mapping.get(prefix)
        if provider is None:
            factory = self._factory(prefix)
            if factory is None:
                return None
            provider = _build(prefix, factory)
            self._mapping[prefix] = provider
            self._factories.pop(prefix, None)
        return provider

    def get_mapping(self) -> dict[str, ModelProvider]:
        """Every routed prefix with its provider (building any not built yet)."""
        mapping: dict[str, ModelProvider] = {}
        for prefix in self.prefixes():
            provider = self.get_provider(prefix)
            if provider is not None:
                mapping[prefix] = provider
        return mapping

    def set_mapping(self, mapping: dict[str, ModelProvider]) -> None:
        """Replace every route, plugins' included, with exactly ``mapping``."""
        self._factories.clear()
        self._mapping = {_check_prefix(prefix): p for prefix, p in mapping.items()}
        self._removed = set(self._plugin_factories()) - set(self._mapping)

    def prefixes(self) -> list[str]:
        """Every routed prefix, sorted."""
        known = set(self._mapping) | set(self._factories) | set(self._plugin_factories())
        return sorted(known - self._removed | set(self._mapping))

    def _factory(self, prefix: str) -> Callable[[], ModelProvider] | None:
        if prefix in self._factories:
            return self._factories[prefix]
        if prefix in self._removed:
            return None
        registration = self._plugin_factories().get(prefix)
        return None if registration is None else registration.value

    def _plugin_factories(self) -> dict[str, Any]:
        return plugins.model_provider_factories() if self._include_plugins else {}


class MultiModelProvider(MultiProvider):
    """The SDK's ``MultiProvider`` with prefixes from installed plugins.

    Takes every ``MultiProvider`` keyword (``openai_api_key``, ``openai_base_url``, ...). An
    unknown prefix raises :class:`~timestep.UnknownModelPrefixError` listing the known ones.
    """

    def __init__(self, *, provider_map: MultiProviderMap | None = None, **kwargs: Any) -> None:
        super().__init__(provider_map=provider_map or MultiModelProviderMap(), **kwargs)

    def get_model(self, model_name: str | None) -> Model:
        """The model for ``model_name``, routed by its prefix."""
        prefix, _, rest = (model_name or "").partition("/")
        if rest and prefix.lower() not in _SDK_PREFIXES:
            provider_map = self.provider_map
            if provider_map is None or not provider_map.has_prefix(prefix.lower()):
                raise self._unknown_prefix(prefix, model_name or "")
            provider = provider_map.get_provider(prefix.lower())
            assert provider is not None
            return provider.get_model(rest)
        return super().get_model(model_name)

    def _unknown_prefix(self, prefix: str, model_name: str) -> UnknownModelPrefixError:
        provider_map = self.provider_map
        routed = (
            provider_map.prefixes()
            if isinstance(provider_map, MultiModelProviderMap)
            else list(provider_map.get_mapping())
            if provider_map is not None
            else []
        )
        known = ", ".join(sorted({"openai", *routed}))
        return UnknownModelPrefixError(
            f"No model provider handles the prefix {prefix!r} of model {model_name!r}. "
            f"Known prefixes: {known}. Install the plugin that adds it (for example "
            f"`pip install timestep-{prefix.lower()}`) or route it yourself with "
            f"MultiModelProviderMap.add_provider({prefix.lower()!r}, provider)."
        )


def _check_prefix(prefix: str) -> str:
    if not isinstance(prefix, str) or not prefix or "/" in prefix:
        raise ValueError(f"A model prefix is a non-empty name without '/', not {prefix!r}.")
    return prefix.lower()


def _build(prefix: str, factory: Callable[[], ModelProvider]) -> ModelProvider:
    try:
        provider = factory()
    except Exception as error:
        raise PluginError(
            f"Building the model provider for prefix {prefix!r} failed: "
            f"{type(error).__name__}: {error}",
            plugin=prefix,
        ) from error
    if not isinstance(provider, ModelProvider):
        raise PluginError(
            f"The factory for prefix {prefix!r} returned {provider!r}, "
            "not an agents.ModelProvider.",
            plugin=prefix,
        )
    return provider
