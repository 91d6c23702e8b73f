"""Ingest: everything nodes send, stored once, acknowledged only after the commit.

The transport (hub/transport/mqtt.py) hands each message over with manual acks: the broker
forgets a message only after our commit, so a killed hub loses nothing it acknowledged. A single
writer thread takes every message waiting (group commit, no artificial wait), commits them in one
transaction, then acks them and publishes the end-to-end receipts nodes wait for. Bad input is
counted, logged and refused; it never stops ingest.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection, Engine

from edge.protocol import (
    ALARM_KINDS,
    HUB_NODE,
    MAX_JSON_PAYLOAD_BYTES,
    MAX_SNAPSHOT_BYTES,
    RAISED_BY_HUB,
    AlarmRepeatData,
    Event,
    Heartbeat,
    NodeFaultData,
    NodeStatus,
    Receipt,
    RejectedItem,
    Reply,
    Topics,
    clip_ref,
    validation_reason,
)
from hub.config import HubSettings
from hub.ingest.queue import TwoLaneQueue, is_alarm_payload
from hub.live.messages import (
    AlarmChanged,
    CommandReply,
    EnrolProgress,
    EventMessage,
    EventsSummary,
    NodeState,
    SnapshotStored,
)
from hub.nodes.health import roll_up
from hub.runtime import metrics
from hub.selftest.service import fault_for as selftest_fault_for
from hub.store.engine import (
    JsonText,
    add_audit,
    ids_in,
    insert_ignore,
    insert_new,
    jsonable,
    now_utc,
    set_last_seen,
    upsert,
)
from hub.store.schema import alarms, clips, commands, events, nodes, quarantine, snapshots
from hub.transport.mqtt import Received, Transport

log = logging.getLogger(__name__)
Notify = Callable[[list[dict[str, Any]]], None]
MAX_CLIP_FRAMES = 100
MAX_BATCH = 500  # bounds how long an alarm can wait behind one commit, in events' worth of work
# a reply, snapshot or clip is one row at a time (~0.75 ms); an event, heartbeat or status one row of a
# bulk statement (~0.1 ms)
ONE_BY_ONE_COST = 8
LAST_SEEN_SLACK_S = 5.0  # nodes.last_seen from events may lag this much (offline means 35 s of silence)
LIVE_BURST = 20  # more non-alarm events than this in one commit go live as one summary per node


@dataclass(slots=True)
class Incoming:
    topic: str
    payload: bytes
    mid: int
    qos: int
    received_at: datetime
    urgent: bool = False  # an alarm-class event, taken before the backlog


@dataclass
class BatchResult:
    """What one committed batch means for receipts and the live stream."""

    stored: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    snapshots: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    clips: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    rejected: dict[str, list[RejectedItem]] = field(default_factory=lambda: defaultdict(list))
    live: list[dict[str, Any]] = field(default_factory=list)
    touched: dict[str, datetime] = field(default_factory=dict)
    probed: set[str] = field(default_factory=set)  # nodes whose receipt answers a selftest.probe: hub_time in it


class Rejected(Exception):
    def __init__(self, reason: str, event_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.event_id = event_id


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
        return True
    except ValueError:
        return False


class Processor:
    """Turns messages into rows inside the writer's transaction. No MQTT here: testable alone."""

    def __init__(self, settings: HubSettings) -> None:
        self.settings = settings

    def process(self, conn: Connection, msg: Incoming, out: BatchResult) -> None:
        parsed = Topics.parse(msg.topic)
        if parsed is None:
            raise Rejected("topic outside the contract")
        node, channel = parsed.node, parsed.channel
        if channel == "events":
            self._event(conn, node, msg, out)
        elif channel == "snapshots":
            self._snapshot(conn, node, parsed.rest[0], msg, out)
        elif channel == "status":
            self._status(conn, node, msg, out)
        elif channel == "heartbeat":
            self._heartbeat(conn, node, msg, out)
        elif channel == "replies":
            self._reply(conn, node, msg, out)
        elif channel == "clips":
            self._snapshot(conn, node, parsed.rest[0], msg, out, clip_n=parsed.rest[1])
        else:
            raise Rejected(f"nodes do not publish on {channel}")

    # --- nodes ---------------------------------------------------------------------------------
    def _touch_node(self, conn: Connection, node: str, at: datetime, **values: Any) -> None:
        insert_ignore(conn, nodes, {"id": node, "created": at, "state": "online", "last_seen": at}, "id")
        conn.execute(update(nodes).where(nodes.c.id == node).values(last_seen=at, **values))

    def _status(self, conn: Connection, node: str, msg: Incoming, out: BatchResult) -> None:
        if not msg.payload:  # a cleared retained status
            return
        status = _parse(NodeStatus, msg.payload)
        values: dict[str, Any] = {"state": status.state}
        if status.version:
            values["version"] = status.version
        if status.kind:
            self._status_kind(conn, node, status.kind, msg.received_at, values, out)
        self._touch_node(conn, node, msg.received_at, **values)
        if status.state == "online":
            out.live += self._resolve_offline(conn, node, msg.received_at)
        out.live.append(NodeState(node=node, state=status.state).out())

    def _status_kind(self, conn: Connection, node: str, kind: str, at: datetime, values: dict[str, Any],
                     out: BatchResult) -> None:
        """A registered node's kind is the installer's (config pushes are checked against it), never its status':
        a status saying otherwise is counted as a rejection and raises a hub ``node.fault`` (once while open)."""
        registered = conn.execute(select(nodes.c.kind).where(nodes.c.id == node, nodes.c.key_enc.is_not(None))).scalar()
        if registered is None or registered == kind:
            values["kind"] = kind  # an unregistered node is known by what it says
            return
        reason = f"status says kind {kind[:32]}, registered as {registered}"
        metrics.rejected.labels("status kind mismatch").inc()
        log.warning("node %s: %s; keeping the registered kind", node, reason)
        open_faults = select(alarms.c.id).where(alarms.c.node == node, alarms.c.kind == "node.fault",
                                                alarms.c.state != "resolved")
        if any((data or {}).get("reason") == reason
               for data in conn.execute(select(events.c.data).where(events.c.id.in_(open_faults))).scalars()):
            return  # the retained status comes again on every reconnect: one open fault is enough
        self.store_event(conn, Event.make(node, "node.fault", {"reason": reason, "raised_by": "hub"}, ts=at), at, out)

    def _heartbeat(self, conn: Connection, node: str, msg: Incoming, out: BatchResult) -> None:
        hb = _parse(Heartbeat, msg.payload)
        prev = conn.execute(select(nodes.c.state).where(nodes.c.id == node)).scalar()
        self._touch_node(conn, node, msg.received_at, heartbeat=hb.model_dump(mode="json"), state="online")
        roll_up(conn, [(node, hb, msg.received_at)])
        if prev != "online":
            out.live += self._resolve_offline(conn, node, msg.received_at)
            out.live.append(NodeState(node=node, state="online").out())

    def store_node_reports(self, conn: Connection, heartbeats: dict[str, tuple[Heartbeat, datetime]],
                           statuses: dict[str, tuple[NodeStatus, datetime]], out: BatchResult) -> None:
        """A batch's heartbeats and statuses (each node's newest of each, parsed already) in a few statements:
        one read of the nodes' states, one upsert per kind of row, and the offline alarms to resolve.

        Heartbeats go first and statuses after, so a last will behind a node's heartbeat in the same batch
        leaves it offline, as it would have one message at a time. Only the latest heartbeat is kept
        (``nodes.heartbeat``; /metrics and the fleet read it): history would be 8,640 rows per node a day; the
        trend is rolled up per node and hour instead (hub/nodes/health.py)."""
        if not heartbeats and not statuses:
            return
        ids = sorted(set(heartbeats) | set(statuses))  # one lock order for every replica (PostgreSQL)
        known = {r.id: r for r in conn.execute(select(nodes.c.id, nodes.c.state, nodes.c.kind,
                                                      nodes.c.key_enc.is_not(None).label("registered"))
                                               .where(ids_in(conn, nodes.c.id, ids)))}
        back: list[str] = []  # not online before: an open node.offline alarm may be resolved now
        if heartbeats:
            rows = []
            for node in sorted(heartbeats):
                hb, at = heartbeats[node]
                rows.append({"id": node, "created": at, "state": "online", "last_seen": at,
                             "heartbeat": JsonText(hb.model_dump_json())})
                if node not in known or known[node].state != "online":
                    back.append(node)
                    out.live.append(NodeState(node=node, state="online").out())
            upsert(conn, nodes, rows, "id", {"state": "'online'", "last_seen": "excluded.last_seen",
                                             "heartbeat": "excluded.heartbeat"})
            roll_up(conn, [(node, hb, at) for node, (hb, at) in heartbeats.items()])  # the trend: per node and hour
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
        for node in sorted(statuses):
            status, at = statuses[node]
            row: dict[str, Any] = {"id": node, "created": at, "state": status.state, "last_seen": at}
            if status.version:
                row["version"] = status.version
            if status.kind:
                k = known.get(node)
                if k is not None and k.registered and k.kind != status.kind:
                    self._status_kind(conn, node, status.kind, at, row, out)  # counted, raises one node.fault
                else:
                    row["kind"] = status.kind  # an unregistered node is known by what it says
            groups[tuple(row)].append(row)
            if status.state == "online" and node not in heartbeats and (node not in known
                                                                         or known[node].state != "online"):
                back.append(node)
            out.live.append(NodeState(node=node, state=status.state).out())
        for columns, rows in groups.items():  # a birth names kind and version; a will neither
            upsert(conn, nodes, rows, "id", {c: f"excluded.{c}" for c in columns if c not in ("id", "created")})
        back = [n for n in back if statuses.get(n, (None,))[0] is None or statuses[n][0].state == "online"]
        if back:
            alarmed = set(conn.execute(select(alarms.c.node).where(
                ids_in(conn, alarms.c.node, back), alarms.c.kind == "node.offline",
                alarms.c.state != "resolved")).scalars())
            for node in back:
                if node in alarmed:
                    at = (heartbeats.get(node) or statuses[node])[1]
                    out.live += self._resolve_offline(conn, node, at)

    def _resolve_offline(self, conn: Connection, node: str, at: datetime) -> list[dict[str, Any]]:
        rows = conn.execute(select(alarms.c.id, alarms.c.incident).where(
            alarms.c.node == node, alarms.c.kind == "node.offline", alarms.c.state != "resolved")).all()
        for alarm_id, _ in rows:
            conn.execute(update(alarms).where(alarms.c.id == alarm_id).values(
                state="resolved", resolved_at=at, resolved_by="system", outcome="recovered",
                note="node back online"))
            add_audit(conn, "system", "alarm.resolve", alarm_id, {"outcome": "recovered"})
        live = [AlarmChanged(alarm={"id": a, "state": "resolved"}).out() for a, _ in rows]
        for incident in {i for _, i in rows if i}:  # the outage is over when its last node is back
            if conn.execute(select(func.count()).select_from(alarms).where(
                    alarms.c.incident == incident, alarms.c.state != "resolved")).scalar():
                continue
            if conn.execute(update(alarms).where(alarms.c.id == incident, alarms.c.state != "resolved").values(
                    state="resolved", resolved_at=at, resolved_by="system", outcome="recovered",
                    note="every node back online")).rowcount:
                add_audit(conn, "system", "alarm.resolve", incident, {"outcome": "recovered"})
                live.append(AlarmChanged(alarm={"id": incident, "state": "resolved"}).out())
        return live

    # --- events --------------------------------------------------------------------------------
    def validate_event(self, node: str, msg: Incoming) -> Event:
        """Parse and check an event without touching the database (done before the transaction)."""
        if len(msg.payload) > MAX_JSON_PAYLOAD_BYTES:
            raise Rejected("oversized", self._peek_id(msg.payload))
        try:
            event = Event.model_validate_json(msg.payload)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise Rejected(f"invalid event: {'.'.join(map(str, first['loc']))}: {first['msg']}"[:200],
                           self._peek_id(msg.payload)) from None
        if event.node != node:
            raise Rejected(f"node mismatch: topic {node}, payload {event.node}", str(event.id))
        if event.kind in RAISED_BY_HUB:
            raise Rejected(f"{event.kind} is raised by the hub only", str(event.id))
        try:
            event.typed_data()  # a known kind's data must fit its model; an unknown kind goes to quarantine
        except ValidationError as exc:
            raise Rejected(validation_reason(exc, f"invalid {event.kind} data: "), str(event.id)) from None
        return event

    def _event(self, conn: Connection, node: str, msg: Incoming, out: BatchResult) -> None:
        self.store_events(conn, [(self.validate_event(node, msg), msg)], out)

    def store_events(self, conn: Connection, items: list[tuple[Event, Incoming]], out: BatchResult,
                     incident: str | None = None) -> int:
        """Store a batch of valid events once each (bulk: ingest speed lives here); returns new ones."""
        rows: dict[str, dict[str, Any]] = {}
        by_id: dict[str, Event] = {}
        for event, msg in items:
            event_id = str(event.id)
            out.stored[event.node].append(event_id)
            if event.kind == "selftest.probe":
                # receipted, never stored: the round trip is the whole point (the result that follows carries
                # its figures), so probes neither clutter the event lists nor become alarms; a resend is
                # receipted again, which is idempotent without a row
                out.probed.add(event.node)
                out.touched[event.node] = msg.received_at
                continue
            if not event.known_kind:
                conn.execute(quarantine.insert().values(node=event.node, topic=msg.topic, payload=msg.payload,
                                                        reason=f"unknown kind {event.kind}",
                                                        received_at=msg.received_at))
                metrics.quarantined.inc()
                continue
            out.touched[event.node] = msg.received_at
            if event_id in rows:
                continue
            by_id[event_id] = event
            rows[event_id] = self._row(event, msg.received_at)
        if not rows:
            return 0
        existing = {i for (i,) in conn.execute(select(events.c.id).where(ids_in(conn, events.c.id, list(rows))))}
        new = [r for i, r in rows.items() if i not in existing]  # arrival order: an alarm before its repeats
        if new:
            # inserted sorted: replicas sharing PostgreSQL take the unique-index locks in one order (no deadlocks)
            seqs = dict(insert_new(conn, events, sorted(new, key=lambda r: r["id"]), "id", ("id", "seq")))
            new = [r for r in new if r["id"] in seqs]  # another replica may have stored one meanwhile
        metrics.duplicates.inc(len(rows) - len(new))
        if not new:
            return 0
        quiet: dict[str, list[int]] = defaultdict(list)  # non-alarm events, summarised when many
        for row in new:
            event = by_id[row["id"]]
            live = EventMessage(cursor=seqs.get(row["id"]), event={
                **row, "ts": row["ts"].isoformat(), "received_at": row["received_at"].isoformat()})
            if event.kind == "access.enrol_progress":  # stored for the log; the office screen gets it typed
                out.live.append(self._enrol_progress(event))
                continue
            alarm = self._alarm_for(conn, event, row["received_at"], incident)
            if alarm is not None:
                live.alarm = alarm
                out.live.append(live.out())
            elif len(new) <= LIVE_BURST:
                out.live.append(live.out())
            else:
                quiet[event.node].append(seqs.get(row["id"]) or 0)
        for row in new:  # a failed self-test raises one hub node.fault (hub/selftest/service.py)
            if row["kind"] == "selftest.result":
                fault = selftest_fault_for(conn, by_id[row["id"]])
                if fault is not None:
                    heard = out.touched.get(row["node"])
                    self.store_event(conn, fault, row["received_at"], out)
                    if heard is not None:  # the node's own result still counts as hearing from it
                        out.touched[row["node"]] = heard
        for node, cursors in quiet.items():  # a backlog draining must not flood the consoles
            out.live.append(EventsSummary(node=node, count=len(cursors), cursor=max(cursors)).out())
        metrics.ingested.labels("events").inc(len(new))
        for row in new:
            metrics.events_by_kind.labels(row["kind"]).inc()
            metrics.event_age.observe(max(0.0, (row["received_at"] - row["ts"]).total_seconds()))
        return len(new)

    @staticmethod
    def _enrol_progress(event: Event) -> dict[str, Any]:
        """A door's enrolment step as the live stream's ``enrol`` message (data already validated)."""
        d = event.data
        fields = {k: d[k] for k in ("tenant_id", "n", "scans", "slot", "reason", "detail") if d.get(k) is not None}
        return EnrolProgress(node=event.node, command_id=str(d["command_id"]), step=d["step"],
                             at=event.ts.isoformat(), **fields).out()

    def _row(self, event: Event, received_at: datetime) -> dict[str, Any]:
        extra = dict(event.model_extra or {})
        return {"id": str(event.id), "node": event.node, "kind": event.kind, "ts": event.ts,
                "received_at": received_at, "data": {**event.data, **({"_extra": extra} if extra else {})},
                "snapshot": event.snapshot,
                "delayed": (received_at - event.ts).total_seconds() > self.settings.delayed_after_s,
                "clock_synced": event.clock_synced}

    def store_event(self, conn: Connection, event: Event, received_at: datetime, out: BatchResult,
                    incident: str | None = None) -> bool:
        """An event the hub raises itself (no receipt goes out for it: no node sent it)."""
        msg = Incoming(Topics.events(event.node), b"", 0, 0, received_at)
        stored = self.store_events(conn, [(event, msg)], out, incident) == 1
        out.touched.pop(event.node, None)  # nor does the node count as heard from
        out.stored[event.node].remove(str(event.id))
        if not out.stored[event.node]:
            del out.stored[event.node]
        return stored

    def touch_nodes(self, conn: Connection, out: BatchResult) -> None:
        """Once per node per batch: register unknown nodes, note when each was last heard."""
        if not out.touched:
            return
        touched = sorted(out.touched.items())  # one lock order for every replica (no deadlocks on PostgreSQL)
        insert_new(conn, nodes, [{"id": n, "created": at, "state": "online", "last_seen": at} for n, at in touched],
                   "id", ("id",))
        # a node heard from moments ago needs no new write (nor a row lock other replicas would wait for)
        set_last_seen(conn, touched, slack_s=min(LAST_SEEN_SLACK_S, self.settings.offline_after_s / 12))

    def _alarm_for(self, conn: Connection, event: Event, received_at: datetime,
                   incident: str | None = None) -> dict[str, Any] | None:
        """The alarm an event raises, for the live push; ``incident``: it joins that outage, no alarm alone."""
        if event.kind == "alarm.repeat":  # further presses of a pole's open alarm: its count, not a new card
            repeat = event.data_as(AlarmRepeatData)  # checked against the contract before it was stored
            target, count = repeat.alarm_id, repeat.count
            state = conn.execute(select(alarms.c.state).where(alarms.c.id == target,
                                                              alarms.c.node == event.node)).scalar()
            if state == "resolved":  # resolved while the pole could not hear it: the press is a new alarm, not lost
                row = {"id": str(event.id), "node": event.node, "kind": "alarm.pressed", "state": "open", "count": 1,
                       "node_ts": event.ts, "raised_at": received_at, "incident": None}
                insert_ignore(conn, alarms, row, "id")
                return {**row, "node_ts": event.ts.isoformat(), "raised_at": received_at.isoformat()}
            conn.execute(update(alarms).where(alarms.c.id == target, alarms.c.node == event.node,
                                              alarms.c.count < count).values(count=count, last_press_at=received_at))
            merged = conn.execute(select(alarms).where(alarms.c.id == target)).first()
            return jsonable(merged) if merged else None
        if event.kind not in ALARM_KINDS:
            return None
        if event.kind == "node.fault" and event.data_as(NodeFaultData).severity == "info":
            return None
        row = {"id": str(event.id), "node": event.node, "kind": event.kind, "state": "open",
               "count": 1, "node_ts": event.ts, "raised_at": received_at, "incident": incident}
        insert_ignore(conn, alarms, row, "id")
        if incident:
            return None
        return {**row, "node_ts": event.ts.isoformat(), "raised_at": received_at.isoformat()}

    @staticmethod
    def _peek_id(payload: bytes) -> str | None:
        try:
            value = json.loads(payload).get("id")
        except (ValueError, AttributeError, UnicodeDecodeError):
            return None
        return str(value) if _is_uuid(value) else None

    # --- snapshots -----------------------------------------------------------------------------
    def _snapshot(self, conn: Connection, node: str, event_id: str, msg: Incoming, out: BatchResult,
                  clip_n: str | None = None) -> None:
        if not _is_uuid(event_id):
            raise Rejected("snapshot topic does not name an event id")
        if len(msg.payload) > MAX_SNAPSHOT_BYTES:
            raise Rejected("oversized snapshot", event_id)
        if not msg.payload.startswith(b"\xff\xd8"):
            raise Rejected("snapshot is not a JPEG", event_id)
        owner = conn.execute(select(events.c.node).where(events.c.id == event_id)).scalar()
        if owner is not None and owner != node:
            raise Rejected(f"node mismatch: event {event_id} belongs to {owner}", event_id)
        if clip_n is not None:  # one frame of the burst from before the press
            if not clip_n.isdigit() or int(clip_n) >= MAX_CLIP_FRAMES:
                raise Rejected("clip frame number out of range", event_id)
            found = conn.execute(select(clips.c.node).where(clips.c.event_id == event_id,
                                                            clips.c.n == int(clip_n))).scalar()
            if found is not None and found != node:
                raise Rejected("node mismatch on an existing clip", event_id)
            if found is None:
                conn.execute(clips.insert().values(event_id=event_id, n=int(clip_n), node=node, jpeg=msg.payload,
                                                   received_at=msg.received_at))
            metrics.ingested.labels("clips").inc()
            out.clips[node].append(clip_ref(event_id, int(clip_n)))
            return
        existing = conn.execute(select(snapshots.c.node).where(snapshots.c.event_id == event_id)).scalar()
        if existing is None:
            conn.execute(snapshots.insert().values(event_id=event_id, node=node, jpeg=msg.payload,
                                                   received_at=msg.received_at))
        elif existing == node:  # the last one wins
            conn.execute(update(snapshots).where(snapshots.c.event_id == event_id).values(
                jpeg=msg.payload, received_at=msg.received_at))
        else:
            raise Rejected("node mismatch on an existing snapshot", event_id)
        metrics.ingested.labels("snapshots").inc()
        out.snapshots[node].append(event_id)
        out.live.append(SnapshotStored(event_id=event_id, node=node).out())

    # --- replies -------------------------------------------------------------------------------
    def _reply(self, conn: Connection, node: str, msg: Incoming, out: BatchResult) -> None:
        reply = _parse(Reply, msg.payload)
        row = conn.execute(select(commands.c.delivery, commands.c.name, commands.c.args).where(
            commands.c.id == reply.command_id, commands.c.node == node)).first()
        if row is None:
            raise Rejected("reply to an unknown command")
        conn.execute(update(commands).where(commands.c.id == reply.command_id).values(
            replied_at=msg.received_at, ok=reply.ok, detail=reply.detail[:500], data=reply.data or None))
        if row.name == "alarm.ack" and reply.ok:
            alarm_id = (row.args or {}).get("alarm_id")
            if alarm_id:
                conn.execute(update(alarms).where(alarms.c.id == alarm_id).values(
                    node_stage=(row.args or {}).get("stage")))
        out.live.append(CommandReply(node=node, command_id=reply.command_id, name=row.name, ok=reply.ok,
                                     detail=reply.detail).out())

    # --- node silence --------------------------------------------------------------------------
    def raise_offline(self, conn: Connection, now: datetime, out: BatchResult) -> None:
        """Nodes silent past their deadline get one alarm each, or join one outage incident.

        A last will marks a node offline on the console at once, but raises no alarm by itself: the node
        must also have been silent for ``offline_after_s``. A broker restart delivers every node's will at
        the same moment and the nodes are back seconds later; the soak saw 2,000 offline alarms (and 2,000
        resolutions) per restart, and residents' presses queued behind them (design.md: after a broker
        restart offline alarms wait a grace period). And when a street loses power or its uplink, its
        nodes go silent together: that is one incident (``nodes.offline``), not one alarm per node."""
        after = timedelta(seconds=self.settings.offline_after_s)
        silent = conn.execute(select(nodes.c.id, nodes.c.state, nodes.c.last_seen).where(
            nodes.c.state.in_(("online", "offline")) & (nodes.c.last_seen < now - after))).all()
        if not silent:
            return
        alarmed = set(conn.execute(_nodes_with_open_offline_alarm()).scalars())
        crossed = []
        for node, state, last_seen in silent:
            if state == "online":
                conn.execute(update(nodes).where(nodes.c.id == node).values(state="offline"))
                out.live.append(NodeState(node=node, state="offline").out())
            if node not in alarmed:
                crossed.append((node, last_seen))
        if not crossed:
            return
        incident = self._outage(conn, now, out)
        for node, last_seen in crossed:
            event = Event.make(node, "node.offline", {"last_seen": last_seen.isoformat() if last_seen else None,
                                                      "raised_by": "hub"}, ts=now)
            self.store_event(conn, event, now, out, incident)
        if incident:
            count = conn.execute(select(func.count()).select_from(alarms).where(alarms.c.incident == incident)).scalar()
            conn.execute(update(alarms).where(alarms.c.id == incident).values(count=count))
            out.live.append(AlarmChanged(alarm={"id": incident, "count": count}).out())

    def _outage(self, conn: Connection, now: datetime, out: BatchResult) -> str | None:
        """The outage incident nodes crossing their deadline now belong to, if any: one raised less than
        ``offline_after_s`` ago, or a new one when ``outage_min_nodes`` nodes are going silent together
        (silent for half the deadline: they have missed heartbeats too, and cross it within seconds)."""
        after = timedelta(seconds=self.settings.offline_after_s)
        gathering = conn.execute(select(alarms.c.id).where(
            alarms.c.kind == "nodes.offline", alarms.c.state != "resolved", alarms.c.raised_at >= now - after)
            .order_by(alarms.c.raised_at.desc()).limit(1)).scalar()
        if gathering:
            return str(gathering)
        going = conn.execute(select(func.count()).select_from(nodes).where(
            nodes.c.state.in_(("online", "offline")), nodes.c.last_seen < now - after / 2,
            nodes.c.id.not_in(_nodes_with_open_offline_alarm()))).scalar() or 0
        if going < self.settings.outage_min_nodes:
            return None
        event = Event.make(HUB_NODE, "nodes.offline", {"raised_by": "hub", "going_silent": going}, ts=now)
        self.store_event(conn, event, now, out)
        log.warning("%d nodes going silent together: one outage incident %s", going, event.id)
        return str(event.id)


