"""Many virtual nodes in one process, for district load tests (design.md "The demo").

Each virtual node is a real MQTT client (aiomqtt: asyncio, no thread per client) speaking the
contract: retained birth and last will, heartbeats, events, and an outbox that keeps every event
until the hub's receipt arrives. Sending is the agent's own ``Sender`` (edge/link/sender.py):
the receipt window, alarms first, resends with backoff and none while the hub's status says
offline. A simulator that resent everything every 10 s turned a 30-minute soak's backlog into a
storm of a million resends, which no real district would make. What it does not have is the
durable SQLite outbox and real pins: those are the agent's and are tested on their own.

    python -m edge.sim.fleet --broker mqtt://127.0.0.1:1883 --poles 200 --doors 1600 --seconds 120
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import random
import signal
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import urlparse

import aiomqtt

from edge.clock import SystemClock
from edge.link.outbox import Entry, event_key
from edge.link.sender import Sender
from edge.protocol import Event, Heartbeat, HubStatus, NodeStatus, Priority, Receipt, Topics, priority_of, utcnow
from edge.shared.aio import cancel_and_wait, wait_event

DOOR_EVENTS_PER_DAY = 50
RESEND_AFTER_S = 10.0  # the agent's defaults (edge/config.py OutboxConfig)
WINDOW = 64
CAMERA_DETECTION_EVERY_S = 60.0  # the stress profile: a camera point reports someone in its zone once a minute
BURST_SPREAD_S = 10.0  # a burst's presses come within this many seconds (a street incident, a drill)
NO_FULL_COLLECTIONS = 2**31 - 1  # a generation-2 threshold that is never reached


@dataclass
class Stats:
    made: int = 0
    receipted: int = 0
    resent: int = 0
    connected: int = 0
    alarms: list[tuple[str, float]] = field(default_factory=list)  # (event id, wall time made)
    loop_lags: list[float] = field(default_factory=list)  # seconds the event loop was late, sampled every 50 ms
    gc_pauses: list[tuple[int, float]] = field(default_factory=list)  # (generation, seconds) of each collection


async def watch_loop(stats: Stats, every_s: float = 0.05) -> None:
    """How late this process's event loop runs: a press waits for it before it is published."""
    loop = asyncio.get_running_loop()
    while True:
        t = loop.time()
        await asyncio.sleep(every_s)
        stats.loop_lags.append(max(0.0, loop.time() - t - every_s))


def watch_gc(stats: Stats) -> None:
    """Time every garbage collection: a full one over thousands of nodes' objects stalls the whole loop."""
    started: list[float] = []

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            started[:] = [time.perf_counter()]
        elif started:
            stats.gc_pauses.append((info["generation"], time.perf_counter() - started[0]))
    gc.callbacks.append(on_gc)


class MemoryOutbox:
    """The part of ``edge.link.outbox.Outbox`` the ``Sender`` reads, kept in memory: 2,000 SQLite files
    with an fsync per event would measure the simulator's disk, not the hub."""

    def __init__(self) -> None:
        self._by_class: dict[int, dict[str, Entry]] = {int(p): {} for p in Priority}  # each in seq order
        self._seq = 0

    def put(self, key: str, topic: str, payload: bytes, priority: Priority) -> None:
        self._seq += 1
        self._by_class[int(priority)][key] = Entry(self._seq, key, int(priority), topic, payload, 1)

    def fresh(self, priority: int, after_seq: int, limit: int) -> list[Entry]:
        return list(itertools.islice((e for e in self._by_class[priority].values() if e.seq > after_seq), limit))

    def remove(self, keys: list[str]) -> int:
        return sum(self.dead_letter(k, "") is not None for k in keys)

    def dead_letter(self, key: str, reason: str) -> Entry | None:
        for entries in self._by_class.values():
            if key in entries:
                return entries.pop(key)
        return None

    def __len__(self) -> int:
        return sum(len(e) for e in self._by_class.values())


