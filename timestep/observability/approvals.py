"""Approve or reject a paused tool call and record who did it, and when.

The SDK's ``state.approve(item)`` records no one. These do the same and add an ``approval``
row to the run's trace (when tracing is ``db`` or ``all``), which ``timestep runs show``
lists in the run's timeline::

    state = await store.load()
    for item in state.get_interruptions():
        approve(state, item, by="alice@example.com")
    await store.save(state)
"""

from __future__ import annotations

from typing import Any

from agents import RunState, ToolApprovalItem

from .install import configure_tracing
from .observer import record_decision

__all__ = ["approve", "reject"]


def approve(
    state: RunState[Any, Any],
    item: ToolApprovalItem,
    *,
    by: str | None = None,
    always_approve: bool = False,
) -> None:
    """``state.approve(item)``, recorded with ``by`` (who approved) and the time."""
    state.approve(item, always_approve=always_approve)
    _record(state, item, approved=True, by=by, message=None)


def reject(
    state: RunState[Any, Any],
    item: ToolApprovalItem,
    *,
    by: str | None = None,
    rejection_message: str | None = None,
    always_reject: bool = False,
) -> None:
    """``state.reject(item)``, recorded with ``by``, the time and the message for the model."""
    state.reject(item, always_reject=always_reject, rejection_message=rejection_message)
    _record(state, item, approved=False, by=by, message=rejection_message)


def _record(
    state: RunState[Any, Any],
    item: ToolApprovalItem,
    *,
    approved: bool,
    by: str | None,
    message: str | None,
) -> None:
    # The approver is often its own process (a CLI, a web handler): set tracing up here too.
    processor = configure_tracing().processor
    if processor is not None:
        record_decision(processor, state, item, approved=approved, by=by, message=message)
