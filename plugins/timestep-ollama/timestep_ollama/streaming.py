"""Ollama's streamed chat chunks as the SDK's Responses stream events.

Ollama streams NDJSON chunks whose ``message`` carries a piece of ``thinking``, a piece of
``content``, or whole ``tool_calls`` (arguments arrive as one JSON object, never as string
fragments), and a last chunk with ``done: true``, ``done_reason`` and the token counts. A
reply's tool calls may arrive over several chunks, before or after text. The events follow
the Responses API's order per item:

- ``response.created``, ``response.in_progress``
- thinking: ``output_item.added`` (reasoning), ``reasoning_text.delta``..., then
  ``reasoning_text.done`` and ``output_item.done`` once the model moves on
- text: ``output_item.added`` (message), ``content_part.added``, ``output_text.delta``...,
  closed at the end by ``output_text.done``, ``content_part.done``, ``output_item.done``
- each tool call, as soon as it arrives: ``output_item.added`` (empty arguments),
  ``function_call_arguments.delta``, ``function_call_arguments.done``, ``output_item.done``
- ``response.completed`` with every item in output order and the usage.
"""

from __future__ import annotations

import time
from typing import Any

import ollama
from agents import ModelBehaviorError
from agents.items import TResponseOutputItem, TResponseStreamEvent
from agents.models.fake_id import FAKE_RESPONSES_ID
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseCreatedEvent,
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseFunctionToolCall,
    ResponseInProgressEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseReasoningItem,
    ResponseReasoningTextDeltaEvent,
    ResponseReasoningTextDoneEvent,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
)
from openai.types.responses.response_reasoning_item import Content

from .outputs import (
    check_not_truncated,
    function_call_item,
    message_item,
    reasoning_item,
    response_usage,
)

__all__ = ["StreamTranslator"]