def _nodes_with_open_offline_alarm() -> Any:
    return select(alarms.c.node).where(alarms.c.kind == "node.offline", alarms.c.state != "resolved")


_BULK = frozenset({"events", "heartbeat", "status"})  # stored a batch at a time (the rest a row at a time)


def _cost(msg: Incoming) -> int:
    return 1 if Topics.channel(msg.topic) in _BULK else ONE_BY_ONE_COST


def _parse(model: Any, payload: bytes) -> Any:
    if len(payload) > MAX_JSON_PAYLOAD_BYTES:
        raise Rejected("oversized")
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise Rejected(f"invalid {model.__name__}: {'.'.join(map(str, first['loc']))}: {first['msg']}"[:200]) \
            from None


class Ingest:
    """The single writer thread: takes what the transport received, commits it, then acks and receipts."""

    def __init__(self, settings: HubSettings, engine: Engine, notify: Notify, transport: Transport) -> None:
        self.settings = settings
        self.engine = engine
        self.notify = notify
        self.transport = transport
        self.processor = Processor(settings)
        self.is_leader: Callable[[], bool] = lambda: True  # replicas: only the leader raises node.offline
        # replicas: every replica hears every status (a retained message is not delivered on a shared
        # subscription), and only the leader stores them, so each is processed once (hub/runtime/cluster.py)
        self.process_status: Callable[[], bool] = lambda: True
        self.queue: TwoLaneQueue[Incoming] = TwoLaneQueue()  # alarms overtake the rest
        self._stop = threading.Event()
        self._writer = threading.Thread(target=self._write_loop, name="hub-writer", daemon=True)

    @property
    def connected(self) -> bool:
        return self.transport.connected

    # --- transport thread ------------------------------------------------------------------------
    def receive(self, msg: Received) -> None:
        """Queue a node's message for the writer (alarms first); called on the transport's thread."""
        channel = Topics.channel(msg.topic)  # parsed once: this runs for every message on the MQTT thread
        urgent = channel == "events" and is_alarm_payload(msg.payload)
        qos = msg.qos
        if qos > 0 and channel == "status":
            # A node's status is retained: the broker hands it over again on every subscribe, so it need not
            # hold one of the broker's in-flight slots until committed. Those slots are then left to events:
            # after a broker restart 2,000 births filled them and a press waited behind them.
            self.transport.ack(msg.mid, qos)
            qos = 0
        # a QoS 0 heartbeat still waiting is stale once the node's next one arrives (hub/ingest/queue.py)
        latest_of = msg.topic if qos == 0 and channel == "heartbeat" else None
        if not self.queue.put(Incoming(msg.topic, msg.payload, msg.mid, qos, now_utc(), urgent), urgent=urgent,
                              latest_of=latest_of):
            metrics.superseded.inc()

    # --- writer thread -------------------------------------------------------------------------
    def _write_loop(self) -> None:
        last_offline_check = 0.0
        while not self._stop.is_set():
            # group commit: take what is already waiting, never wait for more (latency first); under load
            # the queue fills during each commit, so batches grow by themselves. Alarms go at the head of
            # the next batch, so one waits at most for the commit already running, never for the backlog.
            batch = self.queue.get_batch(MAX_BATCH, timeout=0.25, cost=_cost)
            check_offline = time.monotonic() - last_offline_check >= 1.0 and self.offline_check_allowed()
            if not batch and not check_offline:
                continue
            if check_offline:
                last_offline_check = time.monotonic()
            self.handle_batch(batch, check_offline=check_offline)

    def offline_check_allowed(self, now: float | None = None) -> bool:
        """Only while connected, and ``offline_grace_s`` after each (re)connection to the broker: while the
        hub hears nothing it cannot tell a silent node, and after an outage every node looks silent until
        its birth and heartbeat have come through."""
        now = time.monotonic() if now is None else now
        t = self.transport
        return t.connected and now - t.connected_since >= self.settings.offline_grace_s and self.is_leader()

    def handle_batch(self, batch: list[Incoming], check_offline: bool = False) -> BatchResult:
        """Commit a batch (retrying on database errors), then ack, receipt and notify."""
        while True:
            out = BatchResult()
            try:
                with metrics.batch_seconds.time(), self.engine.begin() as conn:
                    valid: list[tuple[Event, Incoming]] = []
                    heartbeats: dict[str, tuple[Heartbeat, datetime]] = {}
                    statuses: dict[str, tuple[NodeStatus, datetime]] = {}
                    for msg in batch:
                        parsed = Topics.parse(msg.topic)
                        channel = parsed.channel if parsed is not None else None
                        # events, heartbeats and statuses are checked before any SQL and stored in bulk
                        try:
                            if parsed is None or channel not in _BULK:
                                self._process_one(conn, msg, out)
                            elif channel == "events":
                                valid.append((self.processor.validate_event(parsed.node, msg), msg))
                            elif channel == "heartbeat":
                                heartbeats[parsed.node] = (_parse(Heartbeat, msg.payload), msg.received_at)
                            elif msg.payload:  # a status; an empty one is a cleared retained status
                                status = _parse(NodeStatus, msg.payload)
                                if parsed.node in statuses:  # a birth then a will: the kind and version stay
                                    prev = statuses[parsed.node][0]
                                    status = status.model_copy(update={"kind": status.kind or prev.kind,
                                                                       "version": status.version or prev.version})
                                statuses[parsed.node] = (status, msg.received_at)
                        except Rejected as exc:
                            self._reject(msg, exc, out)
                        except Exception as exc:  # noqa: BLE001 - must not send the batch into retries
                            log.exception("unexpected failure validating %s", msg.topic)
                            self._reject(msg, Rejected(f"internal error: {type(exc).__name__}"), out)
                    if not self.process_status():
                        metrics.status_skipped.inc(len(statuses))
                        statuses = {}
                    self.processor.store_events(conn, valid, out)
                    self.processor.store_node_reports(conn, heartbeats, statuses, out)
                    self.processor.touch_nodes(conn, out)
                    if check_offline:
                        self.processor.raise_offline(conn, now_utc(), out)
                break
            except Exception:  # noqa: BLE001 - the database failed: keep the batch, try again
                log.exception("ingest commit failed; retrying the batch in 1 s")
                if self._stop.wait(1.0):
                    return out
        committed = now_utc()
        for msg in batch:
            lag = (committed - msg.received_at).total_seconds()
            metrics.ingest_lag.observe(lag)
            if msg.urgent:
                metrics.alarm_ingest_lag.observe(lag)
            self.transport.ack(msg.mid, msg.qos)
        self._send_receipts(out)
        if out.live:
            self.notify(out.live)
        return out

    def _process_one(self, conn: Connection, msg: Incoming, out: BatchResult) -> None:
        savepoint = conn.begin_nested()
        try:
            self.processor.process(conn, msg, out)
            savepoint.commit()
        except Rejected as exc:
            savepoint.rollback()
            self._reject(msg, exc, out)
        except Exception as exc:  # noqa: BLE001 - one bad message never stops ingest
            savepoint.rollback()
            log.exception("unexpected failure on %s", msg.topic)
            self._reject(msg, Rejected(f"internal error: {type(exc).__name__}"), out)

    def _reject(self, msg: Incoming, exc: Rejected, out: BatchResult) -> None:
        reason_label = exc.reason.split(":")[0][:40]
        metrics.rejected.labels(reason_label).inc()
        log.warning("rejected message on %s: %s", msg.topic[:120], exc.reason)
        parsed = Topics.parse(msg.topic)
        if parsed is not None and exc.event_id:
            out.rejected[parsed.node].append(RejectedItem(id=exc.event_id, reason=exc.reason))

    def _send_receipts(self, out: BatchResult) -> None:
        for node in set(out.stored) | set(out.snapshots) | set(out.clips) | set(out.rejected):
            receipt = Receipt(ids=out.stored.get(node, []), snapshots=out.snapshots.get(node, []),
                              clips=out.clips.get(node, []), rejected=out.rejected.get(node, []),
                              hub_time=now_utc() if node in out.probed else None)
            self.transport.publish(Topics.receipts(node), receipt.to_bytes(), qos=1)

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self._writer.start()
        self.transport.start(self.receive)

    def stop(self) -> None:
        self._stop.set()
        self._writer.join(timeout=5)
        self.transport.stop()
