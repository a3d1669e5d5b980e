"""Pause in Python, finish in TypeScript: the ``portable_state`` every saved run carries.

Python runs the personal assistant (the graph of ``tests/js/personal-assistant.mjs``: an
``Assistant`` with guardrails hands off to ``Weather``, whose ``get_weather`` needs approval for
Berkeley) until it pauses, and saves it with ``RunStateStore``. The saved row keeps the Python
state and its translation for the JS Agents SDK (``portable_state``), which this script prints.

When Node.js and the JS harness are installed (``npm ci --prefix tests/js``), a Node process
then reads that text with ``RunState.fromString``, approves, runs the tool and finishes the run
(``node tests/js/step.mjs resume --file ...``); Python imports the JS result back into the same
row and reads it. Without Node it says so and stops after printing the portable state. Run it::

    python examples/cross_language.py [--url postgresql://...]

Both sides use scripted models (the JS harness is scripted), so this runs offline with or
without ``OPENAI_API_KEY``; docs/cross-language.md shows a TypeScript program on the table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

from agents import (
    Agent,
    GuardrailFunctionOutput,
    RunContextWrapper,
    function_tool,
    input_guardrail,
    output_guardrail,
)
from agents.testing import ScriptedModel, function_call

from timestep import RunStateStore, aclose, run_agent
from timestep.state_transfer import import_state

JS_DIR = Path(__file__).resolve().parent.parent / "tests" / "js"
QUESTION = "What's the weather in Berkeley?"


def personal_assistant(assistant_replies: list[Any], weather_replies: list[Any]) -> Agent[Any]:
    """The same agent graph as tests/js/personal-assistant.mjs: same names, same handoff."""

    async def berkeley_needs_approval(
        _context: RunContextWrapper[Any], params: dict[str, Any], _call_id: str
    ) -> bool:
        return bool(params.get("city") == "Berkeley")

    @function_tool(needs_approval=berkeley_needs_approval)
    def get_weather(city: str) -> str:
        """The weather for a city."""
        return f"Sunny, 21C in {city}"

    @input_guardrail
    def polite(_context: RunContextWrapper[Any], _agent: Agent[Any], text: Any) -> Any:
        return GuardrailFunctionOutput(
            output_info={"checked": "input"}, tripwire_triggered="stupid" in str(text)
        )

    @output_guardrail
    def no_secrets(_context: RunContextWrapper[Any], _agent: Agent[Any], output: Any) -> Any:
        return GuardrailFunctionOutput(
            output_info={"checked": "output"}, tripwire_triggered="password" in str(output)
        )

    weather = Agent(
        name="Weather",
        instructions="Answer weather questions with get_weather.",
        model=ScriptedModel(weather_replies),
        tools=[get_weather],
        output_guardrails=[no_secrets],
    )
    return Agent(
        name="Assistant",
        instructions="Help the user; hand weather questions to the weather agent.",
        model=ScriptedModel(assistant_replies),
        handoffs=[weather],  # Python names it transfer_to_weather; the JS graph overrides to match
        input_guardrails=[polite],
        output_guardrails=[no_secrets],
    )


def node_harness() -> str | None:
    """The ``node`` executable when the JS harness in tests/js is installed, else ``None``."""
    node = shutil.which("node")
    if node and (JS_DIR / "node_modules" / "@openai" / "agents").is_dir():
        return node
    return None


def resume_in_node(node: str, portable_state: str, workdir: Path) -> tuple[dict[str, Any], str]:
    """Approve and finish the run in a Node process; its report and its ``toString()``."""
    state_file, out_file = workdir / "from-python.json", workdir / "from-js.json"
    state_file.write_text(portable_state, encoding="utf-8")
    replies = {"Weather": [[{"say": "It is sunny in Berkeley."}]]}
    command = [node, "step.mjs", "resume", "--file", str(state_file), "--out", str(out_file)]
    command += ["--replies", json.dumps(replies), "--decision", "approve"]
    done = subprocess.run(
        command,
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise SystemExit(f"node step.mjs failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return json.loads(lines[-1]), out_file.read_text(encoding="utf-8")


async def main(url: str | None) -> None:
    """Pause and save in Python; finish in Node when it is available; read it back."""
    session_id = f"trip-{uuid.uuid4().hex[:8]}"
    assistant = personal_assistant(
        [[function_call("transfer_to_weather", {}, call_id="call-handoff")]],
        [[function_call("get_weather", {"city": "Berkeley"}, call_id="call-berk")]],
    )
    result = await run_agent(assistant, QUESTION)
    for item in result.interruptions:
        print(f"python paused: {item.tool_name}({item.arguments}) needs approval")
    store = RunStateStore(agent=assistant, session_id=session_id, url=url)
    await store.save(result)
    row = await store.info()
    if row is None or row.portable_state is None:
        raise SystemExit(f"no portable state was stored: {row and row.portable_error}")
    portable = json.loads(row.portable_state)
    print(
        f"saved row: sdk={row.sdk} schema={row.schema_version}; "
        f"portable_state for sdk={row.portable_sdk} schema={row.portable_schema_version}"
    )
    print(f"portable_state $schemaVersion: {portable['$schemaVersion']}")
    print(f"portable_state currentAgent: {portable['currentAgent']['name']}")
    print(f"portable_state (first 200 characters): {row.portable_state[:200]}...")

    node = node_harness()
    if node is None:
        print(
            "Node.js or the JS harness is missing: run `npm ci --prefix tests/js` (Node 20+) "
            "to resume this state in TypeScript."
        )
        return
    with tempfile.TemporaryDirectory(prefix="timestep-xlang-") as tmp:
        report, js_state = resume_in_node(node, row.portable_state, Path(tmp))
    print(f"typescript approved: {[p['tool'] for p in report['pending']]}")
    print(f"typescript ran get_weather for: {report['tool_calls']}")
    print(f"typescript final output: {report['final_output']}")

    stored = await import_state(
        store.backend, js_state, agent_name="Assistant", session_id=session_id, overwrite=True
    )
    print(f"python imported the JS state: sdk={stored.sdk}, status={stored.status.value}")
    state = await RunStateStore(
        agent=personal_assistant([], []), session_id=session_id, url=url
    ).load()
    print(f"python loaded it back: {len(state.get_interruptions())} approvals pending")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="database URL (default: TIMESTEP_DB_URL or embedded SQLite)")
    args = parser.parse_args()

    async def run() -> None:
        try:
            await main(args.url)
        finally:
            await aclose()

    asyncio.run(run())
