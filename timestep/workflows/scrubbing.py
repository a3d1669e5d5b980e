"""What a failing step of a durable run leaves at rest: an error without the request's secrets.

DBOS checkpoints what a step raises, pickled, in its ``operation_outputs`` table (and a failed
workflow's error in ``workflow_status``), so a replay after a crash meets the same failure. The
exception a model client raises holds the request it sent, ``Authorization`` header included;
a tool's ``httpx.HTTPStatusError`` does too, and any message may quote a URL with its password.
So every step body runs under :func:`scrubbed`:

- a model call's error becomes a :class:`~timestep.ModelCallError` carrying the status code,
  provider, model, the provider's error code and request id, the retry headers
  (``retry-after``, ``retry-after-ms``, ``x-should-retry``), whether it was a network error or
  a timeout, and the message with keys, bearer tokens and URL passwords redacted;
- a tool's or guardrail's error is kept as it is when it is plain (its arguments and attributes
  are strings, numbers and the like, and no string holds anything key-shaped), else it becomes
  a :class:`~timestep.StepError` (original class name, HTTP status, scrubbed message).

The scrubbed error is raised outside the ``except`` block, so it has no ``__context__``: the
SDK's retry logic (which walks the cause chain) sees the same error on the first execution as
on a replay, and the same decision follows. :class:`~timestep.workflows.DurableModel` turns the
kept facts back into retry advice (:func:`retry_advice`).
"""

from __future__ import annotations

import pickle
from collections.abc import Awaitable, Callable, Iterator, Mapping
from datetime import date, datetime
from typing import Any, TypeVar

from agents.retry import ModelRetryAdvice, ModelRetryAdviceRequest, ModelRetryNormalizedError
from dbos import DBOS
from openai import APIConnectionError, APITimeoutError

from ..errors import ModelCallError, StepError, WorkflowRunError
from ..observability.redaction import Redactor, is_credential_name

__all__ = ["model_call_error", "retry_advice", "scrub_error", "scrubbed", "workflow_error"]

R = TypeVar("R")

RETRY_HEADERS = ("retry-after", "retry-after-ms", "x-should-retry")
"""The response headers a :class:`~timestep.ModelCallError` keeps (the SDK's retry logic reads
them); every other header, and the whole request, is dropped."""

_PLAIN = (str, int, float, bool, type(None), datetime, date)
_MESSAGE_LIMIT = 2000


async def scrubbed(call: Callable[[], Awaitable[R]], scrub: Callable[[Exception], Exception]) -> R:
    """``await call()``, raising ``scrub(error)`` (chain cut) instead of what it raised."""
    try:
        return await call()
    except Exception as error:
        replacement = scrub(error)
        if replacement is error:
            raise
    # Raised here, outside the handler, so nothing chains it to the original error.
    raise replacement


def model_call_error(error: Exception, model: object) -> ModelCallError:
    """``error`` (raised by ``model.get_response``) as a storable :class:`ModelCallError`."""
    if isinstance(error, ModelCallError):
        return error
    chain = list(_chain(error))
    headers: dict[str, str] = {}
    for candidate in chain:
        response = getattr(candidate, "response", None)
        found = getattr(response, "headers", None)
        if isinstance(found, Mapping):
            for name in RETRY_HEADERS:
                value = found.get(name)
                if isinstance(value, str) and name not in headers:
                    headers[name] = value
    model_name = getattr(model, "model", None)
    module = type(model).__module__
    provider = "openai" if module.startswith("agents.models.openai") else module.split(".")[0]
    is_timeout = any(_is_timeout(candidate) for candidate in chain)
    return ModelCallError(
        _message(error),
        workflow_id=DBOS.workflow_id,
        error_type=type(error).__name__,
        status_code=_status_code(chain),
        provider=provider,
        model=model_name if isinstance(model_name, str) else None,
        code=_first_str(chain, "code"),
        request_id=_first_str(chain, "request_id"),
        retry_after=_retry_after(headers),
        headers=headers,
        is_network_error=is_timeout or any(_is_network(candidate) for candidate in chain),
        is_timeout=is_timeout,
        unsafe_to_replay=any(getattr(c, "unsafe_to_replay", False) is True for c in chain),
    )


