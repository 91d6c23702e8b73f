"""The single writer's cost per message, by kind: CPU microseconds per heartbeat, status and event when
the hub's writer (hub/ingest/writer.py) commits batches of them into a SQLite file, in process (no
broker, no network: a fake transport takes the acks and receipts). What a city's 2,000 heartbeats a
second cost the writer is this figure times 2,000.

    .venv/bin/python bench/writer_cost.py [--nodes 2000] [--batch 500] [--rounds 10] [--profile]

``--profile`` adds cProfile's top functions (cumulative) for the heartbeat rounds: where the rest goes.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.protocol import Event, Heartbeat, NodeStatus, Topics, utcnow  # noqa: E402
from hub.config import load_settings  # noqa: E402
from hub.ingest.writer import Incoming, Ingest  # noqa: E402
from hub.store.engine import init_db, make_engine  # noqa: E402


class NullTransport:
    connected = True
    connected_since = 0.0

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> bool:
        return True

    def ack(self, mid: int, qos: int) -> None:
        pass

    def start(self, on_message) -> None:  # noqa: ANN001
        pass

    def stop(self) -> None:
        pass


def messages(kind: str, nodes: list[str], round_no: int) -> list[Incoming]:
    now = utcnow()
    out = []
    for i, node in enumerate(nodes):
        if kind == "heartbeat":
            topic, payload, qos = Topics.heartbeat(node), Heartbeat(ts=now, uptime_s=round_no * 10 + i,
                                                                     outbox_depth=0).to_bytes(), 0
        elif kind == "status":
            topic, payload, qos = Topics.status(node), NodeStatus(state="online", kind="rental_door", version="1.0",
                                                                  ts=now).to_bytes(), 1
        else:
            topic = Topics.events(node)
            payload, qos = Event.make(node, "door.granted", {"slot": i % 40}).to_bytes(), 1
        out.append(Incoming(topic, payload, i + 1, qos, now))
    return out


def measure(ingest: Ingest, kind: str, nodes: list[str], batch: int, rounds: int,
            prof: cProfile.Profile | None = None) -> tuple[float, float]:
    """CPU and wall microseconds per message of ``kind``, ``batch`` messages a commit."""
    cpu = wall = 0.0
    n = 0
    for r in range(rounds):
        msgs = messages(kind, nodes, r)
        for i in range(0, len(msgs), batch):
            chunk = msgs[i:i + batch]
            c0, w0 = time.process_time(), time.perf_counter()
            if prof:
                prof.enable()
            ingest.handle_batch(chunk)
            if prof:
                prof.disable()
            cpu += time.process_time() - c0
            wall += time.perf_counter() - w0
            n += len(chunk)
    return cpu / n * 1e6, wall / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=500, help="messages per commit (the writer's MAX_BATCH)")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--profile", action="store_true", help="cProfile the heartbeat rounds")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pingan-writer-"))
    settings = load_settings(data_dir=tmp, mqtt_enabled=True)
    engine = make_engine(settings.db_url)
    init_db(engine)
    ingest = Ingest(settings, engine, lambda items: None, NullTransport())  # type: ignore[arg-type]
    nodes = [f"door-{i:05d}" for i in range(args.nodes)]
    measure(ingest, "status", nodes, args.batch, 1)  # births: every node known before the figures
    print(f"bench/writer_cost: {args.nodes} nodes, {args.batch} messages a commit, {args.rounds} rounds, SQLite")
    prof = cProfile.Profile() if args.profile else None
    for kind in ("heartbeat", "status", "event"):
        cpu, wall = measure(ingest, kind, nodes, args.batch, args.rounds, prof if kind == "heartbeat" else None)
        print(f"  {kind:9s}: {cpu:7.1f} us CPU, {wall:7.1f} us wall per message"
              f"   (1,000 a second: {cpu / 10:.1f} % of a core)")
    if prof:
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(25)
        print(s.getvalue())
    engine.dispose()


if __name__ == "__main__":
    main()
