"""Many virtual nodes in one process, for district load tests (design.md "The demo").

Each virtual node is a real MQTT client (aiomqtt: asyncio, no thread per client) speaking the
contract: retained birth and last will, heartbeats, events, and an in-memory outbox that keeps
every event until the hub's receipt arrives and resends what has none. What it does not have
is the durable SQLite outbox and real pins: those are the agent's and are tested on their own.

    python -m edge.sim.fleet --broker mqtt://127.0.0.1:1883 --poles 200 --doors 1600 --seconds 120
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import urlparse

import aiomqtt

from edge.protocol import Event, Heartbeat, NodeStatus, Receipt, Topics, utcnow

DOOR_EVENTS_PER_DAY = 50
RESEND_AFTER_S = 10.0
CAMERA_DETECTION_EVERY_S = 60.0  # a camera point reports someone in its zone about once a minute


@dataclass
class Stats:
    made: int = 0
    receipted: int = 0
    resent: int = 0
    connected: int = 0
    alarms: list[tuple[str, float]] = field(default_factory=list)  # (event id, wall time made)


class VirtualNode:
    def __init__(self, node_id: str, kind: str, host: str, port: int, stats: Stats, *,
                 heartbeat_s: float, speedup: float, press_every_s: float | None) -> None:
        self.id, self.kind = node_id, kind
        self.host, self.port = host, port
        self.stats = stats
        self.heartbeat_s = heartbeat_s
        self.speedup = speedup
        self.press_every_s = press_every_s
        self.pending: dict[str, tuple[str, bytes, float]] = {}  # event id -> (topic, payload, sent at)
        self.alarm_ids: set[str] = set()  # pending alarms go first, as the agent's outbox classes say
        self.started = time.monotonic()

    async def run(self, stop: asyncio.Event) -> None:
        will = aiomqtt.Will(Topics.status(self.id), NodeStatus(state="offline", kind=self.kind).to_bytes(), 1, True)
        while not stop.is_set():
            try:
                async with aiomqtt.Client(self.host, self.port, identifier=self.id, will=will, keepalive=30,
                                          clean_session=False, protocol=aiomqtt.ProtocolVersion.V311,
                                          max_queued_outgoing_messages=10_000) as client:
                    self.stats.connected += 1
                    try:
                        await self._session(client, stop)
                    finally:
                        self.stats.connected -= 1
            except aiomqtt.MqttError:
                await asyncio.sleep(1 + random.random() * 2)  # broker restarting: back off with jitter

    async def _session(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        await client.publish(Topics.status(self.id), NodeStatus(state="online", kind=self.kind, ts=utcnow()).to_bytes(),
                             qos=1, retain=True)
        await client.subscribe(Topics.receipts(self.id), qos=1)
        for _, (topic, payload, _) in self._in_class_order():  # everything unreceipted goes again, alarms first
            await client.publish(topic, payload, qos=1)
        tasks = [asyncio.create_task(c) for c in (self._receipts(client), self._heartbeats(client),
                                                  self._events(client), self._resends(client))]
        stopper = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                if t is not stopper and t.exception():
                    raise t.exception()  # type: ignore[misc]
        finally:
            for t in [*tasks, stopper]:
                t.cancel()

    async def _receipts(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            receipt = Receipt.model_validate_json(message.payload)  # type: ignore[arg-type]
            for event_id in receipt.ids + [r.id for r in receipt.rejected]:
                if self.pending.pop(event_id, None) is not None:
                    self.alarm_ids.discard(event_id)
                    self.stats.receipted += 1

    async def _heartbeats(self, client: aiomqtt.Client) -> None:
        await asyncio.sleep(random.random() * self.heartbeat_s)
        while True:
            hb = Heartbeat(ts=utcnow(), uptime_s=time.monotonic() - self.started, outbox_depth=len(self.pending))
            await client.publish(Topics.heartbeat(self.id), hb.to_bytes(), qos=0)
            await asyncio.sleep(self.heartbeat_s)

    async def _events(self, client: aiomqtt.Client) -> None:
        if self.kind == "rental_door":
            mean_gap = 86400 / DOOR_EVENTS_PER_DAY / self.speedup
        elif self.kind == "camera":
            mean_gap = CAMERA_DETECTION_EVERY_S
        elif self.press_every_s:
            mean_gap = self.press_every_s
        else:
            return
        while True:
            await asyncio.sleep(random.expovariate(1 / mean_gap))
            if self.kind == "rental_door":
                kind = "door.granted" if random.random() > 0.05 else "door.denied"
                event = Event.make(self.id, kind, {"slot": random.randint(0, 40), "sim": True})
            elif self.kind == "camera":
                event = Event.make(self.id, "detection.person", {"zone": "street", "score": 0.8, "sim": True})
            else:
                event = Event.make(self.id, "alarm.pressed", {"count": 1, "sim": True})
                self.stats.alarms.append((str(event.id), time.time()))
            await self._send(client, event)

    def _in_class_order(self) -> list[tuple[str, tuple[str, bytes, float]]]:
        """Pending events, alarms before everything else, oldest first within each."""
        return sorted(self.pending.items(), key=lambda kv: (kv[0] not in self.alarm_ids, kv[1][2]))

    async def _send(self, client: aiomqtt.Client, event: Event) -> None:
        topic, payload = Topics.events(self.id), event.to_bytes()
        if event.kind.startswith("alarm."):
            self.alarm_ids.add(str(event.id))
        self.pending[str(event.id)] = (topic, payload, time.monotonic())
        self.stats.made += 1
        await client.publish(topic, payload, qos=1)

    async def _resends(self, client: aiomqtt.Client) -> None:
        while True:
            await asyncio.sleep(RESEND_AFTER_S / 2)
            now = time.monotonic()
            for event_id, (topic, payload, sent) in self._in_class_order():
                if now - sent >= RESEND_AFTER_S:
                    self.pending[event_id] = (topic, payload, now)
                    self.stats.resent += 1
                    await client.publish(topic, payload, qos=1)


async def run_fleet(broker_url: str, poles: int, doors: int, seconds: float, *, cameras: int = 0, prefix: str = "",
                    heartbeat_s: float = 10, speedup: float = 100, press_every_s: float | None = 30,
                    report=None) -> Stats:
    u = urlparse(broker_url)
    stats = Stats()
    stop = asyncio.Event()
    nodes = [VirtualNode(f"{prefix}pole-{i:04d}", "alarm_post", u.hostname or "127.0.0.1", u.port or 1883, stats,
                         heartbeat_s=heartbeat_s, speedup=speedup, press_every_s=press_every_s)
             for i in range(poles)]
    nodes += [VirtualNode(f"{prefix}door-{i:04d}", "rental_door", u.hostname or "127.0.0.1", u.port or 1883, stats,
                          heartbeat_s=heartbeat_s, speedup=speedup, press_every_s=None) for i in range(doors)]
    nodes += [VirtualNode(f"{prefix}cam-{i:04d}", "camera", u.hostname or "127.0.0.1", u.port or 1883, stats,
                          heartbeat_s=heartbeat_s, speedup=speedup, press_every_s=None) for i in range(cameras)]
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tasks = []
    for n in nodes:  # connect gradually, as a district powering up would
        tasks.append(asyncio.create_task(n.run(stop)))
        await asyncio.sleep(0.001)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not stop.is_set():
        await asyncio.sleep(1)
        if report:
            report(stats)
    # stop making events, give the last receipts time to come
    for n in nodes:
        n.press_every_s = None
    drain_deadline = time.monotonic() + 30
    while any(n.pending for n in nodes) and time.monotonic() < drain_deadline:
        await asyncio.sleep(0.5)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    ap.add_argument("--poles", type=int, default=200)
    ap.add_argument("--doors", type=int, default=1600)
    ap.add_argument("--cameras", type=int, default=200, help="camera points (detections only)")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--prefix", default="", help="node id prefix, to run several simulators side by side")
    ap.add_argument("--speedup", type=float, default=100, help="door events: 50/day compressed this much")
    ap.add_argument("--press-every", type=float, default=30, help="mean seconds between presses per pole")
    args = ap.parse_args()
    stats = asyncio.run(run_fleet(args.broker, args.poles, args.doors, args.seconds, cameras=args.cameras,
                                  prefix=args.prefix,
                                  speedup=args.speedup, press_every_s=args.press_every))
    json.dump({"made": stats.made, "receipted": stats.receipted, "resent": stats.resent,
               "alarms": stats.alarms}, sys.stdout)


if __name__ == "__main__":
    main()
