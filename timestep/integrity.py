"""Signed run states: an HMAC over each stored row, checked before a run is resumed.

A paused run's state records which tool calls a human approved. Anyone who can write the row
(a compromised service with database access, or an app that lets a client hand state back to
it) could otherwise mark a call approved and have it executed on resume. With
``TIMESTEP_STATE_KEY`` set, :class:`~timestep.RunStateStore` signs every row it writes and
refuses, with :class:`~timestep.StateIntegrityError`, any row whose signature is missing or
does not match.

The signature is ``v1:<key id>:<hex HMAC-SHA256>``. The HMAC covers the row's agent name,
session id, writer SDK, schema version, state and portable state, each encoded as
``<UTF-8 byte length>:<bytes>`` (``~`` for a missing value) after the ``timestep-run-state-v1``
label, so another program holding the key (a TypeScript service, say) can sign and verify the
same rows. The key id is a short hash of the key, so rows signed before a key rotation are
verified with the previous key (``TIMESTEP_STATE_PREVIOUS_KEYS``).

An exported state (``timestep state export``) carries a signature of its own, in the same
``v1:<key id>:<hex>`` form, over ``timestep-export-v1``, a newline and the state as canonical
JSON (sorted keys, no spaces, ASCII escapes); ``state import`` checks it, so an export edited
on the way is not signed into the database as if Timestep had written it.

A durable run's approval decision (``timestep_workflow_decisions``, see
:mod:`timestep.workflows.approvals`) is signed too, so a process with database access and no
key cannot approve a parked workflow by inserting a row: the same ``v1:<key id>:<hex>`` form,
over ``timestep-decision-v1`` and then, each encoded as above, the workflow id, the call id,
the decision (``approved`` or ``rejected``), the rejection message, who decided and when
(``decided_at`` in UTC, ISO 8601 with microseconds: ``2026-12-02T10:03:42.123456+00:00``).
A worker with the key ignores (and logs) any decision whose signature does not verify, so
every process that decides needs the key the workers have.

Example::

    signer = StateSigner("a-32-character-or-longer-secret-key")
    signature = signer.sign(record)
    signer.verify(dataclasses.replace(record, signature=signature))   # passes
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from .config import Settings
from .errors import StateIntegrityError
from .storage import StateRecord

__all__ = ["StateSigner", "Verdict", "decision_message", "export_message", "signed_message"]

Verdict = Literal["valid", "unsigned", "unknown key", "malformed", "changed"]
"""What a signature check found (:meth:`StateSigner.status`)."""

_LABEL = b"timestep-run-state-v1"
_EXPORT_LABEL = b"timestep-export-v1"
_DECISION_LABEL = b"timestep-decision-v1"
_VERSION = "v1"


def signed_message(record: StateRecord) -> bytes:
    """The bytes a row's signature covers (see the module docs for the encoding)."""
    return _encode(
        _LABEL,
        (
            record.agent_name,
            record.session_id,
            record.sdk,
            record.schema_version,
            record.state,
            record.portable_state,
        ),
    )


def decision_message(
    workflow_id: str,
    call_id: str,
    decision: str,
    rejection_message: str | None,
    decided_by: str | None,
    decided_at: datetime,
) -> bytes:
    """The bytes a durable decision's signature covers (see the module docs)."""
    if decided_at.tzinfo is None:
        raise ValueError("decided_at must be timezone-aware (UTC)")
    moment = decided_at.astimezone(UTC).isoformat(timespec="microseconds")
    return _encode(
        _DECISION_LABEL,
        (workflow_id, call_id, decision, rejection_message, decided_by, moment),
    )


def _encode(label: bytes, values: Sequence[str | None]) -> bytes:
    parts = [label]
    for value in values:
        if value is None:
            parts.append(b"~")
        else:
            data = value.encode("utf-8", "surrogatepass")
            parts.append(b"%d:%s" % (len(data), data))
    return b"\n".join(parts)


def export_message(state: Mapping[str, Any]) -> bytes:
    """The bytes an export signature covers: a label, then ``state`` as canonical JSON
    (sorted keys, no spaces, ASCII)."""
    canonical = json.dumps(state, sort_keys=True, separators=(",", ":"))
    return _EXPORT_LABEL + b"\n" + canonical.encode("ascii")


def _key_id(key: bytes) -> str:
    # Names the key in each signature without revealing anything useful about it.
    return hashlib.sha256(b"timestep key id\n" + key).hexdigest()[:12]


