"""Hub replicas on one PostgreSQL: live fan-out across replicas and one leader for singleton jobs.

**Live fan-out: PostgreSQL LISTEN/NOTIFY**, not a second, non-shared MQTT subscription. Every
producer of live items (ingest after its commit, an operator's alarm change, escalation) sends
them with ``pg_notify`` in its own short transaction, after the data's commit; every replica
LISTENs and pushes them to the consoles connected to it. Why NOTIFY: it carries what the
*database* committed (a non-shared subscription would show consoles an event before, or
without, any replica storing it, and would make every replica parse the whole city's traffic),
it also carries changes that never pass through MQTT (acks, escalations), and it is ordered
by commit. A payload is at most 8000 bytes: items are sent in chunks, and an oversized item is
cut to its reference (the console fetches the rest).

**Leader: a PostgreSQL advisory lock** held on a dedicated connection. Only the holder runs the
jobs that must not run twice: offline detection, alarm.ack resends (so a command goes out once
per attempt), escalation, report roll-ups, Home Assistant sync; and it alone stores node statuses
(every replica hears each one: they are retained, so not on the shared subscription; a new leader
subscribes to them again and the broker hands every retained status over anew). A killed leader's connection
closes, the server drops its lock, and another replica takes it at its next try (``TRY_EVERY_S``).

With SQLite there is one hub process: it is the leader and fans out in process.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine

from hub.live.fanout import LiveHub

log = logging.getLogger(__name__)
CHANNEL = "pingan_live"
LEADER_LOCK = 0x70696E67616E  # "pingan": the advisory lock key of the singleton jobs
TRY_EVERY_S = 2.0
NOTIFY_MAX = 7900  # PostgreSQL's limit is 8000 bytes


def _conninfo(engine: Engine) -> str:
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def chunks(items: list[dict[str, Any]], limit: int = NOTIFY_MAX) -> list[str]:
    """JSON arrays of whole items, each under ``limit`` bytes; an item too big alone is cut to a reference."""
    out: list[str] = []
    current: list[str] = []
    size = 2
    for item in items:
        text = json.dumps(item, default=str, separators=(",", ":"))
        if len(text.encode()) + 2 > limit:
            text = json.dumps(_reference(item), default=str, separators=(",", ":"))
            if len(text.encode()) + 2 > limit:
                log.warning("live item too big for NOTIFY even as a reference; not fanned out: %s", text[:200])
                continue
        n = len(text.encode()) + 1
        if current and size + n > limit:
            out.append("[" + ",".join(current) + "]")
            current, size = [], 2
        current.append(text)
        size += n
    if current:
        out.append("[" + ",".join(current) + "]")
    return out


def _reference(item: dict[str, Any]) -> dict[str, Any]:
    slim = {k: v for k, v in item.items() if k not in ("event",)}
    event = item.get("event")
    if isinstance(event, dict):
        slim["event"] = {k: event.get(k) for k in ("id", "node", "kind", "ts", "received_at")}
        slim["truncated"] = True
    if isinstance(slim.get("alarm"), dict):
        slim["alarm"] = {k: slim["alarm"].get(k) for k in ("id", "node", "kind", "state", "raised_at")}
    return slim


class Cluster:
    """The replica's view of the others: ``relay`` for live items, ``is_leader`` for singleton jobs."""

    def __init__(self, engine: Engine, live: LiveHub, replica: str) -> None:
        self.engine = engine
        self.live = live
        self.replica = replica
        self.postgres = engine.dialect.name == "postgresql"
        self._leader = not self.postgres
        self._stop = threading.Event()
        self._outbox: queue.Queue[list[dict[str, Any]] | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._lock_conn: Any = None
        self.listening = threading.Event()
        # every replica sees every relayed item here (its own too): live-view replies must reach the replica
        # whose operator waits for the node's SDP answer, whichever replica ingested the reply
        self.on_items: Callable[[list[dict[str, Any]]], None] | None = None
        self.on_lead: Callable[[], None] | None = None  # this replica has just become the leader
        if not self.postgres:
            self.listening.set()

    # --- leader ----------------------------------------------------------------------------------
    def is_leader(self) -> bool:
        return self._leader

    def _try_lead(self) -> None:
        import psycopg

        try:
            if self._lock_conn is None or self._lock_conn.closed:
                if self._leader:
                    log.warning("replica %s lost its leader connection (and with it the lock)", self.replica)
                self._leader = False  # a new connection holds no lock
                self._lock_conn = psycopg.connect(_conninfo(self.engine), autocommit=True, connect_timeout=5)
            if self._leader:
                self._lock_conn.execute("SELECT 1")  # still connected, so still holding the lock
                return
            got = self._lock_conn.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,)).fetchone()
            if got and got[0]:
                self._leader = True
                log.info("replica %s leads the singleton jobs (offline detection, resends, escalation, node "
                         "statuses)", self.replica)
                if self.on_lead is not None:
                    try:
                        self.on_lead()
                    except Exception:  # noqa: BLE001 - still the leader; the retained statuses come at a reconnect
                        log.exception("replica %s: taking over as leader failed in part", self.replica)
        except Exception as exc:  # noqa: BLE001 - lost the database: no longer leader, try again later
            if self._leader:
                log.warning("replica %s lost the leader lock: %s", self.replica, exc)
            self._leader = False
            self._close_lock_conn()

    def _close_lock_conn(self) -> None:
        if self._lock_conn is not None:
            try:
                self._lock_conn.close()
            except Exception:  # noqa: BLE001
                pass
            self._lock_conn = None

    def _lead_loop(self) -> None:
        while not self._stop.wait(TRY_EVERY_S):
            self._try_lead()

    # --- live fan-out ----------------------------------------------------------------------------
    def relay(self, items: list[dict[str, Any]]) -> None:
        """Hand live items to every replica's consoles (never blocks: a sender thread notifies)."""
        self._outbox.put(items)

    def _send_loop(self) -> None:
        from sqlalchemy import func, select

        while True:
            items = self._outbox.get()
            if items is None:
                return
            batch = [items]
            while True:  # whatever else is waiting goes in the same transaction
                try:
                    more = self._outbox.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._outbox.put(None)
                    break
                batch.append(more)
            payloads = chunks([i for b in batch for i in b])
            try:
                with self.engine.begin() as conn:
                    for payload in payloads:
                        conn.execute(select(func.pg_notify(CHANNEL, payload)))
            except Exception:  # noqa: BLE001 - consoles catch up with ?since= when they reconnect
                log.exception("live fan-out (NOTIFY) failed; %d items not pushed", sum(len(b) for b in batch))

    def _listen_loop(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(_conninfo(self.engine), autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            try:
                                items = json.loads(note.payload)
                                if self.on_items is not None:
                                    self.on_items(items)
                                self.live.fanout_threadsafe(items)
                            except ValueError:
                                log.warning("unreadable live notification: %.200s", note.payload)
            except Exception as exc:  # noqa: BLE001 - database restarting: listen again
                self.listening.clear()
                if not self._stop.is_set():
                    log.warning("live listener lost PostgreSQL (%s); listening again in 1 s", exc)
                    self._stop.wait(1.0)

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        if not self.postgres:
            return
        self.live.relay = self.relay
        self._try_lead()  # a single replica leads from its first second
        for target, name in ((self._lead_loop, "hub-leader"), (self._send_loop, "hub-notify"),
                             (self._listen_loop, "hub-listen")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        self.listening.wait(10)

    def stop(self) -> None:
        if not self.postgres:
            return
        self._stop.set()
        self._outbox.put(None)
        for t in self._threads:
            t.join(timeout=5)
        self._leader = False
        self._close_lock_conn()
