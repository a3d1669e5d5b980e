"""run_agent: one call for streamed and non-streamed runs that may pause for approval.

Example::

    result = await run_agent(agent, "clean up /tmp/x")
    if result.interruptions:
        await RunStateStore(agent=agent, session_id="ticket-42").save(result)
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

from agents import Agent, RunConfig, Runner, RunResult, RunResultStreaming, RunState
from agents.memory import Session

from .claims import attach_claim, claim_of
from .config import load_settings
from .errors import InterruptionException
from .observability.install import configure_tracing
from .observability.observer import RunObserver
from .routing import MultiModelProvider
from .storage import close_backends

__all__ = [
    "ResultProcessor",
    "aclose",
    "close_default_model_provider",
    "consume_result",
    "default_model_provider",
    "default_result_processor",
    "run_agent",
]

AnyResult: TypeAlias = RunResult | RunResultStreaming
ResultProcessor: TypeAlias = Callable[[AnyResult], Awaitable[AnyResult]]
"""An async function that receives the run's result and returns it (or a replacement)."""

_provider_lock = threading.Lock()
_provider: MultiModelProvider | None = None


def default_model_provider() -> MultiModelProvider:
    """The process-wide :class:`MultiModelProvider` ``run_agent`` routes models through.

    Built once; each prefix's provider is built the first time a model with it is used.
    """
    global _provider
    with _provider_lock:
        if _provider is None:
            _provider = MultiModelProvider()
        return _provider


async def close_default_model_provider() -> None:
    """Close what the shared provider's models opened on this event loop, and forget it.

    Plugin providers keep an HTTP client per event loop (``OllamaModelProvider``), and the SDK's
    OpenAI models share one process-wide HTTP client whose pooled connections belong to the
    loop that opened them. Call this when no run is in flight, before the loop ends, next to
    :func:`timestep.storage.close_backends`, so those connections close instead of being left
    to the garbage collector. The next run builds a fresh provider. Only providers already
    built are closed: none is built just to be closed.

    Example::

        try:
            await run_agent(agent, "hi")
        finally:
            await close_default_model_provider()
            await close_backends()
    """
    global _provider
    with _provider_lock:
        provider, _provider = _provider, None
    if provider is None:
        return
    built: list[Any] = [provider.openai_provider]
    provider_map = provider.provider_map
    if provider_map is not None:
        # The built ones only: the map's get_mapping() would build every plugin's provider,
        # and a plugin whose factory fails would make shutting down fail.
        built.extend(provider_map._mapping.values())
    for model_provider in {id(p): p for p in built}.values():
        await model_provider.aclose()
    await _release_shared_openai_connections()


async def aclose() -> None:
    """Close every connection Timestep opened on this event loop: model HTTP clients and
    database pools. Call it once, when no run is in flight, before the loop ends.

    Anything used afterwards reconnects, so it is also safe in a web app's shutdown hook.

    Example::

        async def main() -> None:
            try:
                await run_agent(agent, "hi")
            finally:
                await timestep.aclose()
    """
    await close_default_model_provider()
    await close_backends()


async def _release_shared_openai_connections() -> None:
    # The SDK never closes its shared client (other providers may use it), and provides no way
    # to drop its connections. Closing the client's transports empties their pools and leaves
    # them usable: a later request, on any loop, opens a fresh connection.
    from agents.models import openai_provider

    client = getattr(openai_provider, "_http_client", None)
    if client is None:
        return
    transports = [getattr(client, "_transport", None)]
    transports.extend((getattr(client, "_mounts", None) or {}).values())
    for transport in transports:
        close = getattr(transport, "aclose", None)
        if close is not None:
            await close()


def _reset_default_model_provider() -> None:
    """Forget the shared provider (tests that change plugins between runs)."""
    global _provider
    with _provider_lock:
        _provider = None


async def consume_result(result: AnyResult) -> AnyResult:
    """Drive a streamed result to its end so ``interruptions`` and ``final_output`` are set.

    Errors raised during the run surface here, unchanged. Non-streamed results are returned
    as they are.
    """
    if isinstance(result, RunResultStreaming):
        async for _event in result.stream_events():
            pass
    return result


default_result_processor: ResultProcessor = consume_result
"""What ``run_agent`` applies to every result unless given ``result_processor=``."""


async def run_agent(
    agent: Agent[Any],
    input_or_state: str | list[Any] | RunState[Any, Any],
    session: Session | None = None,
    stream: bool = False,
    *,
    result_processor: ResultProcessor = default_result_processor,
    raise_on_interruption: bool = False,
    run_config: RunConfig | None = None,
    **runner_kwargs: Any,
) -> AnyResult:
    """Run ``agent`` on new input or a resumed ``RunState``, streamed or not, alike.

    The result always has ``interruptions`` (tool calls waiting for approval) and, once
    finished, ``final_output``. With ``stream=True`` the result processor receives the
    streaming result; the default one consumes its events.

    Models are routed through :func:`default_model_provider`. Tracing follows
    ``TIMESTEP_TRACING`` (``tracing`` in the config file): ``off`` by default; ``db`` records
    the run's spans, each model call's usage and cost, and approvals in the Timestep database
    (see :mod:`timestep.observability`); ``openai`` / ``all`` use the SDK's exporter. The trace
    is grouped by ``session.session_id``. A ``run_config`` you pass is used exactly as given.
    Other keyword arguments (``context``, ``max_turns``, ``hooks``, ...) go to the SDK's
    ``Runner``.

    A state loaded from a :class:`~timestep.RunStateStore` has its decisions claimed on the
    stored row before anything runs (:mod:`timestep.claims`), so of several processes that
    decided on the same pause only the first goes on.

    Raises:
        InterruptionException: with ``raise_on_interruption=True``, when the run pauses.
        DecisionConflictError: another decider claimed this state's pending calls first;
            nothing of this run executed.
    """
    claim = claim_of(input_or_state)
    if claim is not None:
        await claim(input_or_state)
    # TIMESTEP_TRACING: installs the process's trace processor once, records this run with it.
    tracing = configure_tracing(load_settings())
    if run_config is None:
        run_config = RunConfig(
            model_provider=default_model_provider(),
            **tracing.run_config_options(agent.name, session),
        )
    observer = RunObserver(tracing.records(run_config), run_config, runner_kwargs)
    observer.started(input_or_state)
    result: AnyResult
    if stream:
        result = Runner.run_streamed(
            agent, input_or_state, session=session, run_config=run_config, **runner_kwargs
        )
    else:
        result = await Runner.run(
            agent, input_or_state, session=session, run_config=run_config, **runner_kwargs
        )
    if claim is not None:
        # So the result saves on top of the claim, whichever store object saves it.
        attach_claim(result, claim)
    result = await result_processor(result)
    observer.finished(result)
    if raise_on_interruption and result.interruptions:
        raise InterruptionException(result.to_state(), list(result.interruptions))
    return result
