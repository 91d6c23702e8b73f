"""Private files on hub and node: databases and secrets are created 0600 in 0700 folders (design.md "Files").

The modes are set explicitly, whatever the process's umask: a hub database holds full ID numbers (the
API masks them) and staff password hashes; a node's outbox, access list and nonces are its own business.
The systemd units also set ``UMask=0077`` and ``StateDirectoryMode=0700``; this module is what holds
when the hub or an agent runs outside them (the demo, a developer's shell, a container).

SQLite creates a database's ``-wal`` and ``-shm`` files with the database file's own mode (and corrects
them for the umask), so :func:`private_sqlite` creates the database file 0600 before SQLite opens it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)
DIR_MODE = 0o700
FILE_MODE = 0o600
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def private_dir(path: str | os.PathLike[str]) -> Path:
    """``path`` and each missing parent are created 0700 (mkdir's mode alone is masked by the umask).

    Folders that exist already are left as they are: the one given may be shared (``/tmp``), and the
    services' own state folders are kept 0700 by systemd (``StateDirectoryMode=0700``)."""
    path = Path(path)
    missing: list[Path] = []
    at = path
    while not at.exists() and at.parent != at:
        missing.append(at)
        at = at.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:  # made by someone else meanwhile: not ours to change
            continue
        os.chmod(folder, DIR_MODE)
    return path


def _tighten(path: Path) -> None:
    try:
        if path.stat().st_mode & 0o077:
            os.chmod(path, FILE_MODE)
            log.warning("%s was readable by other users; made it %o", path, FILE_MODE)
    except FileNotFoundError:
        pass
    except PermissionError:
        log.warning("%s is readable by other users and not ours to change: chmod 600 it", path)


def private_file(path: str | os.PathLike[str]) -> Path:
    """Make sure ``path`` exists 0600 (created empty if missing) in a folder made by :func:`private_dir`;
    one left readable by an older version is tightened."""
    path = Path(path)
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
    os.close(fd)
    _tighten(path)
    return path


def private_sqlite(path: str | os.PathLike[str]) -> str | Path:
    """Before ``sqlite3.connect(path)``: the database file 0600 (an empty file is a valid new database),
    so SQLite makes its ``-wal``/``-shm`` 0600 too; side files left readable by an older version are
    tightened. An in-memory database (``:memory:``, ``""``) or a ``file:`` URI is left to SQLite."""
    if str(path) in ("", ":memory:") or str(path).startswith("file:"):
        return str(path)
    path = private_file(path)
    for suffix in SQLITE_SIDE_FILES:
        _tighten(path.with_name(path.name + suffix))
    return path
