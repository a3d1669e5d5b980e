"""Test helpers for Timestep and for plugin authors: offline models and the backend suite.

The fixtures live in :mod:`timestep.testing.plugin`, which pytest loads automatically once
timestep is installed.
"""

from .conformance import StateBackendConformance, make_record
from .models import ScriptedModel, ScriptedModelProvider, assistant_message, function_call

__all__ = [
    "ScriptedModel",
    "ScriptedModelProvider",
    "StateBackendConformance",
    "assistant_message",
    "function_call",
    "make_record",
]
