"""Decisions on a stored run are claimed before anything of them runs.

Two supervisors open the same paused run, one approves, the other rejects, and both resume
it. Checking row versions when the result is saved is too late: by then both runs executed
their tools. So a ``RunState`` loaded by :class:`~timestep.RunStateStore` carries a *claim*,
and :func:`~timestep.run_agent` settles it before the SDK resumes the state: the store writes
the decisions made on the state to the row with a compare-and-set on the version it loaded
(status ``resuming``). Of several processes that loaded the same pause and decided, exactly
one claim lands; the others get :class:`~timestep.DecisionConflictError` naming the winner's
decision, before any tool of theirs runs. A single decider keeps the three steps (load,
approve, ``run_agent``): the claim is one extra conditional write inside ``run_agent``.

This module only carries the claim from the store to ``run_agent`` (and on to the run's
result, so that saving the result builds on the claimed row whichever store object saves it);
what a claim writes is the store's business (``timestep.state``), so ``run_agent`` needs no
import of the store.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["Claim", "attach_claim", "claim_of"]

Claim = Callable[[Any], Awaitable[None]]
"""Called with the state just before it resumes; raises to stop the run."""

# An attribute rather than a registry keyed by the state: RunState is an unhashable dataclass,
# and the claim must travel with the object the user hands to run_agent.
_ATTRIBUTE = "_timestep_claim"


def attach_claim(state: object, claim: Claim) -> None:
    """Make ``run_agent`` settle ``claim`` before it resumes ``state``."""
    setattr(state, _ATTRIBUTE, claim)


def claim_of(state: object) -> Claim | None:
    """The claim ``state`` carries, if a store loaded it."""
    claim: Claim | None = getattr(state, _ATTRIBUTE, None)
    return claim
