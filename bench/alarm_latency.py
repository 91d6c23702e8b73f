"""Press-to-console latency: mock pin → node → mosquitto → hub (commit) → WebSocket client.

20 simulated poles (separate processes, as in the demo) are pressed in turn, 500 presses in all;
a WebSocket client on /api/live notes when each alarm arrives, and when its snapshot has been
stored (the console can show it). In the same run, the raw mosquitto QoS 1 publish→receive time
for an alarm-sized payload is measured between two paho clients.
Target (issue 3): p99 ≤ 100 ms with snapshot, and ≤ 20× the raw round trip.

    .venv/bin/python bench/alarm_latency.py [--presses 500] [--poles 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import websockets
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edge.protocol import Event, Topics  # noqa: E402
from hub.transport.broker import Broker  # noqa: E402
from tests.conftest import HubProc, NodeProc, wait_for  # noqa: E402


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def raw_round_trips(port: int, n: int) -> list[float]:
    payload = Event.make("pole-01", "alarm.pressed", {"count": 1, "place": "x" * 40, "grid": "G01"}).to_bytes()
    arrived: dict[int, float] = {}
    got = threading.Event()

    def on_message(client, userdata, msg) -> None:
        arrived[len(arrived)] = time.perf_counter()
        got.set()

    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="raw-sub", protocol=mqtt.MQTTv311)
    sub.on_message = on_message
    sub.connect("127.0.0.1", port)
    sub.subscribe(Topics.events("pole-01"), qos=1)
    sub.loop_start()
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="raw-pub", protocol=mqtt.MQTTv311)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    time.sleep(0.3)
    out = []
    for _ in range(n):
        got.clear()
        t0 = time.perf_counter()
        pub.publish(Topics.events("pole-01"), payload, qos=1)
        if not got.wait(5):
            raise SystemExit("raw message lost")
        out.append(time.perf_counter() - t0)
        time.sleep(0.002)
    for c in (pub, sub):
        c.disconnect()
        c.loop_stop()
    return out


COALESCE_S = 1.0  # the poles' alarm.coalesce_window_s: a press inside it is folded into the open alarm


async def presses(hub: HubProc, nodes: list[NodeProc], n: int) -> tuple[list[float], list[float]]:
    """Press the poles in turn; a pole is pressed again only after its coalesce window, however fast
    the machine goes round them (else the press is an alarm.repeat and no new alarm comes)."""
    last_press: dict[str, float] = {}
    alarm_at: dict[str, tuple[str, float]] = {}  # alarm id -> (node, arrival)
    snap_at: dict[str, float] = {}
    async with websockets.connect(hub.ws_url(), max_size=None) as ws:
        assert json.loads(await ws.recv())["type"] == "hello"

        async def reader() -> None:
            async for raw in ws:
                now = time.perf_counter()
                msg = json.loads(raw)
                if msg["type"] == "event" and msg["event"]["kind"] == "alarm.pressed":
                    alarm_at[msg["event"]["id"]] = (msg["event"]["node"], now)
                elif msg["type"] == "snapshot":
                    snap_at[msg["event_id"]] = now

        task = asyncio.create_task(reader())
        alarm_lat, snap_lat = [], []
        for i in range(n):
            node = nodes[i % len(nodes)]
            wait = last_press.get(node.node, -1e9) + COALESCE_S * 1.2 - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            last_press[node.node] = time.monotonic()
            seen = set(alarm_at)
            t0 = time.perf_counter()
            await asyncio.to_thread(node.control, cmd="hold")
            deadline = time.monotonic() + 10
            while True:
                new = [a for a in alarm_at if a not in seen and alarm_at[a][0] == node.node]
                if new and new[0] in snap_at:
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"press {i} on {node.node}: no alarm/snapshot within 10 s")
                await asyncio.sleep(0.001)
            alarm_lat.append(alarm_at[new[0]][1] - t0)
            snap_lat.append(snap_at[new[0]] - t0)
            await asyncio.to_thread(node.control, cmd="release")
            await asyncio.sleep(0.03)
            if (i + 1) % 100 == 0:
                print(f"  {i + 1}/{n} presses", flush=True)
        task.cancel()
    return alarm_lat, snap_lat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--presses", type=int, default=500)
    ap.add_argument("--poles", type=int, default=20)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pingan-bench-"))
    sim = Path(tempfile.mkdtemp(prefix="pingan-sim-"))
    broker = Broker(tmp / "broker").start()
    hub = HubProc(tmp, broker.url).start()
    nodes: list[NodeProc] = []
    try:
        for i in range(1, args.poles + 1):
            node = f"pole-{i:02d}"
            nodes.append(NodeProc(tmp, node, broker.url, sim, hub.register(node),
                                  alarm={"coalesce_window_s": COALESCE_S}, heartbeat_s=10).start())
        wait_for(lambda: sum(n["state"] == "online" for n in hub.get("/api/nodes")) == args.poles, 60,
                 message="poles online")
        print(f"{args.poles} poles online; pressing {args.presses} times", flush=True)
        alarm_lat, snap_lat = asyncio.run(presses(hub, nodes, args.presses))
        raw = raw_round_trips(broker.port, args.presses)
    finally:
        for n in nodes:
            n.stop()
        hub.stop()
        broker.stop()

    def ms(v: float) -> str:
        return f"{v * 1000:7.2f} ms"

    print(f"bench/alarm_latency: {args.presses} presses on {args.poles} poles, broker {broker.kind}")
    print(f"  press -> alarm on /api/live     p50 {ms(pct(alarm_lat, 50))}  p99 {ms(pct(alarm_lat, 99))}"
          f"  max {ms(max(alarm_lat))}")
    print(f"  press -> snapshot stored (live) p50 {ms(pct(snap_lat, 50))}  p99 {ms(pct(snap_lat, 99))}"
          f"  max {ms(max(snap_lat))}")
    print(f"  raw mosquitto QoS1 pub->recv    p50 {ms(pct(raw, 50))}  p99 {ms(pct(raw, 99))}")
    ratio = pct(snap_lat, 99) / pct(raw, 99)
    print(f"  p99 with snapshot / raw p99     {ratio:7.1f} x   (mean {statistics.mean(snap_lat) * 1000:.2f} ms)")
    ok = pct(snap_lat, 99) <= 0.100 and ratio <= 20
    print(f"  target p99 <= 100 ms with snapshot and <= 20x raw: {'MET' if ok else 'NOT MET'}")


if __name__ == "__main__":
    main()
