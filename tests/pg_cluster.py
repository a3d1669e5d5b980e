"""A throwaway PostgreSQL server of our own, to stop and start under load.

The outage tests (and ``bench/faults.py``) need to restart PostgreSQL while saves are in
flight. The machine's shared server must never be touched, so this module runs the installed
PostgreSQL binaries on a private data directory and port::

    cluster = PrivateCluster.create()     # initdb + start, ~1-2 s
    url = cluster.url("postgres")
    cluster.stop()                         # pg_ctl stop -m fast: clients are disconnected
    cluster.start()
    cluster.destroy()

``initdb`` refuses to run as root, so as root every command runs as the ``postgres`` OS user
(``runuser``) on a directory that user owns.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ClusterUnavailable", "PrivateCluster", "find_bindir"]

# The OS user that runs the server when we are root (initdb and postgres refuse root).
_SERVER_USER = "postgres"


class ClusterUnavailable(RuntimeError):
    """No private server can be started here (binaries or the ``postgres`` user missing)."""


def find_bindir() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``: ``pg_config --bindir``, else the newest
    ``/usr/lib/postgresql/*/bin``."""
    candidates: list[str] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        done = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if done.returncode == 0:
            candidates.append(done.stdout.strip())
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    for folder in candidates:
        if (Path(folder) / "initdb").is_file() and (Path(folder) / "pg_ctl").is_file():
            return Path(folder)
    raise ClusterUnavailable(
        "no PostgreSQL server binaries (initdb, pg_ctl) found via `pg_config --bindir` or "
        "/usr/lib/postgresql/*/bin; install the PostgreSQL server package"
    )


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel's pick)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class PrivateCluster:
    """One private PostgreSQL server: data, socket and log in ``folder``, TCP on ``port``."""

    bindir: Path
    folder: Path
    port: int
    setup_seconds: float = 0.0

    @classmethod
    def create(cls) -> PrivateCluster:
        """``initdb`` a fresh cluster in a temporary folder and start it.

        Raises:
            ClusterUnavailable: no binaries, or (as root) no ``postgres`` OS user.
        """
        bindir = find_bindir()
        began = time.perf_counter()
        folder = Path(tempfile.mkdtemp(prefix="timestep-pg-"))
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam(_SERVER_USER)
            except KeyError:
                shutil.rmtree(folder)
                raise ClusterUnavailable(
                    f"running as root, and there is no {_SERVER_USER!r} OS user to run "
                    "PostgreSQL as (initdb refuses root)"
                ) from None
            os.chown(folder, user.pw_uid, user.pw_gid)
        cluster = cls(bindir=bindir, folder=folder, port=free_port())
        try:
            # Trust auth on a loopback-only server; --no-sync: a test cluster need not survive
            # a power cut, only the restarts the tests make.
            cluster._pg(
                "initdb",
                "-D",
                str(cluster.data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            )
            cluster.start()
        except BaseException:
            cluster.destroy()
            raise
        cluster.setup_seconds = time.perf_counter() - began
        return cluster

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        log = str(self.folder / "server.log")
        self._pg("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "start")

    def stop(self) -> None:
        """``pg_ctl stop -m fast``: roll back open transactions, disconnect every client,
        checkpoint, exit; wait until it is down."""
        self._pg("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    @property
    def running(self) -> bool:
        done = subprocess.run(
            self._command("pg_ctl", "-D", str(self.data), "status"),
            capture_output=True,
            env=_clean_env(),
        )
        return done.returncode == 0

    def destroy(self) -> None:
        """Stop the server if it runs (immediately: nothing here is worth a checkpoint) and
        delete its folder."""
        if self.data.exists() and self.running:
            self._pg("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    def log(self) -> str:
        """The server's log, for failure messages."""
        path = self.folder / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _command(self, program: str, *args: str) -> list[str]:
        command = [str(self.bindir / program), *args]
        if os.geteuid() == 0:
            return ["runuser", "-u", _SERVER_USER, "--", *command]
        return command

    def _pg(self, program: str, *args: str) -> None:
        done = subprocess.run(
            self._command(program, *args),
            capture_output=True,
            text=True,
            env=_clean_env(),
            timeout=120,
            # The server user may not be allowed into the caller's working directory.
            cwd=self.folder,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{program} {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n"
                f"{done.stderr}\n{self.log()[-2000:]}"
            )


def _clean_env() -> dict[str, str]:
    # PG* variables of the caller (PGHOST, PGPORT, PGDATA...) must not steer the private server.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env
