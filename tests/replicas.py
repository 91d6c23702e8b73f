"""Hub replicas on one PostgreSQL and one mosquitto, and a crowd of nodes that resend like the real outbox.

Used by tests/hub/test_replicas.py and bench/scale.py. Each replica is a real ``pingan-hub serve``
process (own data dir, own HTTP port, client id ``pingan-hub-<name>``) with
``PINGAN_SHARE_GROUP=pingan-hub``; they share ``PINGAN_SECRET_KEY`` so any of them can sign
commands for any node.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.fernet import Fernet
from paho.mqtt.enums import CallbackAPIVersion

from edge.protocol import Event, Receipt, Topics
from tests.conftest import ADMIN, HubProc, Proc, wait_for

SHARE_GROUP = "pingan-hub"


def prepare_postgres(url: str) -> None:
    """What an operator does once: `pingan-hub db upgrade`, then the first admin (in-process: faster)."""
    from hub.auth.service import Auth
    from hub.store import migrate as db
    from hub.store.engine import make_engine

    engine = make_engine(url)
    try:
        db.upgrade(engine)
        Auth(engine).add_user(*ADMIN, "admin", actor="tests")
    finally:
        engine.dispose()


class ReplicaProc(HubProc):
    """One hub replica: like the tests' HubProc, but on PostgreSQL, in its own folder, in a share group."""

    def __init__(self, tmp: Path, name: str, broker_url: str, database_url: str, secret_key: str,
                 **settings: str) -> None:
        folder = tmp / f"replica-{name}"
        folder.mkdir(parents=True, exist_ok=True)
        defaults = {"database_url": database_url, "replica": name, "share_group": SHARE_GROUP,
                    "secret_key": secret_key}
        super().__init__(folder, broker_url, **{**defaults, **settings})
        self.name = name

    def start(self) -> ReplicaProc:  # the admin is in PostgreSQL already (prepare_postgres)
        Proc.start(self)
        wait_for(self._healthy, 30, 0.1, f"replica {self.name} health at {self.url}\n{self.output()[-2000:]}")
        self.token = self.login(*ADMIN)
        return self

    def counter(self, name: str, **labels: str) -> float:
        """A counter from this replica's /metrics (0 when absent)."""
        want = ",".join(f'{k}="{v}"' for k, v in labels.items())
        pattern = re.compile(rf"^{re.escape(name)}(?:\{{{re.escape(want)}\}})? ([0-9.e+]+)$", re.M)
        m = pattern.search(self.metrics())
        return float(m.group(1)) if m else 0.0


def start_replicas(tmp: Path, broker_url: str, database_url: str, n: int, **settings: str) -> list[ReplicaProc]:
    key = Fernet.generate_key().decode()
    replicas = [ReplicaProc(tmp, chr(ord("a") + i), broker_url, database_url, key, **settings) for i in range(n)]
    for r in replicas:
        r.start()
    return replicas


class Crowd:
    """Many nodes on one MQTT connection: events kept until the hub's receipt, resent after ``resend_s``.

    The same rule as the node's outbox (design.md, "End-to-end receipts"), without its SQLite file,
    so thousands of events can be made quickly. ``kind`` is the event kind every event has.
    """

    def __init__(self, port: int, nodes: int = 50, resend_s: float = 3.0, kind: str = "detection.person",
                 prefix: str = "pole", names: list[str] | None = None) -> None:
        self.nodes = names or [f"{prefix}-{i:03d}" for i in range(nodes)]
        self.resend_s = resend_s
        self.kind = kind
        self.pending: dict[str, tuple[str, bytes, float]] = {}
        self.receipted: set[str] = set()
        self.made: list[str] = []
        self.resent = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"crowd-{prefix}-{time.time_ns()}",
                                  protocol=mqtt.MQTTv311)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.on_message = self._on_receipt
        self.client.on_connect = self._on_connect
        self._subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        # no event before the receipts subscription holds: a receipt published earlier is dropped by the
        # broker, and with resends off the test would wait for it forever (seen once in CI under load)
        if not self._subscribed.wait(10):
            raise AssertionError("the crowd's receipts subscription was not acknowledged in 10 s")
        self._resender = threading.Thread(target=self._resend_loop, daemon=True)
        self._resender.start()

    def _on_connect(self, client: mqtt.Client, *args: Any) -> None:
        client.subscribe([(Topics.receipts(n), 1) for n in self.nodes])

    def _on_receipt(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        receipt = Receipt.model_validate_json(msg.payload)
        with self._lock:
            for event_id in receipt.ids:
                self.pending.pop(event_id, None)
                self.receipted.add(event_id)

    def send(self, count: int, per_second: float | None = None, data: dict[str, Any] | None = None) -> list[str]:
        """Publish ``count`` new events round-robin over the nodes (optionally paced); returns their ids."""
        ids = []
        start = time.monotonic()
        for i in range(count):
            node = self.nodes[i % len(self.nodes)]
            event = Event.make(node, self.kind, {"n": len(self.made), **(data or {})})
            topic, payload = Topics.events(node), event.to_bytes()
            with self._lock:
                self.pending[str(event.id)] = (topic, payload, time.monotonic())
                self.made.append(str(event.id))
            self.client.publish(topic, payload, qos=1)
            ids.append(str(event.id))
            if per_second:
                ahead = start + (i + 1) / per_second - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
        return ids

    def _resend_loop(self) -> None:
        while not self._stop.wait(self.resend_s / 3):
            now = time.monotonic()
            with self._lock:
                due = [(i, t, p) for i, (t, p, sent) in self.pending.items() if now - sent >= self.resend_s]
                for event_id, topic, payload in due:
                    self.pending[event_id] = (topic, payload, now)
            for _, topic, payload in due:
                self.client.publish(topic, payload, qos=1)
            self.resent += len(due)

    def unreceipted(self) -> int:
        with self._lock:
            return len(self.pending)

    def close(self) -> None:
        self._stop.set()
        self.client.disconnect()
        self.client.loop_stop()
