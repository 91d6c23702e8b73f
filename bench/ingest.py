"""Sustained ingest: events/s the hub persists (none lost), against the raw broker→subscriber rate.

Publishers play 20 nodes and queue N valid events at the broker for the hub's persistent session
while the hub is away; the figure is how fast the hub then drains them into its SQLite file
(validated, deduplicated, committed, acked, receipted). The raw rate is a bare paho subscriber
draining the same backlog on the same broker, in the same run: the ceiling for one MQTT client.
Target (issue 3): ≥ 5,000 events/s and ≥ 30 % of raw.

    .venv/bin/python bench/ingest.py [--events 20000]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.protocol import Event, Topics  # noqa: E402
from hub.transport.broker import Broker  # noqa: E402
from tests.conftest import HubProc, wait_for  # noqa: E402

NODES = 20


def make_payloads(n: int) -> list[tuple[str, bytes]]:
    out = []
    for i in range(n):
        node = f"pole-{i % NODES:02d}"
        out.append((Topics.events(node), Event.make(node, "detection.person", {"n": i, "zone": "lane"}).to_bytes()))
    return out


def publish_all(port: int, payloads: list[tuple[str, bytes]], clients: int = 4, wait_s: float = 60) -> float:
    """Publish from ``clients`` clients at once; returns when the broker has PUBACKed all (seconds taken)."""
    chunks = [payloads[i::clients] for i in range(clients)]
    t0 = time.perf_counter()

    def run(chunk: list[tuple[str, bytes]], idx: int) -> None:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{idx}-{time.time_ns()}",
                        protocol=mqtt.MQTTv311)
        c.max_inflight_messages_set(1000)
        c.connect("127.0.0.1", port)
        c.loop_start()
        infos = [c.publish(t, p, qos=1) for t, p in chunk]
        for info in infos:
            info.wait_for_publish(wait_s)
        c.disconnect()
        c.loop_stop()

    threads = [threading.Thread(target=run, args=(ch, i)) for i, ch in enumerate(chunks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def raw_rate(port: int, payloads: list[tuple[str, bytes]]) -> float:
    """A bare paho subscriber (persistent session) draining the same backlog."""
    count = 0
    first = last = 0.0
    done = threading.Event()

    def on_message(client, userdata, msg) -> None:
        nonlocal count, first, last
        count += 1
        last = time.perf_counter()
        if count == 1:
            first = last
        if count == len(payloads):
            done.set()

    def client() -> mqtt.Client:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-raw-sub", clean_session=False,
                        protocol=mqtt.MQTTv311)
        c.on_message = on_message
        return c

    sub = client()
    sub.connect("127.0.0.1", port)
    sub.subscribe("pingan/v1/nodes/+/events", qos=1)
    sub.loop_start()
    time.sleep(0.3)
    sub.disconnect()
    sub.loop_stop()
    publish_all(port, payloads)  # queued by the broker for the absent subscriber
    sub = client()
    sub.connect("127.0.0.1", port)
    sub.loop_start()
    if not done.wait(300):
        raise SystemExit(f"raw subscriber got only {count}/{len(payloads)}")
    sub.disconnect()
    sub.loop_stop()
    return (len(payloads) - 1) / (last - first)


def hub_rate(tmp: Path, broker_url: str, port: int, payloads: list[tuple[str, bytes]]) -> tuple[float, int]:
    """The hub drains the same backlog: from its first stored event to its last commit."""
    hub = HubProc(tmp, broker_url).start()  # makes its persistent session
    hub.stop()
    publish_all(port, payloads)
    db = hub.data_dir / "hub.db"

    def stored() -> int:
        con = sqlite3.connect(db, timeout=30)
        try:
            return con.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        finally:
            con.close()

    hub.start()
    try:
        wait_for(lambda: stored() > 0, timeout=60, interval=0.005, message="first event stored")
        t0 = time.perf_counter()
        first = stored()
        wait_for(lambda: stored() >= len(payloads), timeout=300, interval=0.01, message="all events stored")
        elapsed = time.perf_counter() - t0
        return (len(payloads) - first) / elapsed, stored()
    finally:
        hub.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=20_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="pingan-bench-") as tmp:
        broker = Broker(Path(tmp) / "broker").start()
        try:
            raw = raw_rate(broker.port, make_payloads(args.events))
            rate, stored = hub_rate(Path(tmp), broker.url, broker.port, make_payloads(args.events))
        finally:
            broker.stop()
    print(f"bench/ingest: {args.events} events from {NODES} nodes, broker {broker.kind}")
    print(f"  raw broker->subscriber : {raw:8.0f} msg/s")
    print(f"  hub persisted          : {rate:8.0f} events/s  (stored {stored}, lost {args.events - stored})")
    print(f"  hub / raw              : {rate / raw * 100:7.1f} %")
    ok = rate >= 5000 and rate / raw >= 0.30 and stored == args.events
    print(f"  target >= 5000 ev/s and >= 30 % of raw: {'MET' if ok else 'NOT MET'}")


if __name__ == "__main__":
    main()