class StreamTranslator:
    """Turns one streamed Ollama reply into Responses stream events, chunk by chunk.

    Example::

        translator = StreamTranslator("llama3")
        events = translator.start()
        async for chunk in await client.chat(..., stream=True):
            events += translator.feed(chunk)
        events += translator.finish()
    """

    def __init__(self, model: str) -> None:
        self.model = model
        self._sequence = 0
        # Output indexes follow the order items open in, as in the Responses API.
        self._next_index = 0
        self._output: dict[int, TResponseOutputItem] = {}
        self._reasoning: tuple[int, ResponseReasoningItem] | None = None
        self._message: tuple[int, ResponseOutputMessage] | None = None
        self._text = ""
        self._final: ollama.ChatResponse | None = None
        self._response = Response(
            id=FAKE_RESPONSES_ID,
            created_at=time.time(),
            model=model,
            object="response",
            output=[],
            tool_choice="auto",
            tools=[],
            parallel_tool_calls=False,
            status="in_progress",
        )

    @property
    def final_chunk(self) -> ollama.ChatResponse | None:
        """The ``done`` chunk with the token counts, once it has arrived."""
        return self._final

    def start(self) -> list[TResponseStreamEvent]:
        """The events that open the response."""
        return [
            ResponseCreatedEvent(
                type="response.created",
                response=self._response.model_copy(),
                sequence_number=self._next(),
            ),
            ResponseInProgressEvent(
                type="response.in_progress",
                response=self._response.model_copy(),
                sequence_number=self._next(),
            ),
        ]

    def feed(self, chunk: ollama.ChatResponse) -> list[TResponseStreamEvent]:
        """The events one chunk adds."""
        events: list[TResponseStreamEvent] = []
        message = chunk.message
        if message.thinking:
            events += self._thinking(message.thinking)
        if message.content:
            events += self._close_reasoning()
            events += self._content(message.content)
        for call in message.tool_calls or []:
            events += self._close_reasoning()
            events += self._tool_call(call)
        if chunk.done:
            self._final = chunk
        return events

    def finish(self) -> list[TResponseStreamEvent]:
        """Close every open item and complete the response.

        Raises ``ModelBehaviorError`` when the stream ended without its ``done`` chunk, or was
        cut off by the token limit before producing anything.
        """
        if self._final is None:
            raise ModelBehaviorError(
                f"The Ollama stream for model {self.model!r} ended before its final chunk "
                "(done: true); the server or the connection dropped it. Retry the run."
            )
        produced = self._message is not None or any(
            isinstance(item, ResponseFunctionToolCall) for item in self._output.values()
        )
        check_not_truncated(self._final, self.model, produced=produced)
        events = self._close_reasoning()
        if not produced:
            # Like the non-streamed path: a reply with no tool call always ends in a message.
            events += self._open_message()
        events += self._close_message()
        completed = self._response.model_copy(
            update={
                "output": [self._output[index] for index in sorted(self._output)],
                "status": "completed",
                "usage": response_usage(self._final),
            }
        )
        events.append(
            ResponseCompletedEvent(
                type="response.completed", response=completed, sequence_number=self._next()
            )
        )
        return events

    def _thinking(self, delta: str) -> list[TResponseStreamEvent]:
        events: list[TResponseStreamEvent] = []
        if self._reasoning is None:
            index = self._claim_index()
            item = reasoning_item("", self.model)
            self._reasoning = (index, item)
            events.append(self._added(index, item.model_copy(update={"content": []})))
        index, item = self._reasoning
        assert item.content is not None
        item.content[0] = Content(text=item.content[0].text + delta, type="reasoning_text")
        events.append(
            ResponseReasoningTextDeltaEvent(
                type="response.reasoning_text.delta",
                item_id=item.id,
                output_index=index,
                content_index=0,
                delta=delta,
                sequence_number=self._next(),
            )
        )
        return events

    def _close_reasoning(self) -> list[TResponseStreamEvent]:
        if self._reasoning is None:
            return []
        index, item = self._reasoning
        self._reasoning = None
        self._output[index] = item
        assert item.content is not None
        return [
            ResponseReasoningTextDoneEvent(
                type="response.reasoning_text.done",
                item_id=item.id,
                output_index=index,
                content_index=0,
                text=item.content[0].text,
                sequence_number=self._next(),
            ),
            self._done(index, item),
        ]

    def _content(self, delta: str) -> list[TResponseStreamEvent]:
        events = self._open_message() if self._message is None else []
        assert self._message is not None
        index, item = self._message
        self._text += delta
        events.append(
            ResponseTextDeltaEvent(
                type="response.output_text.delta",
                item_id=item.id,
                output_index=index,
                content_index=0,
                delta=delta,
                logprobs=[],
                sequence_number=self._next(),
            )
        )
        return events

    def _open_message(self) -> list[TResponseStreamEvent]:
        index = self._claim_index()
        item = message_item("")
        self._message = (index, item)
        empty_part = ResponseOutputText(text="", type="output_text", annotations=[], logprobs=[])
        return [
            self._added(index, item.model_copy(update={"content": [], "status": "in_progress"})),
            ResponseContentPartAddedEvent(
                type="response.content_part.added",
                item_id=item.id,
                output_index=index,
                content_index=0,
                part=empty_part,
                sequence_number=self._next(),
            ),
        ]

    def _close_message(self) -> list[TResponseStreamEvent]:
        if self._message is None:
            return []
        index, _ = self._message
        item = message_item(self._text)
        self._output[index] = item
        return [
            ResponseTextDoneEvent(
                type="response.output_text.done",
                item_id=item.id,
                output_index=index,
                content_index=0,
                text=self._text,
                logprobs=[],
                sequence_number=self._next(),
            ),
            ResponseContentPartDoneEvent(
                type="response.content_part.done",
                item_id=item.id,
                output_index=index,
                content_index=0,
                part=item.content[0],
                sequence_number=self._next(),
            ),
            self._done(index, item),
        ]

    def _tool_call(self, call: ollama.Message.ToolCall) -> list[TResponseStreamEvent]:
        index = self._claim_index()
        item = function_call_item(call.function.name, call.function.arguments)
        self._output[index] = item
        return [
            self._added(index, item.model_copy(update={"arguments": "", "status": "in_progress"})),
            ResponseFunctionCallArgumentsDeltaEvent(
                type="response.function_call_arguments.delta",
                item_id=FAKE_RESPONSES_ID,
                output_index=index,
                delta=item.arguments,
                sequence_number=self._next(),
            ),
            # ``name`` is not a declared field in every openai release; the SDK sends it too.
            ResponseFunctionCallArgumentsDoneEvent.model_validate(
                {
                    "type": "response.function_call_arguments.done",
                    "item_id": FAKE_RESPONSES_ID,
                    "output_index": index,
                    "arguments": item.arguments,
                    "name": item.name,
                    "sequence_number": self._next(),
                }
            ),
            self._done(index, item),
        ]

    def _added(self, index: int, item: Any) -> ResponseOutputItemAddedEvent:
        return ResponseOutputItemAddedEvent(
            type="response.output_item.added",
            item=item,
            output_index=index,
            sequence_number=self._next(),
        )

    def _done(self, index: int, item: Any) -> ResponseOutputItemDoneEvent:
        return ResponseOutputItemDoneEvent(
            type="response.output_item.done",
            item=item,
            output_index=index,
            sequence_number=self._next(),
        )

    def _claim_index(self) -> int:
        index = self._next_index
        self._next_index += 1
        return index

    def _next(self) -> int:
        number = self._sequence
        self._sequence += 1
        return number
