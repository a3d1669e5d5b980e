"""Test helpers for Timestep and for plugin authors: offline models and conformance suites.

:class:`StateBackendConformance` tests a state backend, :class:`SessionConformance` a session
(the SDK's ``Session`` protocol).

The fixtures live in :mod:`timestep.testing.plugin`, which pytest loads automatically once
timestep is installed.
"""

from .conformance import (
    SessionConformance,
    SessionFactory,
    StateBackendConformance,
    UnreadableItemWriter,
    make_record,
)
from .models import ScriptedModel, ScriptedModelProvider, assistant_message, function_call

__all__ = [
    "ScriptedModel",
    "ScriptedModelProvider",
    "SessionConformance",
    "SessionFactory",
    "StateBackendConformance",
    "UnreadableItemWriter",
    "assistant_message",
    "function_call",
    "make_record",
]
