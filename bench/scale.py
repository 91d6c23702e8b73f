"""Scale: ingest rate with 1, 2 and 4 hub replicas on PostgreSQL against one hub on SQLite, same run,
with the CPU each part used, to say where the bottleneck is (broker, database, Python).

Every configuration gets a fresh database and the same broker; publishers play 200 nodes and
queue N events (QoS 1) at the broker while the hubs are paused (SIGSTOP, shorter than their
keepalive); the figure is events stored per second from the resume to the last commit
(validated, deduplicated, committed, acked to the broker, receipted): ingest capacity, not the
publishers' speed. Replicas use ``$share/pingan-hub`` and LISTEN/NOTIFY
(hub/runtime/cluster.py); the SQLite hub is the district default. CPU is read from /proc (psutil) for
the broker, each hub process and every PostgreSQL process over the same window.

    .venv/bin/python bench/scale.py [--events 20000] [--replicas 1,2,4]
"""

from __future__ import annotations

import argparse
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import ingest as ingest_bench  # noqa: E402
from edge.protocol import Event, Topics  # noqa: E402
from hub.transport.broker import Broker  # noqa: E402
from tests.conftest import HubProc  # noqa: E402
from tests.pg import PgServer, find_pg_bin  # noqa: E402
from tests.replicas import prepare_postgres, start_replicas  # noqa: E402

NODES = 200
PUBLISHERS = 2


def make_payloads(n: int) -> list[tuple[str, bytes]]:
    out = []
    for i in range(n):
        node = f"pole-{i % NODES:03d}"
        out.append((Topics.events(node), Event.make(node, "detection.person", {"n": i, "zone": "lane"}).to_bytes()))
    return out


def publish_all(port: int, payloads: list[tuple[str, bytes]]) -> float:
    """Publish from PUBLISHERS clients at once; returns when the broker has PUBACKed all (seconds taken)."""
    return ingest_bench.publish_all(port, payloads, clients=PUBLISHERS, wait_s=120)


class CpuMeter:
    """CPU seconds per part between start() and stop(), from /proc."""

    def __init__(self, parts: dict[str, list[int]], pg_postmaster: int | None) -> None:
        self.parts = parts
        self.pg = pg_postmaster
        self.before: dict[int, float] = {}

    def _procs(self) -> dict[str, list[psutil.Process]]:
        out = {name: [psutil.Process(p) for p in pids] for name, pids in self.parts.items()}
        if self.pg:
            master = psutil.Process(self.pg)
            out["postgres"] = [master, *master.children(recursive=True)]
        return out

    @staticmethod
    def _cpu(p: psutil.Process) -> float:
        try:
            t = p.cpu_times()
            return t.user + t.system
        except psutil.Error:
            return 0.0

    def start(self) -> None:
        self.t0 = time.perf_counter()
        self.before = {p.pid: self._cpu(p) for procs in self._procs().values() for p in procs}

    def stop(self) -> tuple[float, dict[str, list[float]]]:
        wall = time.perf_counter() - self.t0
        used = {name: [self._cpu(p) - self.before.get(p.pid, 0.0) for p in procs]
                for name, procs in self._procs().items()}
        return wall, used


class PgWaits(threading.Thread):
    """What PostgreSQL's busy backends wait on during the drain, sampled from pg_stat_activity every 10 ms.

    The question of issue 21 is what stopped 8 replicas: row locks on ``nodes`` (docs/scale.md 7.4) show as
    ``Lock`` waits (``transactionid``/``tuple``: one writer waiting for another's commit), the WAL as
    ``LWLock``/``IO`` waits (``WALWrite``, ``WALSync``), and no wait at all is a backend on a CPU."""

    QUERY = ("SELECT coalesce(wait_event_type, 'CPU'), coalesce(wait_event, '') FROM pg_stat_activity "
             "WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active' "
             "AND backend_type = 'client backend'")

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url.replace("postgresql+psycopg://", "postgresql://")
        self.samples = 0
        self.active = 0
        self.waits: Counter[tuple[str, str]] = Counter()
        self.stopping = threading.Event()

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stopping.is_set():
                rows = conn.execute(self.QUERY).fetchall()
                self.samples += 1
                self.active += len(rows)
                self.waits.update((str(kind), str(event)) for kind, event in rows)
                self.stopping.wait(0.01)

    def stop(self) -> dict:
        self.stopping.set()
        self.join(5)
        return {"samples": self.samples, "active": self.active, "waits": self.waits}