def scrub_error(error: Exception, step: str) -> Exception:
    """``error`` itself when DBOS may store it as is, else a :class:`StepError` for ``step``."""
    if isinstance(error, StepError) or _plain_error(error):
        return error
    return StepError(
        _message(error),
        workflow_id=DBOS.workflow_id,
        error_type=type(error).__name__,
        step=step,
        status_code=_status_code(list(_chain(error))),
    )


def workflow_error(error: Exception, workflow_id: str) -> Exception:
    """What a failed durable run stores as its error (DBOS pickles it into workflow_status).

    A failed step's scrubbed error wherever the SDK wrapped it (a tool's error arrives as a
    ``UserError`` whose cause it is); ``error`` itself when it is plain; else a
    :class:`~timestep.WorkflowRunError` with the scrubbed message.
    """
    for candidate in _chain(error):
        if isinstance(candidate, StepError):
            candidate.workflow_id = workflow_id
            return candidate
    if _plain_error(error):
        return error
    return WorkflowRunError(
        f"The agent run of workflow {workflow_id!r} failed: {type(error).__name__}: "
        f"{_message(error)}",
        workflow_id=workflow_id,
        error_type=type(error).__name__,
    )


def retry_advice(
    request: ModelRetryAdviceRequest, advice: ModelRetryAdvice | None
) -> ModelRetryAdvice | None:
    """The wrapped model's ``advice`` for ``request``, completed for a scrubbed error.

    A :class:`ModelCallError` is no ``APIConnectionError``: a provider that recognises network
    errors and timeouts by their class would not see one. Say so, as OpenAI's adapter does.
    """
    error = request.error
    if not isinstance(error, ModelCallError) or not error.is_network_error:
        return advice
    if advice is not None and advice.normalized is not None and advice.normalized.is_network_error:
        return advice
    return ModelRetryAdvice(
        suggested=True if advice is None or advice.suggested is None else advice.suggested,
        retry_after=error.retry_after,
        reason=str(error),
        normalized=ModelRetryNormalizedError(
            status_code=error.status_code,
            is_network_error=True,
            is_timeout=error.is_timeout,
        ),
    )


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _message(error: BaseException) -> str:
    text = Redactor().text(str(error) or type(error).__name__, limit=_MESSAGE_LIMIT)
    return text or type(error).__name__


def _status_code(chain: list[BaseException]) -> int | None:
    for candidate in chain:
        for source in (candidate, getattr(candidate, "response", None)):
            for attribute in ("status_code", "status"):
                value = getattr(source, attribute, None)
                if isinstance(value, int) and not isinstance(value, bool):
                    return value
    return None


def _first_str(chain: list[BaseException], attribute: str) -> str | None:
    for candidate in chain:
        value = getattr(candidate, attribute, None)
        if isinstance(value, str):
            return Redactor().scrub(value)
    return None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            seconds = float(headers[name]) / scale
        except (KeyError, ValueError):
            continue
        if seconds >= 0:
            return seconds
    return None


def _is_network(error: BaseException) -> bool:
    # By class name too: httpx and its forks (httpx2) raise TransportError subclasses.
    return isinstance(error, APIConnectionError | ConnectionError) or _named(
        error, "TransportError"
    )


def _is_timeout(error: BaseException) -> bool:
    return isinstance(error, APITimeoutError | TimeoutError) or _named(error, "TimeoutException")


def _named(error: BaseException, name: str) -> bool:
    return any(cls.__name__ == name for cls in type(error).__mro__)


def _plain_error(error: Exception) -> bool:
    """Whether ``error`` stores nothing but plain, secret-free values (and round-trips)."""
    redactor = Redactor()
    if redactor.scrub(str(error)) != str(error):
        return False
    if not all(_plain(arg, redactor) for arg in error.args):
        return False
    if not all(_plain(value, redactor, key) for key, value in vars(error).items()):
        return False
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return False
    return True


def _plain(value: Any, redactor: Redactor, name: Any = None, depth: int = 0) -> bool:
    if depth > 4:
        return False
    if isinstance(value, str):
        return redactor.scrub(value) == value and not (
            name is not None and value and is_credential_name(str(name))
        )
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, list | tuple | set | frozenset):
        return all(_plain(item, redactor, None, depth + 1) for item in value)
    if isinstance(value, Mapping):
        return all(
            isinstance(key, str) and _plain(item, redactor, key, depth + 1)
            for key, item in value.items()
        )
    return False
