"""Files and folders Timestep creates are its owner's alone.

Stored runs hold whole conversations. With the usual umask a new file is readable by every
user of the machine, so the embedded database, the JSON-file form, their lock files and the
folders Timestep makes for them are created 0600 / 0700 instead. SQLite gives the ``-wal`` and
``-shm`` files it creates the mode of the database file, so creating that file first, private,
covers them too. Folders and files that already exist keep the mode their owner chose.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["private_file", "private_folder"]


def private_folder(path: Path) -> None:
    """Create ``path`` and its missing parents, each ``0700`` (existing ones are left alone).

    Raises:
        OSError: a folder cannot be created.
    """
    missing: list[Path] = []
    while not path.exists():
        missing.append(path)
        if path.parent == path:
            break
        path = path.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            folder.mkdir(mode=0o700)


def private_file(path: Path) -> None:
    """Create ``path`` empty with mode ``0600`` (and its folders ``0700``) unless it exists.

    Raises:
        OSError: the file or a folder cannot be created.
    """
    private_folder(path.parent)
    # O_EXCL: an existing file is never opened. Closing any descriptor of a SQLite database
    # drops every POSIX lock this process holds on it, so opening and closing a file that a
    # pool of this process uses would corrupt its locking ("disk I/O error").
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o600))