class VirtualNode:
    def __init__(self, node_id: str, kind: str, host: str, port: int, stats: Stats, *,
                 heartbeat_s: float, speedup: float, press_every_s: float | None,
                 camera_every_s: float = CAMERA_DETECTION_EVERY_S) -> None:
        self.id, self.kind = node_id, kind
        self.host, self.port = host, port
        self.stats = stats
        self.heartbeat_s = heartbeat_s
        self.speedup = speedup
        self.press_every_s = press_every_s
        self.camera_every_s = camera_every_s
        self.making = True  # cleared at the end of a run, so the drain only drains
        self.outbox = MemoryOutbox()
        self._outgoing: list[tuple[str, bytes, int]] = []
        self.sender = Sender(self.outbox, self._queue_publish, SystemClock(),  # type: ignore[arg-type]
                             window=WINDOW, resend_after=RESEND_AFTER_S)
        self._wake = asyncio.Event()
        self.started = time.monotonic()

    @property
    def pending(self) -> int:
        return len(self.outbox)

    def _queue_publish(self, topic: str, payload: bytes, qos: int) -> int:
        """The Sender publishes synchronously (paho); here each publish is awaited right after ``pump``."""
        self._outgoing.append((topic, payload, qos))
        return len(self._outgoing)

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
        await client.subscribe([(Topics.receipts(self.id), 1), (Topics.HUB_STATUS, 1)])
        self.sender.reset()  # everything unreceipted goes again, alarms first, within the window
        self._wake.set()
        tasks = [asyncio.create_task(c) for c in (self._messages(client), self._heartbeats(client),
                                                  self._events(), self._pump(client))]
        stopper = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                if t is not stopper and t.exception():
                    raise t.exception()  # type: ignore[misc]
        finally:
            # no task may outlive its session: a send loop left running took presses onto the dead connection
            await cancel_and_wait([*tasks, stopper])

    async def _messages(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else b""
            if message.topic.matches(Topics.HUB_STATUS):
                self.sender.hub_online = HubStatus.model_validate_json(payload).state == "online"
            else:
                receipt = Receipt.model_validate_json(payload)
                self.stats.receipted += self.sender.receipted([event_key(i) for i in receipt.ids])
                for item in receipt.rejected:
                    if self.sender.rejected(event_key(item.id), item.reason) is not None:
                        self.stats.receipted += 1
            self._wake.set()

    async def _pump(self, client: aiomqtt.Client) -> None:
        while True:
            if self.pending:  # something unreceipted: look again in a while for what is due a resend
                await wait_event(self._wake, RESEND_AFTER_S / 4)
            else:  # nothing to resend: sleep until an event is made (18,000 idle nodes woke 7,200 times a second)
                await self._wake.wait()
            self._wake.clear()
            before = self.sender.resent_total
            self.sender.pump()
            self.stats.resent += self.sender.resent_total - before
            outgoing, self._outgoing = self._outgoing, []
            # handed to paho in order, PUBACKs awaited together (a lost connection ends the session: reset, resend)
            await asyncio.gather(*(client.publish(t, p, qos=q) for t, p, q in outgoing))

    async def _heartbeats(self, client: aiomqtt.Client) -> None:
        await asyncio.sleep(random.random() * self.heartbeat_s)
        while True:
            hb = Heartbeat(ts=utcnow(), uptime_s=time.monotonic() - self.started, outbox_depth=self.pending)
            await client.publish(Topics.heartbeat(self.id), hb.to_bytes(), qos=0)
            await asyncio.sleep(self.heartbeat_s)

    async def _events(self) -> None:
        if self.kind == "rental_door":
            mean_gap = 86400 / DOOR_EVENTS_PER_DAY / self.speedup
        elif self.kind == "camera":
            mean_gap = self.camera_every_s
        elif self.press_every_s:
            mean_gap = self.press_every_s
        else:
            return
        while self.making:
            await asyncio.sleep(random.expovariate(1 / mean_gap))
            if not self.making:
                return
            if self.kind == "rental_door":
                kind = "door.granted" if random.random() > 0.05 else "door.denied"
                event = Event.make(self.id, kind, {"slot": random.randint(0, 40), "sim": True})
            elif self.kind == "camera":
                event = Event.make(self.id, "detection.person", {"zone": "street", "score": 0.8, "sim": True})
            else:
                self.press()
                continue
            self._send(event)

    def press(self) -> None:
        """A resident presses the button (the background rate, or one of a burst's presses)."""
        event = Event.make(self.id, "alarm.pressed", {"count": 1, "sim": True})
        self.stats.alarms.append((str(event.id), time.time()))
        self._send(event)

    def _send(self, event: Event) -> None:
        self.outbox.put(event_key(str(event.id)), Topics.events(self.id), event.to_bytes(), priority_of(event.kind))
        self.stats.made += 1
        self._wake.set()


async def bursts(poles: list[VirtualNode], first_at: float, every: float, n: int, until: float) -> None:
    """``n`` presses on random poles within BURST_SPREAD_S, at ``first_at`` seconds and every ``every`` after."""
    start = time.monotonic()
    at = first_at
    while poles and n > 0 and at < until:
        await asyncio.sleep(max(0.0, start + at - time.monotonic()))
        offsets = sorted(random.uniform(0, BURST_SPREAD_S) for _ in range(n))
        t0 = time.monotonic()
        for off in offsets:
            await asyncio.sleep(max(0.0, t0 + off - time.monotonic()))
            random.choice(poles).press()
        if every <= 0:
            return
        at += every


async def settle_heap(stats: Stats, nodes: int, wait_s: float = 60) -> None:
    """Once the nodes are connected, move what they hold (clients, sockets, tasks: millions of objects for
    thousands of nodes) out of the garbage collector's sight. Scanning them in full collections stalled the
    loop for up to 0.8 s at 5,000 nodes a process, and every press waiting on the loop with it: a simulator
    artefact, since a real node is one Pi with a small heap. After the freeze the full collections still ran
    (timers and futures living a few seconds reach generation 2), took 0.1-0.2 s each and freed nothing, so
    they are turned off; the young generations are still collected."""
    deadline = time.monotonic() + wait_s
    while stats.connected < nodes and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, NO_FULL_COLLECTIONS)
    await asyncio.sleep(0.2)  # the loop-lag sample that spans the collection above is dropped too
    stats.loop_lags.clear()  # what a press can meet from here on, not the connection storm's
    stats.gc_pauses.clear()


