"""One run state in one JSON file: the older ``RunStateStore("agent_state.json", agent)`` form.

The file holds a small envelope, ``{"timestep": {...metadata...}, "state": {...}}``, where
``state`` is the SDK's own serialized ``RunState`` (and ``portable_state``, when present, the
same state translated for the other Agents SDK). Writes go to a temporary file that replaces
the target atomically, under an exclusive lock on a ``.lock`` file beside it, so a reader never
sees half a state and racing writers get :class:`timestep.StateConflictError`. A file that holds
a bare SDK state (as older versions wrote) is read too.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import StateConflictError, StateCorruptedError, StorageUnavailableError
from ..interop.fingerprints import escape_lone_surrogates
from .base import StateRecord, StateStatus, StoredState
from .paths import private_file, private_folder

__all__ = ["JSONFileBackend"]

_FORMAT = "timestep.file/1"


class JSONFileBackend:
    """A :class:`~timestep.storage.StateBackend` over a single JSON file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self.url = self.path.resolve().as_uri()

    def __repr__(self) -> str:
        return f"JSONFileBackend({str(self.path)!r})"

    async def save(
        self, record: StateRecord, *, expected_version: int | None, overwrite: bool = False
    ) -> StoredState:
        return await asyncio.to_thread(self._save, record, expected_version, overwrite)

    async def load(self, agent_name: str, session_id: str) -> StoredState | None:
        # The file is the key: whatever it holds is this store's state. Loading it against the
        # wrong agent graph is caught when the state is rebuilt.
        return await asyncio.to_thread(self._read)

    async def get(self, state_id: str) -> StoredState | None:
        stored = await asyncio.to_thread(self._read)
        return stored if stored is not None and stored.id == state_id else None

    async def delete(self, agent_name: str, session_id: str) -> bool:
        return await asyncio.to_thread(self._delete, agent_name, session_id)

    async def list(
        self,
        *,
        status: StateStatus | None = None,
        agent_name: str | None = None,
        session_id: str | None = None,
        limit: int = 100,
    ) -> list[StoredState]:
        stored = await asyncio.to_thread(self._read)
        if stored is None or limit < 1:
            return []
        wanted = (
            (status is None or stored.status == status)
            and (agent_name is None or stored.agent_name == agent_name)
            and (session_id is None or stored.session_id == session_id)
        )
        return [stored] if wanted else []

    async def close(self) -> None:
        return None

    def _save(
        self, record: StateRecord, expected_version: int | None, overwrite: bool
    ) -> StoredState:
        with self._locked():
            current = self._read()
            if (
                current is not None
                and current.version
                and (
                    current.agent_name != record.agent_name
                    or current.session_id != record.session_id
                )
            ):
                if not overwrite:
                    raise StateConflictError(
                        f"{self.path} holds the state of agent {current.agent_name!r}, session "
                        f"{current.session_id!r}. Use another file for this run, or pass "
                        "overwrite=True to replace it.",
                        session_id=record.session_id,
                        expected_version=expected_version,
                        actual_version=current.version,
                    )
                current = None
            actual = None if current is None else current.version
            if not overwrite and actual != expected_version:
                raise StateConflictError(
                    f"{self.path} changed since this store read it (now version {actual}, "
                    f"expected {expected_version}). Nothing was written; load it again, or pass "
                    "overwrite=True to replace it.",
                    session_id=record.session_id,
                    expected_version=expected_version,
                    actual_version=actual,
                )
            now = datetime.now(UTC)
            stored = StoredState(
                **record.__dict__,
                id=current.id if current else uuid.uuid4().hex,
                version=(actual or 0) + 1,
                created_at=current.created_at if current else now,
                updated_at=now,
            )
            self._write(stored)
            return stored

    def _delete(self, agent_name: str, session_id: str) -> bool:
        with self._locked():
            current = self._read()
            if current is None or (current.agent_name, current.session_id) != (
                agent_name,
                session_id,
            ):
                return False
            self.path.unlink()
            return True

    def _read(self) -> StoredState | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except UnicodeDecodeError as error:
            raise StateCorruptedError(
                f"{self.path} is not UTF-8 text (byte {error.start} cannot be decoded), so it "
                "is not a run state Timestep wrote; it was damaged or replaced. Restore it from "
                "a backup or delete it to start over."
            ) from None
        except OSError as error:
            raise StorageUnavailableError(f"Cannot read {self.path}: {error}.") from None
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            raise StateCorruptedError(
                f"{self.path} is not valid JSON ({error.msg} at line {error.lineno}); it may be "
                "truncated. Restore it from a backup or delete it to start over."
            ) from None
        if not isinstance(document, dict):
            raise StateCorruptedError(
                f"{self.path} does not hold a run state (a JSON object). Restore or delete it."
            )
        if "timestep" not in document:
            return _bare_state(self.path, document, text)
        meta, state = document.get("timestep"), document.get("state")
        portable = document.get("portable_state")
        try:
            assert isinstance(meta, dict) and meta.get("format") == _FORMAT
            assert isinstance(state, dict)
            assert portable is None or isinstance(portable, dict)
            return StoredState(
                agent_name=str(meta["agent_name"]),
                session_id=str(meta["session_id"]),
                status=StateStatus(meta["status"]),
                sdk=str(meta["sdk"]),
                schema_version=str(meta["schema_version"]),
                # The writers' own compact forms, so the text (and its signature) round-trips.
                state=_writer_text(state, str(meta["sdk"])),
                current_agent=meta.get("current_agent"),
                interruptions=list(meta.get("interruptions", [])),
                portable_state=None if portable is None else _writer_text(portable, "js"),
                portable_sdk=meta.get("portable_sdk"),
                portable_schema_version=meta.get("portable_schema_version"),
                portable_error=meta.get("portable_error"),
                signature=meta.get("signature"),
                id=str(meta["id"]),
                version=int(meta["version"]),
                created_at=datetime.fromisoformat(meta["created_at"]),
                updated_at=datetime.fromisoformat(meta["updated_at"]),
            )
        except (AssertionError, KeyError, TypeError, ValueError):
            raise StateCorruptedError(
                f"{self.path} has a damaged Timestep envelope. Restore it from a backup or "
                "delete it to start over."
            ) from None

    def _write(self, stored: StoredState) -> None:
        meta = {
            "format": _FORMAT,
            **{k: v for k, v in stored.__dict__.items() if k not in {"state", "portable_state"}},
            "created_at": stored.created_at.isoformat() if stored.created_at else None,
            "updated_at": stored.updated_at.isoformat() if stored.updated_at else None,
        }
        document: dict[str, Any] = {"timestep": meta, "state": json.loads(stored.state)}
        if stored.portable_state is not None:
            document["portable_state"] = json.loads(stored.portable_state)
        payload = json.dumps(document, indent=2)
        private_folder(self.path.parent)
        # mkstemp creates the file 0600, so the state is private from its first byte.
        fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(payload)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    @contextmanager
    def _locked(self) -> Iterator[None]:
        lock_path = self.path.with_name(self.path.name + ".lock")
        private_file(lock_path)
        with lock_path.open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _writer_text(value: Any, sdk: str) -> str:
    """``value`` as the compact JSON text its writer produced: Python's ``json.dumps`` (ASCII)
    for a Python state, JSON.stringify's form for a JS one and for every portable form (which
    Timestep writes that way too, lone surrogates as ``\\uXXXX`` escapes)."""
    if sdk == "python":
        return json.dumps(value, separators=(",", ":"))
    return escape_lone_surrogates(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def _bare_state(path: Path, document: dict[str, Any], text: str) -> StoredState:
    """A file holding just an SDK's ``to_string()`` / ``toString()`` output: version 0,
    metadata guessed. The JS SDK writes camelCase keys, Python snake_case ones."""
    js = "currentAgent" in document and "current_agent" not in document
    agent = document.get("currentAgent" if js else "current_agent")
    agent_name = agent.get("name") if isinstance(agent, dict) else None
    step = document.get("currentStep" if js else "current_step") or {}
    modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    return StoredState(
        agent_name=str(agent_name or ""),
        session_id=path.stem,
        status=StateStatus.INTERRUPTED
        if step.get("type") == "next_step_interruption"
        else StateStatus.RUNNING,
        sdk="js" if js else "python",
        schema_version=str(document.get("$schemaVersion", "")),
        state=text,
        current_agent=agent_name,
        id=path.stem,
        version=0,
        created_at=modified,
        updated_at=modified,
    )
