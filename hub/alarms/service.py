"""What staff do, as plain functions over the store: work alarms, command nodes, register nodes.

The API, the CLI and the demo call these; none of them touches tables or MQTT directly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, case, exists, select, update
from sqlalchemy.engine import Connection, Engine

from edge.protocol import ALARM_KINDS, HUB_NODE, AlarmAckArgs, Command, Topics
from hub.errors import Conflict, NotFound
from hub.nodes.keys import KeyVault
from hub.runtime import metrics
from hub.store.engine import add_audit, has_rows, jsonable, now_utc
from hub.store.schema import alarms, commands, escalations, nodes, snapshots

log = logging.getLogger(__name__)
_OUTGOING = "pingan_outgoing_commands"  # Connection.info key: commands to publish after the commit
Publish = Callable[[str, bytes, int], bool]

# Lifecycle: open → acknowledged → dispatched → on_scene → resolved (steps may be skipped forward).
STAGES = ("open", "acknowledged", "dispatched", "on_scene", "resolved")
OUTCOMES = ("assisted", "false_alarm", "crime", "test", "recovered", "other")
ALARM_RANK = {kind: i for i, kind in enumerate(ALARM_KINDS)}
MAX_MEMBERS = 200  # node ids an outage incident lists; its count says how many there are


STAGE_AT = {"acknowledged": "acked_at", "dispatched": "dispatched_at", "on_scene": "on_scene_at"}


def skipped_stages(state: str, times: dict[str, Any]) -> list[str]:
    """The stages an alarm went past without doing them (no time stamped), e.g. resolved unacknowledged."""
    reached = STAGES.index(state) if state in STAGES else 0
    return [s for s in STAGES[1:reached] if times.get(STAGE_AT[s]) is None]


def with_skipped(alarm: dict[str, Any]) -> dict[str, Any]:
    alarm["skipped"] = skipped_stages(alarm.get("state", "open"), alarm)
    return alarm


class HubService:
    def __init__(self, engine: Engine, vault: KeyVault, publish: Publish) -> None:
        self.engine = engine
        self.vault = vault
        self.publish = publish

    # --- nodes ---------------------------------------------------------------------------------
    def register_node(self, node_id: str, *, kind: str = "alarm_post", place: str = "", grid: str = "",
                      lat: float | None = None, lon: float | None = None, actor: str = "installer") -> str:
        """Create (or re-key) a node; returns its new command-signing key, shown once."""
        if node_id == HUB_NODE:
            raise Conflict(f"'{HUB_NODE}' is the hub's own name (its outage incidents carry it); pick another id")
        key = self.vault.new_node_key()
        now = now_utc()
        with self.engine.begin() as conn:
            exists = conn.execute(select(nodes.c.id).where(nodes.c.id == node_id)).first()
            values = {"kind": kind, "place": place, "grid": grid, "lat": lat, "lon": lon,
                      "key_enc": self.vault.seal(key)}
            if exists:
                conn.execute(update(nodes).where(nodes.c.id == node_id).values(**values))
            else:
                conn.execute(nodes.insert().values(id=node_id, created=now, state="unknown", **values))
            add_audit(conn, actor, "node.register", node_id, {"kind": kind, "grid": grid})
        return key

    def list_nodes(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(nodes).order_by(nodes.c.id)).all()
            open_counts = dict(conn.execute(
                select(alarms.c.node, alarms.c.id).where(alarms.c.state != "resolved")).all())
        out = []
        for row in rows:
            item = jsonable(row)
            item.pop("key_enc", None)
            item["provisioned"] = row.key_enc is not None
            item["open_alarm"] = open_counts.get(row.id)
            out.append(item)
        return out

    # --- alarms --------------------------------------------------------------------------------
    def list_alarms(self, state: str = "open", limit: int = 200, ids: list[str] | None = None) -> list[dict[str, Any]]:
        """The queue, or with ``ids`` those alarms as the queue shows them, whatever their state (a console
        patches its list with the ones a live message named instead of loading 1,000 again: it drops the
        resolved ones and those folded into an incident, and sorts by the same keys, ``rank`` included)."""
        # the queue a night operator scans from the top: unacknowledged first (escalated first among them),
        # then the loudest kind, then the oldest; an acknowledged alarm is never above an unacknowledged one
        rank = case(ALARM_RANK, value=alarms.c.kind, else_=len(ALARM_RANK))
        waiting = case((alarms.c.state == "open", 0), else_=1)
        quiet = case((escalations.c.alarm_id.is_(None), 1), else_=0)
        # whether its picture is stored yet: the console asks for no snapshot that is not there (a 404 each)
        pictured = exists().where(snapshots.c.event_id == alarms.c.id).label("has_snapshot")
        q = (select(alarms, nodes.c.place, nodes.c.grid, pictured, rank.label("rank"))
             .join(nodes, nodes.c.id == alarms.c.node, isouter=True)
             .join(escalations, escalations.c.alarm_id == alarms.c.id, isouter=True))
        if ids is not None:
            with self.engine.connect() as conn:
                rows = conn.execute(q.where(alarms.c.id.in_(ids))).all()
                return self._with_members(conn, [with_skipped(jsonable(r)) for r in rows])
        q = q.where(alarms.c.incident.is_(None))  # an outage's nodes are listed inside its one incident
        if state == "open":
            q = q.where(alarms.c.state != "resolved")
        elif state != "all":
            q = q.where(alarms.c.state == state)
        q = q.order_by(waiting, quiet, rank, alarms.c.raised_at, alarms.c.id).limit(limit)
        with self.engine.connect() as conn:
            return self._with_members(conn, [with_skipped(jsonable(r)) for r in conn.execute(q).all()])

    def get_alarm(self, alarm_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(alarms).where(alarms.c.id == alarm_id)).first()
            if row is None:
                raise NotFound(f"no alarm {alarm_id}")
            return self._with_members(conn, [with_skipped(jsonable(row))])[0]

    @staticmethod
    def _with_members(conn: Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """An outage incident names its nodes (``nodes``, at most MAX_MEMBERS shown) and how many are back."""
        incidents = {r["id"]: r for r in rows if r["kind"] == "nodes.offline"}
        for r in incidents.values():
            r["nodes"], r["nodes_back"] = [], 0
        if incidents:
            for incident, node, state in conn.execute(
                    select(alarms.c.incident, alarms.c.node, alarms.c.state)
                    .where(alarms.c.incident.in_(list(incidents))).order_by(alarms.c.node)):
                r = incidents[incident]
                r["nodes_back"] += state == "resolved"
                if len(r["nodes"]) < MAX_MEMBERS:
                    r["nodes"].append(node)
        return rows

    def advance(self, alarm_id: str, stage: str, operator: str, *, to: str | None = None,
                outcome: str | None = None, note: str | None = None) -> dict[str, Any]:
        """Move an alarm forward in its lifecycle, audit it, and tell the node's resident."""
        if stage not in STAGES[1:]:
            raise Conflict(f"unknown stage {stage}")
        if stage == "resolved" and outcome not in OUTCOMES:
            raise Conflict(f"resolving needs an outcome, one of {', '.join(OUTCOMES)}")
        with self.writing() as conn:
            self.advance_in(conn, alarm_id, stage, operator, to=to, outcome=outcome, note=note)
            updated = conn.execute(select(alarms).where(alarms.c.id == alarm_id)).first()
        return with_skipped(jsonable(updated))

    def advance_in(self, conn: Connection, alarm_id: str, stage: str, operator: str, *, to: str | None = None,
                   outcome: str | None = None, note: str | None = None) -> None:
        """:meth:`advance` inside a :meth:`writing` transaction someone else holds (hub/responders: a
        responder's accept moves the alarm in the same commit as the dispatch; the node hears after it)."""
        now = now_utc()
        row = conn.execute(select(alarms).where(alarms.c.id == alarm_id)).first()
        if row is None:
            raise NotFound(f"no alarm {alarm_id}")
        if STAGES.index(stage) <= STAGES.index(row.state):
            raise Conflict(f"alarm is already {row.state}")
        # only the stage done now gets a time: a stage skipped on the way stays empty, which is how it
        # is recorded as skipped (``with_skipped``; reports count it apart instead of timing it)
        values: dict[str, Any] = {"state": stage}
        if stage == "acknowledged":
            values.update(acked_at=now, acked_by=operator)
        if stage == "dispatched":
            values.update(dispatched_at=now, dispatched_to=to or "")
        if stage == "on_scene":
            values["on_scene_at"] = now
        if stage == "resolved":
            values.update(resolved_at=now, resolved_by=operator, outcome=outcome)
        if note:
            values["note"] = note
        conn.execute(update(alarms).where(alarms.c.id == alarm_id).values(**values))
        metrics.response_seconds.labels(stage).observe((now - row.raised_at).total_seconds())
        add_audit(conn, operator, f"alarm.{stage}", alarm_id, {"to": to, "outcome": outcome, "note": note})
        if row.kind in ("alarm.pressed", "alarm.test"):
            self._command(conn, row.node, "alarm.ack", {"alarm_id": alarm_id, "stage": stage}, operator)

    # --- commands ------------------------------------------------------------------------------
    def _command(self, conn: Connection, node: str, name: str, args: dict[str, Any], operator: str,
                 delivery: str | None = None, stored_args: dict[str, Any] | None = None,
                 ttl: timedelta | None = None, on_id: Callable[[str], None] | None = None) -> str | None:
        """Sign a command and record it (with ``stored_args`` instead of ``args`` when what is sent must not
        be kept, e.g. a sealed fingerprint template); it goes out when the :meth:`writing` transaction
        commits, so a fast reply always finds its command row (on PostgreSQL it could arrive first)."""
        outgoing: list[tuple[str, bytes]] | None = conn.info.get(_OUTGOING)
        if outgoing is None:
            raise RuntimeError("commands are sent from a HubService.writing() transaction (published after commit)")
        key_enc = conn.execute(select(nodes.c.key_enc).where(nodes.c.id == node)).scalar()
        if not key_enc:
            log.warning("node %s has no signing key: cannot send %s (register it with its key)", node, name)
            return None
        cmd = Command.make(node, name, args, operator=operator, ttl=ttl).signed(self.vault.open(key_enc))
        conn.execute(commands.insert().values(
            id=cmd.id, delivery=delivery or cmd.id, node=node, name=name,
            args=args if stored_args is None else stored_args, operator=operator,
            issued_at=cmd.issued_at, expires_at=cmd.expires_at))
        if on_id is not None:  # e.g. live view waits for this command's reply: register before it can come
            on_id(cmd.id)
        outgoing.append((Topics.commands(node), cmd.to_bytes()))
        return cmd.id

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A write transaction whose commands are published only once it has committed."""
        outgoing: list[tuple[str, bytes]] = []
        with self.engine.begin() as conn:
            conn.info[_OUTGOING] = outgoing
            try:
                yield conn
            finally:
                conn.info.pop(_OUTGOING, None)  # the DBAPI connection goes back to the pool
        for topic, payload in outgoing:
            self.publish(topic, payload, 1)

    def send_command(self, node: str, name: str, args: dict[str, Any], operator: str) -> str | None:
        with self.writing() as conn:
            add_audit(conn, operator, f"command.{name}", node, args)
            return self._command(conn, node, name, args, operator)

    def resend_unanswered(self, older_than_s: float, give_up_after: timedelta = timedelta(minutes=10)) -> int:
        """alarm.ack is sent again (freshly signed, new nonce) until the node replies."""
        now = now_utc()
        resent = 0
        answered = select(commands.c.delivery).where(commands.c.ok.is_(True)).scalar_subquery()
        waiting = select(commands).where(and_(commands.c.name == "alarm.ack", commands.c.replied_at.is_(None),
                                              commands.c.delivery.not_in(answered)))
        if not has_rows(self.engine, waiting):
            return 0
        with self.writing() as conn:
            rows = conn.execute(waiting.order_by(commands.c.issued_at)).all()
            latest: dict[str, Any] = {}
            for row in rows:
                latest[row.delivery] = row
            first_issued = {}
            for row in rows:
                first_issued.setdefault(row.delivery, row.issued_at)
            for delivery, row in latest.items():
                if now - first_issued[delivery] > give_up_after:
                    continue
                if (now - row.issued_at).total_seconds() < older_than_s:
                    continue
                # later stages supersede earlier ones: only resend the newest delivery per alarm
                if self._superseded(conn, row, first_issued[delivery]):
                    continue
                self._command(conn, row.node, row.name, row.args, row.operator or "system", delivery=delivery)
                resent += 1
        return resent

    @staticmethod
    def _superseded(conn: Connection, row: Any, first_issued: Any) -> bool:
        newer = conn.execute(select(commands.c.id).where(
            commands.c.name == "alarm.ack", commands.c.node == row.node,
            commands.c.id == commands.c.delivery,  # the first attempt of another delivery
            commands.c.delivery != row.delivery, commands.c.issued_at > first_issued,
            commands.c.args["alarm_id"].as_string() == AlarmAckArgs.model_validate(row.args or {}).alarm_id)).first()
        return newer is not None
