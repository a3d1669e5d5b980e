"""The entry point (``[project.entry-points.timestep] ollama``): routes ``ollama/...`` names.

Installing timestep-ollama is all it takes for ``Agent(model="ollama/llama3.2")`` to work.
"""

from __future__ import annotations

from collections.abc import Callable

import timestep
from timestep.hookspecs import ProviderFactory

from .provider import OllamaModelProvider

__all__ = ["register_model_providers"]


@timestep.hookimpl
def register_model_providers(register: Callable[[str, ProviderFactory], None]) -> None:
    """Serve the ``ollama`` prefix with :class:`OllamaModelProvider` (built on first use)."""
    register("ollama", OllamaModelProvider)
