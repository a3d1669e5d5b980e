"""The SDK's input items (Responses format) as Ollama chat ``messages``.

Ollama has one assistant message per turn carrying its text, ``thinking`` and ``tool_calls``
(arguments as JSON objects), and one ``tool`` message per result, named by ``tool_name``.
The SDK keeps those as separate items (``message``, ``reasoning``, ``function_call``,
``function_call_output``), so items of one turn are folded back into one assistant message.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .errors import OllamaUnsupportedError

__all__ = ["ollama_messages"]

_TEXT_PARTS = frozenset({"input_text", "output_text", "text"})


def ollama_messages(
    system_instructions: str | None, items: str | Sequence[Any]
) -> list[dict[str, Any]]:
    """Ollama chat messages for the agent's instructions and the run's input items.

    Raises :class:`~timestep_ollama.OllamaUnsupportedError` for an item Ollama cannot take
    (a hosted tool's call from another provider, a remote image URL, a file).
    """
    builder = _Builder()
    if system_instructions:
        builder.add({"role": "system", "content": system_instructions})
    if isinstance(items, str):
        builder.add({"role": "user", "content": items})
    else:
        for item in items:
            builder.item(_as_mapping(item))
    return builder.messages


class _Builder:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        # The assistant message of the turn being read, while its items keep coming.
        self._assistant: dict[str, Any] | None = None
        self._thinking: list[str] = []
        self._tool_names: dict[str, str] = {}

    def add(self, message: dict[str, Any]) -> None:
        self._assistant = None
        self._thinking = []
        self.messages.append(message)

    def item(self, item: Mapping[str, Any]) -> None:
        kind = item.get("type")
        role = item.get("role")
        if kind in (None, "message") and role in ("user", "system", "developer"):
            self._input_message(role, item.get("content"))
        elif kind in (None, "message") and role == "assistant":
            self._assistant_text(_text(item.get("content"), role="assistant"))
        elif kind == "function_call":
            self._function_call(item)
        elif kind == "function_call_output":
            self._function_output(item)
        elif kind == "reasoning":
            self._reasoning(item)
        else:
            raise OllamaUnsupportedError(
                f"The input holds a {kind or role!r} item, which Ollama's chat API has no "
                "equivalent for (it came from a hosted tool or another provider). Remove it "
                "from the input, or run this agent with the model that produced it."
            )

    def _input_message(self, role: str, content: Any) -> None:
        text, images = _text_and_images(content)
        message: dict[str, Any] = {
            "role": "user" if role == "user" else "system",
            "content": text,
        }
        if images:
            if role != "user":
                raise OllamaUnsupportedError(
                    f"A {role} message carries an image; Ollama takes images in user messages "
                    "only. Move the image into a user message."
                )
            message["images"] = images
        self.add(message)

    def _assistant_text(self, text: str) -> None:
        current = self._assistant
        if current is not None and not current.get("content"):
            # A streamed turn may list its tool calls before its text: same turn, same message.
            current["content"] = text
            return
        self._start_assistant(text)

    def _start_assistant(self, text: str) -> dict[str, Any]:
        thinking = "\n".join(self._thinking)
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if thinking:
            message["thinking"] = thinking
        self.add(message)
        self._assistant = message
        return message

    def _function_call(self, item: Mapping[str, Any]) -> None:
        message = self._assistant or self._start_assistant("")
        name = str(item.get("name", ""))
        call_id = item.get("call_id")
        if isinstance(call_id, str):
            self._tool_names[call_id] = name
        message.setdefault("tool_calls", []).append(
            {"function": {"name": name, "arguments": _arguments(item.get("arguments"))}}
        )

    def _function_output(self, item: Mapping[str, Any]) -> None:
        text, images = _text_and_images(item.get("output"))
        message: dict[str, Any] = {"role": "tool", "content": text}
        name = self._tool_names.get(str(item.get("call_id")))
        if name:
            message["tool_name"] = name
        if images:
            message["images"] = images
        self.add(message)

    def _reasoning(self, item: Mapping[str, Any]) -> None:
        # Thinking goes back with the assistant message it preceded, as Ollama returned it;
        # summaries and encrypted reasoning from other providers have no Ollama form.
        texts = [
            part.get("text", "")
            for part in item.get("content") or []
            if isinstance(part, Mapping) and part.get("type") == "reasoning_text"
        ]
        self._assistant = None
        self._thinking = [text for text in texts if text]


def _as_mapping(item: Any) -> Mapping[str, Any]:
    if isinstance(item, Mapping):
        return item
    dump = getattr(item, "model_dump", None)
    if callable(dump):
        dumped = dump(exclude_unset=True)
        if isinstance(dumped, Mapping):
            return dumped
    raise OllamaUnsupportedError(
        f"Input item {item!r} is neither a dict nor an SDK item; pass items in the OpenAI "
        "Responses input format (for example {'role': 'user', 'content': 'hi'})."
    )


def _arguments(raw: Any) -> dict[str, Any]:
    if isinstance(raw, Mapping):
        return dict(raw)
    try:
        parsed = json.loads(raw) if isinstance(raw, str) and raw.strip() else {}
    except json.JSONDecodeError:
        # The model produced broken JSON earlier; the SDK already answered it with an error
        # result, and Ollama needs an object here, so keep the text where the model can see it.
        return {"arguments": raw}
    return parsed if isinstance(parsed, dict) else {"arguments": parsed}


def _text(content: Any, *, role: str) -> str:
    text, images = _text_and_images(content)
    if images:
        raise OllamaUnsupportedError(
            f"An {role} message carries an image; Ollama takes images in user messages and "
            "tool results only."
        )
    return text


def _text_and_images(content: Any) -> tuple[str, list[bytes]]:
    if content is None:
        return "", []
    if isinstance(content, str):
        return content, []
    texts: list[str] = []
    images: list[bytes] = []
    for part in content if isinstance(content, Iterable) else [content]:
        part = _as_mapping(part)
        kind = part.get("type")
        if kind in _TEXT_PARTS:
            texts.append(str(part.get("text", "")))
        elif kind == "refusal":
            texts.append(str(part.get("refusal", "")))
        elif kind in ("input_image", "image_url"):
            images.append(_image_bytes(part))
        else:
            raise OllamaUnsupportedError(
                f"A message part of type {kind!r} cannot be sent to Ollama, which takes text "
                "and inline images only. Send its content as text or as a base64 data: URL "
                "image instead."
            )
    return "\n".join(texts), images


def _image_bytes(part: Mapping[str, Any]) -> bytes:
    url = part.get("image_url")
    if isinstance(url, Mapping):  # the Chat Completions shape {"image_url": {"url": ...}}
        url = url.get("url")
    if not isinstance(url, str) or not url:
        raise OllamaUnsupportedError(
            f"Image {dict(part)!r} has no image_url; Ollama cannot fetch uploaded file ids. "
            "Pass the image inline as a data: URL (data:image/png;base64,...)."
        )
    if not url.startswith("data:"):
        raise OllamaUnsupportedError(
            f"Image {url[:80]!r} is a remote URL; Ollama only takes the image bytes. Download "
            "it yourself and pass it as a data: URL (data:image/png;base64,...)."
        )
    header, _, data = url.partition(",")
    if ";base64" not in header:
        raise OllamaUnsupportedError(
            f"Image data URL {header!r} is not base64-encoded; encode the image as "
            "data:<type>;base64,<data>."
        )
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as error:
        raise OllamaUnsupportedError(
            f"Image data URL {header!r} holds invalid base64 ({error}); re-encode the image."
        ) from error