def lock_share(w: dict | None) -> float:
    """% of the busy backends' samples spent waiting for a heavyweight lock (a row, a transaction)."""
    if not w or not w["active"]:
        return 0.0
    return sum(n for (kind, _), n in w["waits"].items() if kind == "Lock") / w["active"] * 100


def describe_waits(w: dict) -> str:
    if not w["active"]:
        return "no backend was seen busy"
    by_kind: Counter[str] = Counter()
    for (kind, _), n in w["waits"].items():
        by_kind[kind] += n
    parts = []
    for kind, n in by_kind.most_common():
        top = [e for (k, e), _ in w["waits"].most_common() if k == kind and e][:2]
        parts.append(f"{kind} {n / w['active'] * 100:.0f} %" + (f" ({', '.join(top)})" if top else ""))
    return (f"{w['active'] / w['samples']:.1f} busy backends on average; of their time: " + ", ".join(parts))


def count_pg(url: str) -> int:
    from sqlalchemy import func, select

    from hub.store.engine import make_engine
    from hub.store.schema import events

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(events)).scalar() or 0
    finally:
        engine.dispose()


def count_sqlite(path: Path) -> int:
    con = sqlite3.connect(path, timeout=30)
    try:
        return con.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    finally:
        con.close()


def measure(broker: Broker, hubs: list[HubProc], count, n: int, pg_pid: int | None,
            pg_url: str | None = None) -> dict:
    """Hubs paused (SIGSTOP) while the publishers queue N events at the broker, then resumed: the drain
    is the hubs' and the database's work alone, and the broker has already dealt the events out to the
    replicas of the share group. The pause stays under the hubs' MQTT keepalive (15 s x 1.5)."""
    payloads = make_payloads(n)
    writer0 = [batch_figures(h) for h in hubs]
    meter = CpuMeter({"broker": [broker.proc.pid], "hub": [h.proc.pid for h in hubs]}, pg_pid)  # type: ignore
    for h in hubs:
        h.proc.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]
    try:
        publish_s = publish_all(broker.port, payloads)
        if publish_s > 20:
            raise SystemExit(f"publishing took {publish_s:.0f} s: past the hubs' keepalive, use fewer --events")
    finally:
        waits = PgWaits(pg_url) if pg_url else None
        if waits:
            waits.start()
        meter.start()
        t0 = time.perf_counter()
        for h in hubs:
            h.proc.send_signal(signal.SIGCONT)  # type: ignore[union-attr]
    deadline = time.monotonic() + 600
    stored = 0
    while time.monotonic() < deadline:
        stored = count(None)
        if stored >= n:
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - t0
    wall, used = meter.stop()
    pg_waits = waits.stop() if waits else None
    writer = [(s1 - s0, c1 - c0) for (s0, c0), (s1, c1) in zip(writer0, (batch_figures(h) for h in hubs),
                                                                  strict=True)]
    return {"rate": stored / elapsed, "stored": stored, "elapsed": elapsed, "publish_rate": n / publish_s,
            "wall": wall, "cpu": used, "writer": writer, "pg_waits": pg_waits}


def batch_figures(hub: HubProc) -> tuple[float, float]:
    """(seconds inside ingest transactions, batches) so far, from the hub's /metrics."""
    import re

    text = hub.metrics()
    total = re.search(r"^pingan_hub_batch_seconds_sum ([0-9.e+]+)$", text, re.M)
    count = re.search(r"^pingan_hub_batch_seconds_count ([0-9.e+]+)$", text, re.M)
    return (float(total.group(1)) if total else 0.0, float(count.group(1)) if count else 0.0)


