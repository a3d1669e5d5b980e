"""The documentation cannot drift from the code: every example in ``examples/`` runs, every
code block in ``docs/`` marked runnable runs, and the site builds with ``mkdocs build --strict``.

A runnable block is a fenced ``python`` block directly preceded by a ``<!-- runnable -->`` line;
it must be self-contained and offline. Each runs as its own Python process.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from js_steps import require_js_harness
from subprocesses import run_python

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DOCS = ROOT / "docs"
RUNNABLE = re.compile(r"^<!-- runnable -->\n```python\n(.*?)^```", re.M | re.S)

# What each example must print (every line, in this order, each as a substring of a line).
EXPECTED: dict[str, list[str]] = {
    "personal_assistant.py": [
        "OPENAI_API_KEY is not set",
        "blocked by input guardrail: polite",
        'paused: get_weather({"city":"Berkeley"}) needs approval',
        "status interrupted, version 1",
        'approving: get_weather({"city":"Berkeley"})',
        "output guardrails passed: no_secrets",
        "answered by: Weather",
        "final output: It is sunny, 21C in Berkeley.",
        "saved: status completed, version 3",
    ],
    "durable_workflows.py": [
        "run order-7: Answer: Where is order 7?",
        "run order-7 again (same run, not re-run): Answer: Where is order 7?",
        "Answer: Ticket 3",
        "Answer: Ticket 1",
        "Answer: Ticket 2",
        "schedule digest fired; deleted it",
        'pending approval: refund({"order":"9"}) [call-refund-9]',
        "approved: call-refund-9",
        "run refund-9: Done: refunded order 9.",
        "finished in",
    ],
    "cross_language.py": [
        'python paused: get_weather({"city":"Berkeley"}) needs approval',
        "saved row: sdk=python schema=1.21; portable_state for sdk=js schema=1.22",
        "portable_state $schemaVersion: 1.22",
        "portable_state currentAgent: Weather",
        "typescript approved: ['get_weather']",
        "typescript ran get_weather for: ['Berkeley']",
        "typescript final output: It is sunny in Berkeley.",
        "python imported the JS state: sdk=js, status=completed",
        "python loaded it back: 0 approvals pending",
    ],
    "custom_provider.py": [
        "before registering: UnknownModelPrefixError",
        "registered plugin example-mine; plugin prefixes:",
        "final output: [echo] Hello from a plugin!",
    ],
}


def assert_lines_in_order(output: str, expected: list[str]) -> None:
    """Each expected text appears in a line of ``output``, in the given order."""
    lines = output.splitlines()
    position = 0
    for text in expected:
        found = next((i for i in range(position, len(lines)) if text in lines[i]), None)
        assert found is not None, f"{text!r} not found (in order) in:\n{output}"
        position = found + 1


def runnable_blocks() -> list[tuple[str, str]]:
    """``(id, code)`` of every runnable block in docs/."""
    blocks = []
    for page in sorted(DOCS.rglob("*.md")):
        for index, match in enumerate(RUNNABLE.finditer(page.read_text(encoding="utf-8"))):
            blocks.append((f"{page.relative_to(DOCS)}#{index}", match.group(1)))
    return blocks


def test_every_example_has_expectations() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs_offline(name: str, timestep_home: Path) -> None:
    if name == "cross_language.py":
        require_js_harness()  # without it the example only prints the portable state
    done = run_python(str(EXAMPLES / name), home=timestep_home, timeout=120)
    assert_lines_in_order(done.stdout, EXPECTED[name])


def test_the_personal_assistant_resumes_an_approved_run_in_postgres(
    postgres_url: str, timestep_home: Path
) -> None:
    """Getting started's promise: a paused run saved, approved and resumed in PostgreSQL."""
    script = str(EXAMPLES / "personal_assistant.py")
    done = run_python(script, "--url", postgres_url, home=timestep_home, timeout=120)
    assert_lines_in_order(done.stdout, EXPECTED["personal_assistant.py"])
    assert "database: postgresql+asyncpg://" in done.stdout


def test_the_docs_have_the_runnable_blocks_they_promise() -> None:
    pages = {block_id.split("#")[0] for block_id, _ in runnable_blocks()}
    assert {"getting-started.md", "how-to/plugins.md", "how-to/approvals-web-app.md"} <= pages


@pytest.mark.parametrize(("block_id", "code"), runnable_blocks(), ids=lambda v: str(v)[:40])
def test_runnable_doc_block(block_id: str, code: str, tmp_path: Path, timestep_home: Path) -> None:
    safe_id = re.sub(r"\W", "_", block_id)
    script = tmp_path / f"doc_block_{safe_id}.py"
    script.write_text(code, encoding="utf-8")
    done = run_python(str(script), home=timestep_home, timeout=120)
    if block_id.startswith("getting-started.md"):
        assert_lines_in_order(
            done.stdout,
            ["saved: interrupted", "final output: Deleted /tmp/x.", "saved: completed"],
        )
    if block_id.startswith("how-to/plugins.md"):
        assert re.search(r"\b1[79] passed\b", done.stdout), done.stdout  # 19 with PostgreSQL


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    missing = [
        name
        for name in ("mkdocs", "material", "mkdocstrings")
        if not importlib.util.find_spec(name)
    ]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not installed: pip install -e '.[docs]' to build the docs site."
        )
    site = tmp_path / "site"
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml")]
    done = subprocess.run(
        [*command, "-d", str(site)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    reference = (site / "reference" / "timestep" / "index.html").read_text(encoding="utf-8")
    assert 'id="timestep.RunStateStore"' in reference and 'id="timestep.run_agent"' in reference
