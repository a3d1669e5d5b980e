"""A model provider plugin registered at run time: ``Agent(model="mine/echo")``.

A plugin is any object with ``@timestep.hookimpl`` functions. Installed packages expose theirs
through the ``timestep`` entry-point group; here one is registered in the running process with
``timestep.plugins.register``, which is what tests and notebooks do. Its provider serves every
``mine/...`` model name with a tiny offline model that echoes the user's last message, so this
example never needs a key or a network. Run it::

    python examples/custom_provider.py

With ``OPENAI_API_KEY`` set a second agent also answers through a bare model name, which routing
sends to OpenAI as usual: one process, two providers, picked by prefix.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

from agents import Agent, Model, ModelProvider, ModelResponse, Usage
from agents.testing import assistant_message

import timestep
from timestep import UnknownModelPrefixError, plugins, run_agent


class EchoModel(Model):
    """Answers with the text of the last user message, prefixed with the model's name."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        """One reply; the SDK passes the input as the second argument (or ``input=``)."""
        items = args[1] if len(args) > 1 else kwargs["input"]
        text = items if isinstance(items, str) else str(items[-1].get("content", ""))
        return ModelResponse(
            output=[assistant_message(f"[{self.name}] {text}")],
            usage=Usage(requests=1, input_tokens=len(text), output_tokens=len(text)),
            response_id=None,
        )

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        """Streaming is not needed by this example."""
        raise NotImplementedError("EchoModel does not stream")


class EchoProvider(ModelProvider):
    """Builds an :class:`EchoModel` for the rest of a ``mine/...`` name."""

    def get_model(self, model_name: str | None) -> Model:
        """``mine/echo`` arrives here as ``echo``."""
        return EchoModel(model_name or "default")


class MinePlugin:
    """The plugin: registers :class:`EchoProvider` under the ``mine`` prefix."""

    @timestep.hookimpl
    def register_model_providers(self, register: Callable[[str, Any], None]) -> None:
        """Called once when Timestep collects model providers."""
        register("mine", EchoProvider)


async def main() -> None:
    """Show that an unknown prefix is refused, then register the plugin and use it."""
    try:
        await run_agent(Agent(name="Before", model="mine/echo"), "hello")
    except UnknownModelPrefixError as error:
        print(f"before registering: UnknownModelPrefixError ({error})")

    name = plugins.register(MinePlugin(), name="example-mine")
    prefixes = ", ".join(sorted(plugins.model_provider_factories()))
    print(f"registered plugin {name}; plugin prefixes: {prefixes}")
    try:
        agent = Agent(name="Echo", instructions="Repeat the user.", model="mine/echo")
        result = await run_agent(agent, "Hello from a plugin!")
        print(f"final output: {result.final_output}")
        if os.environ.get("OPENAI_API_KEY"):
            real = Agent(name="Real", instructions="Answer in five words.", model="gpt-4.1-mini")
            print(f"OpenAI says: {(await run_agent(real, 'Say hi.')).final_output}")
    finally:
        plugins.unregister(name)


if __name__ == "__main__":
    asyncio.run(main())
