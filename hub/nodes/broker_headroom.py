"""Is the broker allowed to hold a connection for every node? (issue 21)

mosquitto holds one file descriptor per connected client, beside its listeners, persistence file and log.
When it reaches its open-file limit it cannot accept another connection and logs nothing for it: the node
just keeps retrying, and its alarms wait in its outbox. Debian's ``mosquitto.service`` sets no
``LimitNOFILE``, so the broker gets systemd's default soft limit of 1,024: a district passes it at about a
thousand nodes, and a city's 20,000 nodes ran into a 20,000 limit in the load bench (docs/scale.md 7.7: 9
nodes never connected). The fix is one line in a drop-in (``systemd/mosquitto.service.d/pingan-limits.conf``);
this module tells an installer (``pingan-hub broker config``) and the centre (``/api/health``, the console's
header) before nodes are refused, because nothing else would show it.

Only a broker on this box can be checked: its pid comes from the pid file ``pingan-hub broker config``
writes, or, when the hub dials the broker on loopback, from the one process named ``mosquitto``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, func, select

from hub.store.schema import nodes

# listeners, the persistence file, the log, the hub's replicas, an installer's mosquitto_sub
MARGIN = 100
# the limit the drop-in sets: a broker past ~30,000 nodes should be a cluster anyway (docs/scale.md 7.5)
RECOMMENDED = 65536
DROP_IN = "systemd/mosquitto.service.d/pingan-limits.conf"
FIX = (f"raise mosquitto's LimitNOFILE (e.g. {RECOMMENDED}: `systemctl edit mosquitto`, or install {DROP_IN}) "
       "and restart it")
PROC = Path("/proc")


def needed(node_count: int) -> int:
    """Every registered node connected at once, a fifth more for the fleet's growth, and the broker's own."""
    return node_count + node_count // 5 + MARGIN


def pid_from_file(broker_dir: Path) -> int | None:
    for pid_file in (broker_dir / "data" / "mosquitto.pid", broker_dir / "mosquitto.pid"):
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            continue
        if (PROC / str(pid)).is_dir():
            return pid
    return None


def pid_by_name(name: str = "mosquitto") -> int | None:
    """The one process of that name on this box; None when there is none or several (which one is ours?)."""
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == name:
                found.append(int(entry.name))
        except OSError:  # ended meanwhile, or hidden from this user
            continue
    return found[0] if len(found) == 1 else None


def open_files_limit(pid: int) -> int | None:
    """The soft limit the process runs under (the one that refuses an accept); None: unreadable or unlimited."""
    try:
        text = (PROC / str(pid) / "limits").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("Max open files"):
            soft = line[len("Max open files"):].split()[0]
            return int(soft) if soft.isdigit() else None
    return None


@dataclass(frozen=True)
class Headroom:
    open_files_limit: int
    nodes: int

    @property
    def needed(self) -> int:
        return needed(self.nodes)

    @property
    def enough(self) -> bool:
        return self.open_files_limit >= self.needed

    def problem(self) -> str | None:
        if self.enough:
            return None
        return (f"the broker may open {self.open_files_limit} files and {self.nodes} nodes are registered "
                f"(it needs about {self.needed}): nodes past the limit cannot connect; {FIX}")


def registered_nodes(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(nodes).where(nodes.c.state != "removed"))
                   .scalar_one())


def find_broker(broker_dir: Path | None, loopback: bool) -> int | None:
    pid = pid_from_file(broker_dir) if broker_dir is not None else None
    if pid is None and loopback:
        pid = pid_by_name()
    return pid


class HeadroomCheck:
    """``/api/health``'s broker section. The broker's limit is looked up at most once a minute (finding it may
    scan ``/proc``, and consoles poll every 15 s); the nodes are counted each time, so a new one shows at once."""

    TTL_S = 60.0

    def __init__(self, engine: Engine, broker_dir: Path | None, loopback: bool) -> None:
        self.engine, self.broker_dir, self.loopback = engine, broker_dir, loopback
        self._limit: tuple[float, int | None] | None = None

    def current(self) -> Headroom | None:
        now = time.monotonic()
        if self._limit is None or now - self._limit[0] >= self.TTL_S:
            pid = find_broker(self.broker_dir, self.loopback)
            self._limit = (now, None if pid is None else open_files_limit(pid))
        limit = self._limit[1]
        return None if limit is None else Headroom(limit, registered_nodes(self.engine))
