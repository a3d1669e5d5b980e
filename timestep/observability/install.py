"""``TIMESTEP_TRACING`` applied to the SDK: which trace processors run in this process.

==========  ===============================================================================
mode        processors
==========  ===============================================================================
``off``     untouched; ``run_agent`` runs with ``tracing_disabled=True``, nothing is recorded
``db``      only Timestep's (replaces the SDK's OpenAI exporter: nothing leaves the machine)
``openai``  the SDK's own (its default exporter to OpenAI's dashboard)
``all``     Timestep's added next to the SDK's
==========  ===============================================================================

:func:`configure_tracing` is cheap to call on every run: it compares the settings with those
it last applied and only installs (or swaps) the processor when they changed, so a process has
one Timestep processor, not one per run.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from agents import RunConfig, add_trace_processor, set_trace_processors
from agents.memory import Session
from agents.tracing.processors import default_processor
from sqlalchemy.engine import make_url

from ..config import Settings, TracingMode, load_settings, redact_url
from ..errors import ConfigurationError
from ..storage import SQLStateBackend, backend_factory
from .processor import TimestepTraceProcessor

__all__ = [
    "TracingSetup",
    "active_processor",
    "configure_tracing",
    "flush_tracing",
]


@dataclass(frozen=True)
class TracingSetup:
    """The tracing mode in effect and, for ``db`` / ``all``, Timestep's processor."""

    mode: TracingMode
    processor: TimestepTraceProcessor | None

    @property
    def sdk_traces(self) -> bool:
        """Whether runs should trace at all (``RunConfig(tracing_disabled=not ...)``)."""
        return self.mode != "off"

    def run_config_options(self, agent_name: str, session: Session | None) -> dict[str, Any]:
        """``RunConfig`` keyword arguments for a ``run_agent`` call that built no config.

        The trace carries the session id as its ``group_id`` and the starting agent in its
        metadata, which is how stored traces, usage and runs find each other.
        """
        if not self.sdk_traces:
            return {"tracing_disabled": True}
        session_id = getattr(session, "session_id", None)
        return {
            "tracing_disabled": False,
            "group_id": session_id if isinstance(session_id, str) else None,
            "trace_metadata": {"timestep.agent": agent_name},
        }

    def records(self, run_config: RunConfig) -> TimestepTraceProcessor | None:
        """The processor recording a run with ``run_config`` (``None``: nothing recorded)."""
        return None if run_config.tracing_disabled else self.processor


_lock = threading.Lock()
_applied: tuple[tuple[Any, ...], TracingSetup] | None = None
_touched = False  # whether Timestep ever replaced the SDK's processors in this process


def configure_tracing(settings: Settings | None = None) -> TracingSetup:
    """Apply ``TIMESTEP_TRACING`` (from ``settings`` or :func:`~timestep.load_settings`).

    ``run_agent`` calls it on every run; call it yourself in a process that traces without
    ``run_agent`` (``Runner.run``, durable workflows, approvals) so spans are recorded there
    too.

    Raises:
        ConfigurationError: ``db`` / ``all`` with a database that cannot hold traces (a
            plugin backend, or an in-memory SQLite database the writer thread cannot share).
    """
    global _applied, _touched
    settings = settings or load_settings()
    mode = settings.tracing_mode
    records = mode in ("db", "all")
    key = (mode, records and settings.db_url, settings.trace_payloads, settings.prices)
    with _lock:
        if _applied is not None and _applied[0] == key:
            return _applied[1]
        if records:
            _check_url(settings.db_url)
        previous = _applied[1].processor if _applied is not None else None
        processor = (
            TimestepTraceProcessor(
                settings.db_url, payloads=settings.trace_payloads, prices=settings.prices
            )
            if records
            else None
        )
        if processor is not None and mode == "db":
            set_trace_processors([processor])
            _touched = True
        elif processor is not None:
            if _touched:
                set_trace_processors([default_processor(), processor])
            else:
                # Keep whatever the SDK (and the application) already has.
                add_trace_processor(processor)
            _touched = True
        elif _touched:
            # The SDK's defaults again (processors the application added are not restored).
            set_trace_processors([default_processor()])
            _touched = False
        setup = TracingSetup(mode=mode, processor=processor)
        _applied = (key, setup)
    if previous is not None and previous is not processor:
        previous.shutdown()
    return setup


def active_processor() -> TimestepTraceProcessor | None:
    """The Timestep processor installed in this process (``None`` unless ``db`` / ``all``)."""
    applied = _applied
    return applied[1].processor if applied is not None else None


def flush_tracing(timeout: float | None = 30.0) -> bool:
    """Write everything recorded so far to the database; returns whether it finished in time.

    Runs are recorded in the background; call this before reading traces, usage or a timeline
    in the same process (tests, scripts). A process that exits flushes by itself.
    """
    processor = active_processor()
    return True if processor is None else processor.flush(timeout)


def _reset_for_tests() -> None:
    """Stop the processor and give the SDK back its default processors."""
    global _applied, _touched
    with _lock:
        applied, _applied = _applied, None
        if _touched:
            set_trace_processors([default_processor()])
            _touched = False
    if applied is not None and applied[1].processor is not None:
        applied[1].processor.shutdown()


def _check_url(url: str) -> None:
    if backend_factory(url) is not SQLStateBackend:
        raise ConfigurationError(
            f"TIMESTEP_TRACING=db/all records traces in a SQL database, but {redact_url(url)!r} "
            "is served by a plugin backend. Use a postgresql:// or sqlite:/// URL, or set "
            "TIMESTEP_TRACING=off or openai."
        )
    if make_url(url).database in (None, "", ":memory:"):
        raise ConfigurationError(
            "TIMESTEP_TRACING=db/all needs a database file or server; an in-memory SQLite "
            f"database ({redact_url(url)!r}) cannot be shared with the trace writer. Use "
            "sqlite:///path/to/timestep.db."
        )
