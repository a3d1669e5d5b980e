"""timestep-ollama: Ollama models, local and Cloud, for Timestep and the OpenAI Agents SDK.

Once installed, ``Agent(model="ollama/llama3.2")`` runs on the local Ollama server and
``Agent(model="ollama/gpt-oss:120b-cloud")`` on Ollama Cloud (with ``OLLAMA_API_KEY``)::

    from agents import Agent
    from timestep import run_agent

    agent = Agent(name="Local", instructions="Be brief.", model="ollama/llama3.2")
    result = await run_agent(agent, "Why is the sky blue?")
"""

from .errors import (
    OllamaCloudKeyMissingError,
    OllamaConnectionError,
    OllamaResponseError,
    OllamaUnsupportedError,
)
from .model import OllamaModel
from .provider import OllamaModelProvider, cloud_model_name

__all__ = [
    "OllamaCloudKeyMissingError",
    "OllamaConnectionError",
    "OllamaModel",
    "OllamaModelProvider",
    "OllamaResponseError",
    "OllamaUnsupportedError",
    "cloud_model_name",
]
