"""Hostile cases without a test runner: how many of each kind Timestep handled.

``bench/faults.py`` prints "hostile cases tried/handled" from this::

    from _hostile import hostile_cases

    counts = await hostile_cases("sqlite:///./faults.db", per_kind=50)
    # {"payload": (50, 50), "session id": (50, 50), "url": (50, 50), "cli": (50, 50)}

A case is *handled* when it ended in a ``TimestepError`` or in success, within its time limit,
with every stored row it was not asked to change exactly as it was. The generators and checks
are the ones tests/test_hostile_input.py runs under hypothesis (tests/hostile.py); here a
``random.Random`` with a fixed seed drives them, so a run is repeatable.

The cases write to the database at ``url`` (rows of agents "Ops" and "Assistant": a bystander
paused run and the rows under test, cleared again where the case saves them), connect to nothing
but ``url`` and closed loopback ports, and keep their files in a temporary folder.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

# tests/hostile.py holds the generators and checks (one copy, shared with the tests); bench
# scripts run as `python bench/x.py`, so the tests folder is put on the path here.
_TESTS = Path(__file__).resolve().parent.parent / "tests"
if str(_TESTS) not in sys.path:
    sys.path.append(str(_TESTS))

import hostile  # noqa: E402

__all__ = ["SEED", "hostile_cases"]

SEED = 20_240_607
"""The seed of every run, so two runs try the same cases."""


async def hostile_cases(url: str, per_kind: int) -> dict[str, tuple[int, int]]:
    """Run ``per_kind`` random cases of each kind against ``url``; ``{kind: (tried, handled)}``.

    Kinds (:data:`hostile.KINDS`): ``payload`` (a hostile stored state loaded back), ``session
    id`` (a save/find/load/clear round trip), ``url`` (a store built from a random database
    URL, loaded when it points at a closed loopback port or a scratch SQLite file) and ``cli``
    (an in-process `timestep` command line, commands without ``--url`` using ``url``).
    Call it inside a running event loop and close the backends (``close_backends()``) after.
    """
    rnd = random.Random(SEED)
    kit = await hostile.samples()
    await kit.add_bystander(url)
    port = hostile.closed_port()
    counts = dict.fromkeys(hostile.KINDS, (0, 0))

    def count(kind: str, handled: bool) -> None:
        tried, ok = counts[kind]
        counts[kind] = (tried + 1, ok + handled)

    with tempfile.TemporaryDirectory(prefix="timestep-hostile-") as folder, _database_url(url):
        scratch = Path(folder)
        hostile.write_cli_files(scratch, kit.python_state, kit.js_state)
        await hostile.write_cli_rows(url, kit)
        cli_urls = [url, url, f"sqlite:///{scratch / 'other.db'}"]
        cli_urls += [f"postgresql://app@127.0.0.1:{port}/agents", "mysql://x/y", "not a url"]
        for _ in range(per_kind):
            kind = rnd.choice(hostile.PAYLOAD_KINDS)
            sdk = rnd.choice(["python", "js"])
            real = kit.python_state if sdk == "python" else kit.js_state
            text = hostile.payload(kind, rnd, real)
            count("payload", await _handled(hostile.check_payload(url, kit, kind, sdk, text)))
        for _ in range(per_kind):
            sid = hostile.session_id(rnd)
            # The CLI lookup costs a process start-up's worth of work; one case in five.
            check = hostile.check_session_id(url, kit, sid, cli=rnd.random() < 0.2)
            count("session id", await _handled(check))
        for _ in range(per_kind):
            case = hostile.db_url_case(rnd, scratch, port)
            count("url", await _handled(hostile.check_url(case, kit, port, url)))
        for _ in range(per_kind):
            argv = hostile.cli_argv(rnd, cli_urls, scratch)
            count("cli", await _handled(hostile.check_cli(argv, url)))
    return counts


async def _handled(check: object) -> bool:
    try:
        await check  # type: ignore[misc]
    except hostile.Mishandled as failure:
        print(f"  mishandled: {failure}", file=sys.stderr)
        return False
    return True


@contextlib.contextmanager
def _database_url(url: str) -> Iterator[None]:
    """``TIMESTEP_DB_URL=url`` for the CLI cases, so none falls back to the user's database."""
    before = os.environ.get("TIMESTEP_DB_URL")
    os.environ["TIMESTEP_DB_URL"] = url
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TIMESTEP_DB_URL", None)
        else:
            os.environ["TIMESTEP_DB_URL"] = before