def describe(name: str, r: dict) -> list[str]:
    cpu = r["cpu"]
    per = {k: sum(v) / r["wall"] * 100 for k, v in cpu.items()}
    hub_max = max(cpu["hub"]) / r["wall"] * 100
    lines = [f"  {name:<24} {r['rate']:8.0f} events/s  (stored {r['stored']}, {r['elapsed']:.1f} s; "
             f"queued at {r['publish_rate']:.0f}/s while paused)",
             "  " + " " * 24 + "  CPU % of one core: " + ", ".join(f"{k} {v:.0f}" for k, v in per.items())
             + f"  (busiest hub process {hub_max:.0f})"]
    busy = max(t for t, _ in r["writer"]) / r["elapsed"] * 100
    batches = sum(c for _, c in r["writer"])
    lines.append("  " + " " * 24 + f"  writer threads: {batches:.0f} commits, mean {r['stored'] / max(batches, 1):.0f} "
                 f"events and {sum(t for t, _ in r['writer']) / max(batches, 1) * 1000:.1f} ms each; busiest writer "
                 f"inside a transaction {busy:.0f} % of the time")
    total = sum(per.values())
    cores = psutil.cpu_count() or 1
    load = psutil.getloadavg()[0]
    if hub_max >= 70:
        verdict = ("Python: the replica's process uses most of a core (one writer thread per replica: validation, "
                   "building SQL, psycopg; the GIL) - more replicas add writers")
    elif lock_share(r.get("pg_waits")) >= 30:
        verdict = ("database locks: PostgreSQL's busy backends wait on each other's transactions (Lock waits: "
                   "the same rows written by several replicas)")
    elif per["broker"] >= 85:
        verdict = "broker: mosquitto's single thread is at a full core"
    elif total >= 60 * cores or load >= cores:
        verdict = (f"the machine's CPU: {cores} cores shared by {len(cpu['hub'])} hub processes, PostgreSQL, the "
                   f"broker and other work (load {load:.1f}); each writer waits for a core more than for the database")
    elif per.get("postgres", 0) >= 85:
        verdict = "database: PostgreSQL's processes use most CPU"
    elif busy >= 85:
        verdict = "the database round trips and commits of each replica's single writer"
    else:
        verdict = "not saturated: the hubs kept up with what the broker delivered"
    if r.get("pg_waits"):
        lines.append("  " + " " * 24 + f"  PostgreSQL: {describe_waits(r['pg_waits'])}")
    lines.append("  " + " " * 24 + f"  bottleneck: {verdict}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--replicas", default="1,2,4")
    args = ap.parse_args()
    counts = [int(x) for x in args.replicas.split(",")]
    bin_dir = find_pg_bin()
    if bin_dir is None:
        raise SystemExit("PostgreSQL is not installed: apt-get install -y postgresql (scripts/bootstrap.sh)")
    results: list[tuple[str, dict]] = []
    load_before = psutil.getloadavg()
    with tempfile.TemporaryDirectory(prefix="pingan-scale-") as tmp_name:
        tmp = Path(tmp_name)
        broker = Broker(tmp / "broker").start()
        pg = PgServer(bin_dir).start()
        try:
            pg_pid = int((pg.data / "postmaster.pid").read_text().split()[0])
            hub = HubProc(tmp / "sqlite", broker.url, offline_after_s="3600")
            (tmp / "sqlite").mkdir()
            hub.start()
            try:
                db = hub.data_dir / "hub.db"
                results.append(("1 hub, SQLite", measure(broker, [hub], lambda _: count_sqlite(db), args.events,
                                                         None)))
            finally:
                hub.stop()
            for n in counts:
                url = pg.create_database()
                prepare_postgres(url)
                replicas = start_replicas(tmp / f"pg{n}", broker.url, url, n, offline_after_s="3600")
                try:
                    results.append((f"{n} replica{'s' if n > 1 else ''}, PostgreSQL",
                                    measure(broker, replicas, lambda _, u=url: count_pg(u), args.events, pg_pid,
                                            url)))
                finally:
                    for r in replicas:
                        r.stop()
        finally:
            pg.stop()
            broker.stop()
    print(f"bench/scale: {args.events} events from {NODES} nodes per configuration, broker {broker.kind}, "
          f"{psutil.cpu_count()} cores, PostgreSQL from {bin_dir}")
    load = psutil.getloadavg()
    busy = load_before[0] > (psutil.cpu_count() or 1)  # after: the bench's own replicas are in it
    print(f"  machine load average (1 min) before {load_before[0]:.1f}, after {load[0]:.1f} on {psutil.cpu_count()} "
          "cores" + (": other work competed for the CPU and the figures are lower bounds" if busy
                     else ": quiet before the run (after includes the bench's own hubs)"))
    for name, r in results:
        for line in describe(name, r):
            print(line)
    base = results[0][1]["rate"]
    print("  ratios to 1 hub on SQLite: " + ", ".join(f"{name}: {r['rate'] / base:.2f}x" for name, r in results[1:]))
    lost = [name for name, r in results if r["stored"] < args.events]
    print(f"  lost: {'none' if not lost else ', '.join(lost)}")


if __name__ == "__main__":
    main()
