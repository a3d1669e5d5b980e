"""Translate between openai-agents RunState schema 1.21 (Python) and @openai/agents 1.22 (JS).

``python_to_js`` and ``js_to_python`` take the SDK's ``to_json()`` / ``JSON.parse(toString())``
object and return the other SDK's, ready for ``RunState.fromString`` / ``RunState.from_json``.
What is translated: the conversation (input, messages, reasoning summaries), function tool calls
and results, handoffs, pending approvals and approval decisions, the tool-call ledgers (so a
tool that already ran is never run again), input/output/tool guardrail results, usage, the
current agent, turn counters, ``max_turns``, and the paused step. Anything else (hosted,
computer, shell or MCP tools, sandbox or in-flight Session writes, nested agent-tool runs)
raises :class:`~timestep.errors.IncompatibleStateError` naming it.

``to_js`` and ``to_python`` map the state, ``items_to_js`` and ``items_to_python`` its raw
items, and ``common`` holds what both directions share (``docs/cross-language.md`` has the map).
A later SDK release gets a module of its own beside this one; a released pair is never edited
to read a newer schema.
"""

from __future__ import annotations

from .to_js import JS_SCHEMA, python_to_js
from .to_python import PYTHON_SCHEMA, js_to_python

__all__ = ["JS_SCHEMA", "PYTHON_SCHEMA", "js_to_python", "python_to_js"]
