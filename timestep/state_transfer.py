"""Move a stored run between languages by file: ``timestep state export`` and ``state import``.

``export_state`` gives a stored run as the JSON one SDK's ``RunState.fromString`` /
``RunState.from_string`` reads, translating when the row was written by the other SDK.
``import_state`` stores such a file (from either SDK) as a row, with its portable form, so
``RunStateStore.load()`` in Python or a TypeScript program reading the table resumes it::

    text = await export_state(get_backend(url), "ticket-42", to="js")
    signature = export_signature(text, url=url)          # None without TIMESTEP_STATE_KEY
    stored = await import_state(get_backend(url), text, session_id="ticket-42",
                                signature=signature)

With ``TIMESTEP_STATE_KEY`` set, an export is signed over its content and an import verifies
that signature before it signs the new row: otherwise ``export``, an edit, and ``import``
would turn a forged approval into a validly signed row. Importing content without a valid
export signature (edited, or exported before the key was set) is an operator's deliberate
choice, ``trust_unsigned=True`` (``--trust-unsigned``), and is logged as a warning.
"""

from __future__ import annotations

import getpass
import json
import logging
from dataclasses import replace
from typing import Any

from .config import load_settings, redact_url
from .errors import (
    ConfigurationError,
    StateConflictError,
    StateCorruptedError,
    StateIntegrityError,
    StateNotFoundError,
    StateTooLargeError,
)
from .integrity import StateSigner
from .interop import describe, detect_sdk, other_sdk, portable_form, translate_run
from .state import check_session_id
from .storage import StateBackend, StateRecord, StateStatus, StoredState

__all__ = ["export_signature", "export_state", "find_run", "import_state"]

logger = logging.getLogger("timestep")


async def find_run(
    backend: StateBackend, session_id: str, agent_name: str | None = None
) -> StoredState:
    """The stored run of ``session_id`` (of ``agent_name`` when several agents share it).

    Raises:
        StateNotFoundError: no such run, or several agents' runs and no ``agent_name``.
    """
    if agent_name is not None:
        row = await backend.load(agent_name, session_id)
        rows = [] if row is None else [row]
    else:
        rows = await backend.list(session_id=session_id, limit=2)
    if len(rows) > 1:
        agents = ", ".join(sorted(row.agent_name for row in rows))
        raise StateNotFoundError(
            f"Session {session_id!r} has runs of several agents ({agents}); pass --agent NAME.",
            session_id=session_id,
        )
    if not rows:
        who = f"agent {agent_name!r}, " if agent_name else ""
        raise StateNotFoundError(
            f"No stored run for {who}session {session_id!r} in {redact_url(backend.url)}. "
            "`timestep runs list` shows what is stored.",
            session_id=session_id,
        )
    return rows[0]


async def export_state(
    backend: StateBackend, session_id: str, *, to: str, agent_name: str | None = None
) -> str:
    """The stored run as JSON for the ``to`` SDK (``"python"`` or ``"js"``).

    Raises:
        StateNotFoundError: no such run (see :func:`find_run`).
        UnsupportedSchemaError: the row's schema has no translator to ``to``.
        IncompatibleStateError: the run holds something the ``to`` SDK cannot express.
        StateIntegrityError: ``TIMESTEP_STATE_KEY`` is set and the row fails its signature.
    """
    other_sdk(to)
    row = await find_run(backend, session_id, agent_name)
    signer = StateSigner.from_settings(load_settings(backend.url))
    if signer is not None:
        # Otherwise export + import would launder an edited row into a freshly signed one.
        signer.verify(row)
    state = _parse(row.state, f"The stored state of session {session_id!r}")
    if row.sdk != to:
        state = translate_run(
            state,
            source=row.sdk,
            target=to,
            context=f"The run of agent {row.agent_name!r}, session {session_id!r} "
            f"({row.sdk} SDK): ",
            session_id=session_id,
        )
    return json.dumps(state, ensure_ascii=False, indent=2)


def export_signature(text: str, *, url: str | None = None) -> str | None:
    """The signature of an exported ``text`` under ``TIMESTEP_STATE_KEY`` (``None`` without a
    key). ``timestep state export -o FILE`` writes it to ``FILE.sig``.

    Raises:
        StateCorruptedError: ``text`` is not a JSON object.
    """
    signer = StateSigner.from_settings(load_settings(url))
    return None if signer is None else signer.sign_export(_parse(text, "The export"))


