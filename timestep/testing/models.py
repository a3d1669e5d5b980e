"""Offline models for tests and demos: no network, no API key.

The SDK's ``agents.testing.ScriptedModel`` plays back a script of replies; this module adds a
provider, so string model names (``Agent(model="scripted/ops")``) resolve to scripted models,
and the same routing path as production is exercised.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from agents import Model, ModelProvider
from agents.testing import ScriptedModel, assistant_message, function_call

__all__ = ["ScriptedModel", "ScriptedModelProvider", "assistant_message", "function_call"]


class ScriptedModelProvider(ModelProvider):
    """Serves a :class:`ScriptedModel` per model name.

    Example::

        provider = ScriptedModelProvider({"ops": [[function_call("delete_file", {...},
                                                                  call_id="c1")]]})
        result = await run_agent(agent, "hi", run_config=RunConfig(model_provider=provider))
        provider.models["ops"].assert_complete()

    Register it for a prefix with ``MultiModelProviderMap.add_provider("scripted", provider)``
    or through the ``register_model_providers`` hook.
    """

    def __init__(self, scripts: Mapping[str, Iterable[Any]] | None = None) -> None:
        self.models: dict[str, ScriptedModel] = {
            name: ScriptedModel(steps) for name, steps in (scripts or {}).items()
        }

    def script(self, model_name: str, steps: Iterable[Any]) -> ScriptedModel:
        """Append ``steps`` to the script of ``model_name`` (creating it) and return the model."""
        model = self.models.setdefault(model_name, ScriptedModel())
        model.extend(steps)
        return model

    def get_model(self, model_name: str | None) -> Model:
        """The scripted model for ``model_name``; unknown names get an empty script."""
        return self.models.setdefault(model_name or "default", ScriptedModel())
