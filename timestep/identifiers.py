"""Identifiers checked before anything happens, the same way on every backend.

Session ids, agent names, workflow ids, queue names and de-duplication ids end up in database
columns. SQLite stores almost anything and PostgreSQL refuses a NUL byte, a lone surrogate or
text longer than its column, so without a check of its own an identifier could work on one
backend and fail on the other, or be accepted, have a model called, and fail only when the run
is saved. :func:`check_identifier` applies the strictest rule up front: a non-empty string
that encodes as UTF-8, without NUL bytes, within the column's length.

Example::

    workflow_id = check_identifier(workflow_id, "workflow_id", WorkflowConfigurationError,
                                   max_length=MAX_WORKFLOW_ID)
"""

from __future__ import annotations

from .errors import TimestepError

__all__ = ["MAX_IDENTIFIER", "MAX_WORKFLOW_ID", "check_identifier"]

MAX_IDENTIFIER = 255
"""Session ids, agent names, queue names: the length of the columns that hold them."""

MAX_WORKFLOW_ID = 200
"""Workflow ids: a run's parked state is stored under its workflow id, and its continuations
(``ID/approval-N``, ``ID/resume-N``) need room for their suffix."""


def check_identifier(
    value: object,
    what: str,
    error: type[TimestepError],
    *,
    max_length: int = MAX_IDENTIFIER,
) -> str:
    """``value`` if every backend can store it as ``what``; else raise ``error`` naming it.

    Raises:
        error: ``value`` is not a non-empty string, holds a lone surrogate or a NUL byte, or
            is longer than ``max_length`` characters.
    """
    if not isinstance(value, str) or not value.strip():
        raise error(f"{what} must be a non-empty string, not {value!r}.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise error(
            f"{what} {value!r} is not valid Unicode text (it holds a lone surrogate); use a "
            "string that encodes as UTF-8."
        ) from None
    if len(value) > max_length or "\x00" in value:
        raise error(
            f"{what} must be at most {max_length} characters without NUL bytes; got "
            f"{len(value)} characters{' with a NUL byte' if chr(0) in value else ''}. Use a "
            "shorter one, such as a hash of the long one."
        )
    return value