async def run_fleet(broker_url: str, poles: int, doors: int, seconds: float, *, cameras: int = 0, prefix: str = "",
                    heartbeat_s: float = 10, speedup: float = 100, press_every_s: float | None = 30,
                    camera_every_s: float = CAMERA_DETECTION_EVERY_S, burst: int = 0, burst_at: float = 60,
                    burst_every: float = 0, report=None) -> Stats:
    u = urlparse(broker_url)
    stats = Stats()
    stop = asyncio.Event()
    nodes = [VirtualNode(f"{prefix}pole-{i:04d}", "alarm_post", u.hostname or "127.0.0.1", u.port or 1883, stats,
                         heartbeat_s=heartbeat_s, speedup=speedup, press_every_s=press_every_s)
             for i in range(poles)]
    nodes += [VirtualNode(f"{prefix}door-{i:04d}", "rental_door", u.hostname or "127.0.0.1", u.port or 1883, stats,
                          heartbeat_s=heartbeat_s, speedup=speedup, press_every_s=None) for i in range(doors)]
    nodes += [VirtualNode(f"{prefix}cam-{i:04d}", "camera", u.hostname or "127.0.0.1", u.port or 1883, stats,
                          heartbeat_s=heartbeat_s, speedup=speedup, press_every_s=None,
                          camera_every_s=camera_every_s) for i in range(cameras)]
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    watch_gc(stats)
    lag_watch = asyncio.create_task(watch_loop(stats))
    tasks = []
    for n in nodes:  # connect gradually, as a district powering up would
        tasks.append(asyncio.create_task(n.run(stop)))
        await asyncio.sleep(0.001)
    await settle_heap(stats, len(nodes))
    deadline = time.monotonic() + seconds
    burster = asyncio.create_task(bursts(nodes[:poles], burst_at, burst_every, burst, seconds))
    while time.monotonic() < deadline and not stop.is_set():
        await asyncio.sleep(1)
        if report:
            report(stats)
    # stop making events, give the last receipts time to come
    await cancel_and_wait([burster, lag_watch])
    for n in nodes:
        n.making = False
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
    ap.add_argument("--press-every", type=float, default=30,
                    help="mean seconds between presses per pole (0: none but the bursts)")
    ap.add_argument("--camera-every", type=float, default=CAMERA_DETECTION_EVERY_S,
                    help="mean seconds between a camera point's detections")
    ap.add_argument("--heartbeat-every", type=float, default=10)
    ap.add_argument("--burst", type=int, default=0, help="presses in one burst (within 10 s, on random poles)")
    ap.add_argument("--burst-at", type=float, default=60, help="seconds into the run of the first burst")
    ap.add_argument("--burst-every", type=float, default=0, help="seconds between bursts (0: one burst)")
    args = ap.parse_args()
    stats = asyncio.run(run_fleet(args.broker, args.poles, args.doors, args.seconds, cameras=args.cameras,
                                  prefix=args.prefix, heartbeat_s=args.heartbeat_every,
                                  speedup=args.speedup, press_every_s=args.press_every or None,
                                  camera_every_s=args.camera_every, burst=args.burst, burst_at=args.burst_at,
                                  burst_every=args.burst_every))
    json.dump({"made": stats.made, "receipted": stats.receipted, "resent": stats.resent,
               "alarms": stats.alarms, "loop_lags": stats.loop_lags, "gc_pauses": stats.gc_pauses}, sys.stdout)


if __name__ == "__main__":
    main()