class StateSigner:
    """Signs rows with ``key`` and verifies them with it or any of ``previous`` keys.

    Keys are strings of at least 32 characters (see ``TIMESTEP_STATE_KEY``); the signer never
    shows them in its repr or its errors.
    """

    def __init__(self, key: str | bytes, previous: Sequence[str | bytes] = ()) -> None:
        self._key = key.encode() if isinstance(key, str) else key
        self._key_id = _key_id(self._key)
        self._keys = {self._key_id: self._key}
        for old in previous:
            old_bytes = old.encode() if isinstance(old, str) else old
            self._keys.setdefault(_key_id(old_bytes), old_bytes)

    def __repr__(self) -> str:
        return f"StateSigner(key_id={self._key_id!r}, verify_keys={len(self._keys)})"

    @classmethod
    def from_settings(cls, settings: Settings) -> StateSigner | None:
        """The signer for ``TIMESTEP_STATE_KEY`` (``None`` when no key is set)."""
        if settings.state_key is None:
            return None
        return cls(settings.state_key, settings.previous_state_keys)

    def sign(self, record: StateRecord) -> str:
        """The signature to store with ``record``."""
        return self._sign(signed_message(record))

    def status(self, record: StateRecord) -> Verdict:
        """Whether ``record`` would pass :meth:`verify`: ``"valid"``, ``"unsigned"``,
        ``"unknown key"``, ``"malformed"`` or ``"changed"`` (for ``timestep runs show``)."""
        return self._verdict(signed_message(record), record.signature)

    def sign_export(self, state: Mapping[str, Any]) -> str:
        """The signature of an exported state (``timestep state export``), over its content:
        formatting may change on the way, a value may not."""
        return self._sign(export_message(state))

    def export_status(self, state: Mapping[str, Any], signature: str | None) -> Verdict:
        """Whether ``signature`` is :meth:`sign_export`'s for ``state`` (see :meth:`status`)."""
        return self._verdict(export_message(state), signature)

    def sign_decision(
        self,
        workflow_id: str,
        call_id: str,
        decision: str,
        rejection_message: str | None,
        decided_by: str | None,
        decided_at: datetime,
    ) -> str:
        """The signature stored with a durable run's approval decision (``decision`` is
        ``"approved"`` or ``"rejected"``), proof that a key holder made it::

            signer.sign_decision("order-7", "call-2", "approved", None, "ana", now)
        """
        return self._sign(
            decision_message(
                workflow_id, call_id, decision, rejection_message, decided_by, decided_at
            )
        )

    def decision_status(
        self,
        workflow_id: str,
        call_id: str,
        decision: str,
        rejection_message: str | None,
        decided_by: str | None,
        decided_at: datetime,
        signature: str | None,
    ) -> Verdict:
        """Whether ``signature`` is :meth:`sign_decision`'s for that decision (see
        :meth:`status`); a worker applies only ``"valid"`` ones."""
        message = decision_message(
            workflow_id, call_id, decision, rejection_message, decided_by, decided_at
        )
        return self._verdict(message, signature)

    def _sign(self, message: bytes) -> str:
        digest = hmac.new(self._key, message, hashlib.sha256).hexdigest()
        return f"{_VERSION}:{self._key_id}:{digest}"

    def _verdict(self, message: bytes, signature: str | None) -> Verdict:
        if not signature:
            return "unsigned"
        version, _, rest = signature.strip().partition(":")
        key_id, _, digest = rest.partition(":")
        if version != _VERSION or not digest:
            return "malformed"
        key = self._keys.get(key_id)
        if key is None:
            return "unknown key"
        expected = hmac.new(key, message, hashlib.sha256).hexdigest()
        return "valid" if hmac.compare_digest(expected, digest) else "changed"

    def verify(self, record: StateRecord) -> None:
        """Return if ``record.signature`` matches its content, else raise.

        Raises:
            StateIntegrityError: the row is unsigned, signed with an unknown key, or changed
                since it was signed.
        """
        verdict = self.status(record)
        if verdict == "valid":
            return
        where = f"The stored state of agent {record.agent_name!r}, session {record.session_id!r}"
        if verdict == "unsigned":
            message = (
                f"{where} is not signed, and TIMESTEP_STATE_KEY is set, so it is refused: it "
                "was written before signing was enabled or by a program without the key. If "
                "you trust its content, re-save it from trusted code (`timestep state export` "
                "then `timestep state import --overwrite` with the key set); otherwise clear it."
            )
        elif verdict == "unknown key":
            key_id = str(record.signature).split(":")[1]
            message = (
                f"{where} was signed with a key this process does not have (key id "
                f"{key_id!r}). Set TIMESTEP_STATE_KEY to that key, or list it in "
                "TIMESTEP_STATE_PREVIOUS_KEYS after a rotation."
            )
        else:
            problem = (
                "has a malformed signature"
                if verdict == "malformed"
                else "does not match its signature"
            )
            message = (
                f"{where} {problem}: it was changed outside Timestep (for example an approval "
                "edited in the database), so it will not be resumed. Restore it from a trusted "
                "copy, or clear it (store.clear()) and run the agent again."
            )
        raise StateIntegrityError(message, session_id=record.session_id)
