"""The public API: one sorted ``__all__``, every name importable and documented."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import timestep
import timestep.workflows


def test_every_exported_name_resolves_and_has_a_docstring() -> None:
    assert list(timestep.__all__) == sorted(timestep.__all__)
    undocumented = []
    for name in timestep.__all__:
        value = getattr(timestep, name)
        if (inspect.isclass(value) or callable(value)) and not inspect.getdoc(value):
            undocumented.append(name)
    assert undocumented == []


def test_the_lazily_loaded_workflow_names_match_the_type_checking_imports() -> None:
    # timestep/__init__.py names them twice (for type checkers, and for __getattr__).
    tree = ast.parse(Path(timestep.__file__).read_text())
    typed = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "workflows"
        for alias in node.names
    }
    lazy = set(timestep._WORKFLOW_NAMES)
    assert typed == lazy
    assert lazy <= set(timestep.workflows.__all__)
    assert lazy <= set(timestep.__all__)
