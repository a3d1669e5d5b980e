"""``OllamaModel``: an ``agents.Model`` that talks to Ollama's native ``/api/chat``.

Usually built by :class:`~timestep_ollama.OllamaModelProvider` for ``Agent(model="ollama/...")``;
it can also be given to an agent directly::

    agent = Agent(name="Local", model=OllamaModel("llama3.2"))

How the SDK's request maps onto Ollama's:

==============================  ==================================================
SDK                             Ollama ``/api/chat``
==============================  ==================================================
instructions, input items       ``messages`` (system, user + ``images``, assistant
                                with ``thinking`` / ``tool_calls``, ``tool``)
function tools, handoffs        ``tools``
``output_type``                 ``format`` (the output's JSON schema)
temperature, top_p,             ``options.temperature``, ``options.top_p``,
frequency / presence_penalty    ``options.frequency_penalty`` / ``presence_penalty``
max_tokens                      ``options.num_predict``
reasoning.effort                ``think`` (``none`` -> false, else low/medium/high)
tool_choice                     ``"none"`` sends no tools, a tool name sends only
                                that tool; ``"required"`` is refused
extra_args / extra_body         ``keep_alive``, ``think``, ``format``, ``options``,
                                or any Ollama option: ``seed``, ``stop``,
                                ``num_ctx``, ``top_k``, ...
==============================  ==================================================

Settings only OpenAI's service understands (``store``, ``metadata``, ``truncation``,
``parallel_tool_calls``, prompt caching, ``extra_headers`` ...) are ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from weakref import WeakKeyDictionary

import httpx
import ollama
from agents import (
    AgentOutputSchemaBase,
    Handoff,
    Model,
    ModelResponse,
    ModelSettings,
    ModelTracing,
    Tool,
    generation_span,
)
from agents.items import TResponseInputItem, TResponseStreamEvent
from agents.model_settings import MCPToolChoice

from .errors import OllamaConnectionError, OllamaResponseError, OllamaUnsupportedError
from .messages import ollama_messages
from .outputs import output_items, raw_usage, usage
from .streaming import StreamTranslator
from .tools import ollama_tools

if TYPE_CHECKING:
    from openai.types.responses.response_prompt_param import ResponsePromptParam

__all__ = [
    "DEFAULT_HOST",
    "ClientFactory",
    "OllamaModel",
    "OllamaRequest",
    "build_request",
    "open_client",
]

DEFAULT_HOST = "http://localhost:11434"
"""Where a local Ollama server listens unless ``OLLAMA_HOST`` says otherwise."""

ClientFactory = Callable[[], ollama.AsyncClient]
"""Returns the ``ollama.AsyncClient`` to use for a request made on the running event loop."""

_CHAT_FIELDS = ("format", "keep_alive", "options", "think")
_OPTION_NAMES = frozenset(ollama.Options.model_fields)


@dataclass
class OllamaRequest:
    """Everything one ``AsyncClient.chat`` call sends, built from the SDK's arguments."""

    model: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = field(default_factory=list)
    format: str | dict[str, Any] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    think: bool | str | None = None
    keep_alive: float | str | None = None

    def chat_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``ollama.AsyncClient.chat`` (without ``stream``)."""
        return {
            "model": self.model,
            "messages": self.messages,
            "tools": self.tools or None,
            "format": self.format,
            "options": self.options or None,
            "think": self.think,
            "keep_alive": self.keep_alive,
        }


def build_request(
    model: str,
    system_instructions: str | None,
    input: str | list[TResponseInputItem],
    model_settings: ModelSettings,
    tools: Sequence[Tool],
    output_schema: AgentOutputSchemaBase | None,
    handoffs: Sequence[Handoff[Any, Any]],
) -> OllamaRequest:
    """Translate one SDK model call into an Ollama chat request.

    Raises :class:`~timestep_ollama.OllamaUnsupportedError` for what Ollama cannot do.
    """
    request = OllamaRequest(
        model=model,
        messages=ollama_messages(system_instructions, input),
        tools=_chosen_tools(model_settings.tool_choice, tools, handoffs),
        format=(
            output_schema.json_schema()
            if output_schema is not None and not output_schema.is_plain_text()
            else None
        ),
        options=_options(model_settings),
        think=_think(model_settings),
    )
    for source, extra in (
        ("extra_body", model_settings.extra_body),
        ("extra_args", model_settings.extra_args),
    ):
        if isinstance(extra, Mapping):
            _apply_extra(request, source, extra, has_output_type=output_schema is not None)
    return request


class OllamaModel(Model):
    """An ``agents.Model`` served by an Ollama server through the ``ollama`` client.

    Args:
        model: The model name exactly as the server knows it (``llama3.2``,
            ``hf.co/org/repo:Q4_K_M``, ``gpt-oss:120b`` on Ollama Cloud).
        ollama_client: An ``ollama.AsyncClient`` to use as is, or a factory returning the
            client for the running event loop. Without one the model opens its own client
            per event loop to ``base_url`` (closed by :meth:`close`).
        base_url: The server, used when this model opens its own client and in error
            messages. Defaults to ``OLLAMA_HOST``, else ``http://localhost:11434``.
        api_key: Sent as a bearer token by a client this model opens (Ollama Cloud).
    """

    def __init__(
        self,
        model: str,
        ollama_client: ollama.AsyncClient | ClientFactory | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
    ) -> None:
        if not model:
            raise OllamaUnsupportedError(
                "OllamaModel needs a model name, for example OllamaModel('llama3.2')."
            )
        self.model = model
        self.base_url = base_url or os.environ.get("OLLAMA_HOST") or DEFAULT_HOST
        self._client_source = ollama_client
        self._api_key = api_key
        self._own_clients: WeakKeyDictionary[asyncio.AbstractEventLoop, ollama.AsyncClient] = (
            WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        return f"OllamaModel({self.model!r}, base_url={self.base_url!r})"

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
        prompt: ResponsePromptParam | None = None,
    ) -> ModelResponse:
        """Send one chat request and return the reply as output items with token usage."""
        _refuse_server_state(previous_response_id, conversation_id, prompt)
        request = build_request(
            self.model, system_instructions, input, model_settings, tools, output_schema, handoffs
        )
        with self._span(request, model_settings, tracing) as span, self._translate_errors():
            response = await self._client().chat(**request.chat_kwargs(), stream=False)
            items = output_items(response, self.model)
            used = usage(response)
            if tracing.include_data():
                span.span_data.output = [item.model_dump() for item in items]
            span.span_data.usage = {
                "requests": 1,
                "input_tokens": used.input_tokens,
                "output_tokens": used.output_tokens,
                "total_tokens": used.total_tokens,
            }
            return ModelResponse(
                output=items,
                usage=used,
                response_id=None,
                raw_usage=raw_usage(response) if model_settings.preserve_raw_usage else None,
            )

    async def stream_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
        prompt: ResponsePromptParam | None = None,
    ) -> AsyncIterator[TResponseStreamEvent]:
        """Stream one chat request as Responses stream events ending in ``response.completed``."""
        _refuse_server_state(previous_response_id, conversation_id, prompt)
        request = build_request(
            self.model, system_instructions, input, model_settings, tools, output_schema, handoffs
        )
        translator = StreamTranslator(self.model)
        with self._span(request, model_settings, tracing) as span, self._translate_errors():
            chunks = await self._client().chat(**request.chat_kwargs(), stream=True)
            try:
                # The response opens with the first chunk, not before: until then a failure
                # (no server, unknown model) leaves nothing half-streamed, so a retry is clean.
                opening = translator.start()
                async for chunk in chunks:
                    for event in [*opening, *translator.feed(chunk)]:
                        yield event
                    opening = []
                for event in [*opening, *translator.finish()]:
                    if event.type == "response.completed":
                        completed = event.response
                        if model_settings.preserve_raw_usage and completed.usage is not None:
                            _attach_raw_usage(completed, raw_usage(translator.final_chunk))
                        if tracing.include_data():
                            span.span_data.output = [completed.model_dump()]
                        if completed.usage is not None:
                            span.span_data.usage = {
                                "requests": 1,
                                "input_tokens": completed.usage.input_tokens,
                                "output_tokens": completed.usage.output_tokens,
                                "total_tokens": completed.usage.total_tokens,
                            }
                    yield event
            finally:
                # Frees the HTTP connection when the consumer stops early. The client declares
                # an AsyncIterator but returns an async generator, which has aclose().
                await chunks.aclose()  # type: ignore[attr-defined]

    async def close(self) -> None:
        """Close the clients this model opened itself (never one it was given)."""
        clients = list(self._own_clients.items())
        self._own_clients.clear()
        running = asyncio.get_running_loop()
        for loop, client in clients:
            # A client belongs to the loop it was opened on; one of a finished loop is gone.
            if loop is running:
                await client.close()  # type: ignore[no-untyped-call]  # ollama leaves it bare

    def _client(self) -> ollama.AsyncClient:
        source = self._client_source
        if isinstance(source, ollama.AsyncClient):
            return source
        if source is not None:
            return source()
        loop = asyncio.get_running_loop()
        client = self._own_clients.get(loop)
        if client is None:
            client = open_client(self.base_url, self._api_key)
            self._own_clients[loop] = client
        return client

    @contextlib.contextmanager
    def _span(
        self, request: OllamaRequest, model_settings: ModelSettings, tracing: ModelTracing
    ) -> Iterator[Any]:
        config = {
            **model_settings.to_traceable_dict(),
            "base_url": _without_credentials(self.base_url),
        }
        with generation_span(
            model=self.model, model_config=config, disabled=tracing.is_disabled()
        ) as span:
            if tracing.include_data():
                span.span_data.input = _traceable_messages(request.messages)
            yield span

    @contextlib.contextmanager
    def _translate_errors(self) -> Iterator[None]:
        try:
            yield
        except ollama.ResponseError as error:
            if isinstance(error, OllamaResponseError):
                raise
            raise OllamaResponseError(
                self._response_message(error),
                status_code=error.status_code,
                model=self.model,
                base_url=self.base_url,
            ) from error
        except (ConnectionError, httpx.TransportError) as error:
            if isinstance(error, OllamaConnectionError):
                raise
            raise OllamaConnectionError(
                f"Could not reach Ollama at {self.base_url} for model {self.model!r} "
                f"({type(error).__name__}: {error}). Start the server (`ollama serve`), or "
                "point OLLAMA_HOST / OllamaModelProvider(base_url=...) at the one to use.",
                model=self.model,
                base_url=self.base_url,
            ) from error

    def _response_message(self, error: ollama.ResponseError) -> str:
        status = error.status_code
        if status == -1:
            # The ollama client reports an {"error": ...} line inside a stream without a status.
            return (
                f"Ollama at {self.base_url} failed while generating with model "
                f"{self.model!r}: {error.error}. See the server's log; retrying may help."
            )
        if status == 404:
            hint = (
                f"Check the name (`ollama list`, or GET {self.base_url}/api/tags) and pull a "
                f"local model first with `ollama pull {self.model}`."
            )
        elif status in (401, 403):
            hint = (
                "The server refused the credentials: check OLLAMA_API_KEY (keys are created at "
                "https://ollama.com/settings/keys)."
            )
        elif status == 429:
            hint = "The server is rate limiting; wait, or set ModelSettings(retry=...)."
        else:
            hint = "See the server's log for details."
        return (
            f"Ollama at {self.base_url} rejected the request for model {self.model!r}: "
            f"{error.error} (HTTP {status}). {hint}"
        )


def open_client(base_url: str, api_key: str | None) -> ollama.AsyncClient:
    """An ``ollama.AsyncClient`` for ``base_url``, with ``api_key`` as its only credential.

    The ``ollama`` library adds ``OLLAMA_API_KEY`` to every client it builds; a client meant
    for a local or self-hosted server drops it again, so the Cloud key never leaves for a
    server that is not Ollama Cloud.
    """
    if api_key:
        return ollama.AsyncClient(host=base_url, headers={"Authorization": f"Bearer {api_key}"})
    return ollama.AsyncClient(host=base_url, event_hooks={"request": [_drop_authorization]})


async def _drop_authorization(request: httpx.Request) -> None:
    request.headers.pop("authorization", None)


def _chosen_tools(
    tool_choice: Literal["auto", "required", "none"] | str | MCPToolChoice | None,
    tools: Sequence[Tool],
    handoffs: Sequence[Handoff[Any, Any]],
) -> list[dict[str, Any]]:
    converted = ollama_tools(tools, handoffs)
    if tool_choice in (None, "auto"):
        return converted
    if tool_choice == "none":
        return []
    if tool_choice == "required" or isinstance(tool_choice, MCPToolChoice):
        raise OllamaUnsupportedError(
            f"ModelSettings(tool_choice={tool_choice!r}) cannot be honoured: Ollama has no way "
            "to force a tool call. Use tool_choice='auto' (the default), 'none', or the name "
            "of one tool to offer only that tool."
        )
    chosen = [tool for tool in converted if tool["function"]["name"] == tool_choice]
    if not chosen:
        names = ", ".join(sorted(tool["function"]["name"] for tool in converted)) or "none"
        raise OllamaUnsupportedError(
            f"ModelSettings(tool_choice={tool_choice!r}) names no tool of this agent "
            f"(its tools: {names}). Use one of those names, 'auto' or 'none'."
        )
    # Ollama cannot force the call either, but offering only this tool is the closest match.
    return chosen


def _options(settings: ModelSettings) -> dict[str, Any]:
    mapped = {
        "temperature": settings.temperature,
        "top_p": settings.top_p,
        "frequency_penalty": settings.frequency_penalty,
        "presence_penalty": settings.presence_penalty,
        "num_predict": settings.max_tokens,
    }
    return {name: value for name, value in mapped.items() if value is not None}


def _think(settings: ModelSettings) -> bool | str | None:
    effort = settings.reasoning.effort if settings.reasoning is not None else None
    if effort is None:
        return None
    if effort == "none":
        return False
    # Ollama's levels are low / medium / high; the SDK's finer ones map to the nearest.
    return {"minimal": "low", "xhigh": "high", "max": "high"}.get(effort, effort)


def _apply_extra(
    request: OllamaRequest, source: str, extra: Mapping[str, Any], *, has_output_type: bool
) -> None:
    for key, value in extra.items():
        if key == "options" and isinstance(value, Mapping):
            request.options.update(value)
        elif key == "format":
            if has_output_type:
                raise OllamaUnsupportedError(
                    f"ModelSettings.{source} sets 'format' while the agent has an output_type, "
                    "which already sets Ollama's format to its JSON schema. Remove one."
                )
            request.format = value
        elif key == "think":
            request.think = value
        elif key == "keep_alive":
            request.keep_alive = value
        elif key in _OPTION_NAMES:
            request.options[key] = value
        else:
            raise OllamaUnsupportedError(
                f"ModelSettings.{source} key {key!r} is neither an Ollama chat field "
                f"({', '.join(_CHAT_FIELDS)}) nor an Ollama option "
                f"({', '.join(sorted(_OPTION_NAMES))}). Fix the name or remove it."
            )


def _refuse_server_state(
    previous_response_id: str | None,
    conversation_id: str | None,
    prompt: ResponsePromptParam | None,
) -> None:
    if previous_response_id or conversation_id:
        raise OllamaUnsupportedError(
            "previous_response_id / conversation_id ask the server to remember the "
            "conversation, which Ollama does not do. Pass the history as input (or use a "
            "Session) instead."
        )
    if prompt is not None:
        raise OllamaUnsupportedError(
            "Agent(prompt=...) refers to a prompt stored on OpenAI's platform, which Ollama "
            "cannot load. Put the prompt text in the agent's instructions instead."
        )


def _attach_raw_usage(response: Any, raw: dict[str, Any] | None) -> None:
    # The runner reads a streamed response's raw usage from this attribute of the completed
    # response (the SDK's own Chat Completions adapter attaches it the same way).
    if raw is not None:
        object.__setattr__(response, "_agents_sdk_raw_usage", raw)


def _traceable_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Image bytes are neither JSON nor useful in a trace; keep only how many there were.
    return [
        {**message, "images": f"<{len(message['images'])} image(s)>"}
        if "images" in message
        else message
        for message in messages
    ]


def _without_credentials(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rsplit('@', 1)[-1]}" if sep else url.rsplit("@", 1)[-1]