async def import_state(
    backend: StateBackend,
    document: str,
    *,
    agent_name: str | None = None,
    session_id: str,
    overwrite: bool = False,
    signature: str | None = None,
    trust_unsigned: bool = False,
) -> StoredState:
    """Store a serialized RunState of either SDK as the run of ``agent_name`` in ``session_id``.

    The row keeps the file's state as written (its SDK detected from the keys) and its portable
    form for the other SDK. ``agent_name`` defaults to the agent whose run the state records
    (its first item's agent); pass it when the run was started by another agent. A completed run
    of the same session is replaced; a paused or running one only with ``overwrite=True``.
    With ``TIMESTEP_STATE_KEY`` set, ``document`` must come with its export ``signature``
    (:func:`export_signature`), and the row is signed. ``trust_unsigned=True`` imports content
    without a valid one (edited by hand, or exported before the key was set), logged as a
    warning: the operator vouches for it.

    Raises:
        StateIntegrityError: a key is set and ``signature`` is missing or does not match
            ``document`` (and ``trust_unsigned`` is not set). Nothing is written.
        StateCorruptedError: ``document`` is not a RunState of either SDK.
        StateConflictError: the session holds a run that is not finished (use ``overwrite``).
        StateTooLargeError: ``document`` is over the state size limit.
    """
    settings = load_settings(backend.url)
    limit = settings.max_state_bytes
    size = len(document.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise StateTooLargeError(
            f"The file is {size:,} bytes, over the state size limit of {limit:,}. Raise "
            "TIMESTEP_MAX_STATE_BYTES if that is expected.",
            size=size,
            limit=limit,
            session_id=session_id,
        )
    state = _parse(document, "The file")
    signer = StateSigner.from_settings(settings)
    if signer is not None:
        _check_export(signer, state, signature, trust_unsigned, session_id)
    sdk = detect_sdk(state)
    summary = describe(state, sdk)
    name = agent_name or summary.starting_agent
    if not name:
        raise ConfigurationError("The state names no agent; pass --agent NAME (the run's agent).")
    portable = portable_form(state, sdk)
    record = StateRecord(
        agent_name=name,
        session_id=check_session_id(session_id),
        status=StateStatus.INTERRUPTED
        if summary.interruptions
        else StateStatus.COMPLETED
        if summary.finished
        else StateStatus.RUNNING,
        sdk=sdk,
        schema_version=summary.schema_version,
        state=json.dumps(state, separators=(",", ":")),
        current_agent=summary.current_agent,
        interruptions=summary.interruptions,
        portable_state=portable.state,
        portable_sdk=portable.sdk,
        portable_schema_version=portable.schema_version,
        portable_error=portable.error,
    )
    if signer is not None:
        record = replace(record, signature=signer.sign(record))
    if overwrite:
        return await backend.save(record, expected_version=None, overwrite=True)
    try:
        return await backend.save(record, expected_version=None)
    except StateConflictError as conflict:
        current = await backend.load(name, session_id)
        if current is None or current.status != StateStatus.COMPLETED:
            raise StateConflictError(
                f"Session {session_id!r} already holds an unfinished run of agent {name!r}; "
                "import under another --session, or pass --overwrite to replace it.",
                session_id=session_id,
                expected_version=None,
                actual_version=conflict.actual_version,
            ) from None
        return await backend.save(record, expected_version=current.version)


def _check_export(
    signer: StateSigner,
    state: dict[str, Any],
    signature: str | None,
    trust_unsigned: bool,
    session_id: str,
) -> None:
    verdict = signer.export_status(state, signature)
    if verdict == "valid":
        return
    problem = {
        "unsigned": "comes without an export signature",
        "unknown key": "was signed with a key this process does not have",
        "malformed": "has a malformed export signature",
        "changed": "was changed after it was exported",
    }[verdict]
    if trust_unsigned:
        # The operator vouches for this content; leave a trace of who did, and for which run.
        logger.warning(
            "Imported a state without a valid export signature (it %s) as session %r, on the "
            "word of operator %r (trust_unsigned).",
            problem,
            session_id,
            _operator(),
        )
        return
    raise StateIntegrityError(
        f"The file for session {session_id!r} {problem}, and TIMESTEP_STATE_KEY is set, so it "
        "is not imported: signing it now would make any edit in it (a forged approval, say) "
        "look like Timestep's own. Import the file `timestep state export -o FILE` wrote, "
        "next to its FILE.sig; or, if you checked its content and vouch for it, pass "
        "--trust-unsigned (trust_unsigned=True), which is logged.",
        session_id=session_id,
    )


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (a container, say)
        return "unknown"


def _parse(text: str, what: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except RecursionError:
        raise StateCorruptedError(f"{what} is nested too deeply to be a RunState.") from None
    except ValueError as error:  # bad JSON, bad UTF-8, a number too long to convert
        raise StateCorruptedError(f"{what} is not valid JSON ({error}).") from None
    if not isinstance(data, dict):
        raise StateCorruptedError(f"{what} is not a RunState (a JSON object).")
    return data
