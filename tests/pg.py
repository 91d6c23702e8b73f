"""A real PostgreSQL server for tests and benches: Debian's binaries, a temp data dir, a free loopback port.

PostgreSQL refuses to run as root, so as root the data directory is owned by ``postgres`` and
initdb/pg_ctl run through ``runuser -u postgres``. Trust authentication on 127.0.0.1 only, the
socket in the data directory, fsync on (the figures must mean something). ``stop()`` always runs
``pg_ctl stop -m immediate`` so no server outlives the session.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from hub.transport.broker import free_port


def find_pg_bin() -> Path | None:
    """The newest /usr/lib/postgresql/<n>/bin that has initdb and pg_ctl, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


class PgError(RuntimeError):
    pass


class PgServer:
    def __init__(self, bin_dir: Path, user: str = "pingan") -> None:
        self.bin = bin_dir
        self.user = user
        self.root = Path(tempfile.mkdtemp(prefix="pingan-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0
        self.started = False

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if check and out.returncode != 0:
            raise PgError(f"{args[0]} failed ({out.returncode}): {out.stderr.strip() or out.stdout.strip()}")
        return out

    def start(self, *settings: str) -> PgServer:
        """``settings``: extra ``-c name=value`` server settings (the bench raises shared_buffers)."""
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        os.chmod(self.root, 0o755)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", self.user, "-E", "UTF8", "--no-sync")
        for attempt in range(5):  # a free port can be taken by someone else before the server binds it
            opts = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1 -c max_connections=200"
            opts += "".join(f" -c {s}" for s in settings)
            out = self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.data / "log"), "-w", "start",
                            check=False)
            if out.returncode == 0:
                self.started = True
                return self
            if "Address already in use" not in self.log() or attempt == 4:
                raise PgError(f"postgres did not start: {self.log()[-1500:]}")
            self.port = free_port()
        return self

    def log(self) -> str:
        path = self.data / "log"
        return path.read_text(errors="replace") if path.exists() else ""

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A fresh empty database; returns its SQLAlchemy URL."""
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, name)
        return self.url(name)

    def stop(self) -> None:
        if self.started:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
            self.started = False
        shutil.rmtree(self.root, ignore_errors=True)
