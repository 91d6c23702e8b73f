"""What the store says, as GB/T 28181 channels: the catalog items, their status and where they stand.

Read from the same ``nodes`` table the console reads (status ON only while the node is online there),
so the city never sees a state the console does not. Which channels a node has:

=============  ==========================  ====  ============================================
node kind      channel                     type  alarms sent on it
=============  ==========================  ====  ============================================
alarm_post     camera (网络摄像机)           132   camera tamper, loitering, intrusion
alarm_post     one-key button (报警输入)     134   press (一键报警), enclosure tamper
alarm_post     siren (报警输出)              135   —
rental_door    the door (报警输入)           134   door forced, door held open
=============  ==========================  ====  ============================================

Doors are not video channels (they have no camera); only their forced/held-open alarms go up, on one
alarm-input channel per door: a forced door is a security event the city's duty room may act on,
while who opened which door (tenants by real name) stays in the district (docs/gb28181.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from hub.errors import Conflict, NotFound
from hub.gb28181 import ids
from hub.store.schema import gb_ids, nodes

Role = Literal["camera", "button", "siren", "door"]
ROLES: dict[str, tuple[tuple[Role, str, str], ...]] = {
    "alarm_post": (("camera", ids.TYPE_CAMERA, "摄像机"), ("button", ids.TYPE_ALARM_INPUT, "一键报警"),
                   ("siren", ids.TYPE_ALARM_OUTPUT, "警笛")),
    "rental_door": (("door", ids.TYPE_ALARM_INPUT, "门禁报警"),),
}


@dataclass(frozen=True)
class Channel:
    gb_id: str
    node: str
    role: Role
    name: str
    place: str
    online: bool
    lat: float | None
    lon: float | None


def serial_key(gb_id: str) -> str:
    return gb_id[:10] + gb_id[13:]


def _taken(conn: Connection, prefix10: str) -> set[str]:
    return {g[13:] for (g,) in conn.execute(select(gb_ids.c.gb_id).where(gb_ids.c.gb_id.like(prefix10 + "%")))}


def check_free(engine: Engine, gb_id: str, node: str) -> None:
    """Conflict when another node holds this ID, or the same civil code, industry and serial."""
    with engine.connect() as conn:
        clash = conn.execute(select(gb_ids.c.node).where(
            (gb_ids.c.serial_key == serial_key(gb_id)) & (gb_ids.c.node != node))).first()
    if clash is not None:
        raise Conflict(f"GB ID {gb_id} clashes with node {clash.node}'s (same civil code, industry and serial; "
                       "each node's serial must differ)")


def set_gb_id(engine: Engine, node: str, gb_id: str) -> str:
    """Give ``node`` the ID an installer chose (``nodes add --gb-id``), checked against its kind and the others."""
    with engine.begin() as conn:
        row = conn.execute(select(nodes.c.kind).where(nodes.c.id == node)).first()
        if row is None:
            raise NotFound(f"no node {node!r}")
        ids.check_gb_id(gb_id, kind=row.kind)
        check_free(engine, gb_id, node)
        conn.execute(gb_ids.delete().where(gb_ids.c.node == node))
        conn.execute(gb_ids.insert().values(node=node, gb_id=gb_id, serial_key=serial_key(gb_id),
                                            assigned_at=datetime.now(UTC)))
    return gb_id


def assign_missing(engine: Engine, prefix10: str) -> int:
    """Make IDs for the nodes that have none (lowest free serial under the prefix); how many were made."""
    made = 0
    with engine.begin() as conn:
        have = {n for (n,) in conn.execute(select(gb_ids.c.node))}
        rows = conn.execute(select(nodes.c.id, nodes.c.kind).where(nodes.c.state != "removed")
                            .order_by(nodes.c.created, nodes.c.id)).all()
        taken = _taken(conn, prefix10)
        for row in rows:
            main = ids.MAIN_TYPE.get(row.kind)
            if row.id in have or main is None:
                continue
            gb_id = ids.make_id(prefix10, main, taken)
            taken.add(gb_id[13:])
            try:
                with conn.begin_nested():
                    conn.execute(gb_ids.insert().values(node=row.id, gb_id=gb_id, serial_key=serial_key(gb_id),
                                                        assigned_at=datetime.now(UTC)))
                made += 1
            except IntegrityError:  # another process made one meanwhile; next time
                continue
    return made


def channels(engine: Engine, node: str | None = None) -> list[Channel]:
    """Every channel of every node (or of ``node``) that has a GB ID, in a stable order (paged Catalog answers)."""
    q = (select(nodes.c.id, nodes.c.kind, nodes.c.place, nodes.c.state, nodes.c.lat, nodes.c.lon, gb_ids.c.gb_id)
         .join(gb_ids, gb_ids.c.node == nodes.c.id).where(nodes.c.state != "removed").order_by(gb_ids.c.gb_id))
    if node is not None:
        q = q.where(nodes.c.id == node)
    out: list[Channel] = []
    with engine.connect() as conn:
        for row in conn.execute(q):
            for role, type_code, label in ROLES.get(row.kind, ()):
                out.append(Channel(gb_id=ids.channel(row.gb_id, type_code), node=row.id, role=role,
                                   name=f"{row.place or row.id} {label}", place=row.place or "",
                                   online=row.state == "online", lat=row.lat, lon=row.lon))
    return out


def channel(engine: Engine, gb_id: str) -> Channel | None:
    """The channel with this ID, or None (not 20 digits, no such node, or not a channel type the node has)."""
    if not ids.GB_ID.fullmatch(gb_id):
        return None
    with engine.connect() as conn:
        row = conn.execute(select(gb_ids.c.node).where(gb_ids.c.serial_key == serial_key(gb_id))).first()
    if row is None:
        return None
    return next((c for c in channels(engine, row.node) if c.gb_id == gb_id), None)


def channel_of(engine: Engine, node: str, role: Role) -> Channel | None:
    return next((c for c in channels(engine, node) if c.role == role), None)
