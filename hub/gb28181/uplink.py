"""The city's alarms from the store, so none is lost on the way up (issue 19's open end).

The adapter takes alarms from the live fan-out, as a console does: that is fast, but the fan-out is memory. An
alarm was lost when the hub restarted before the platform took it, when the city platform stayed away longer
than the wait for its registration, when it did not answer three tries, when 10,000 alarms were already waiting,
or when the fan-out dropped the adapter as too slow. The events table already holds every alarm, so the
uplink now remembers which ones the platform *settled* (took, or refused for good) and sweeps the store for the
rest: every alarm event goes up until the platform takes it, or it is a day old (a city platform has no use
for a day-old alarm; it is logged and counted as given up).

The sweep reads the events received since a mark, ``settled_before``: every alarm before it is settled. The
mark trails the oldest unsettled alarm and never comes closer to now than :data:`LATE_COMMIT_S` (a replica's
batch on PostgreSQL gets its ``received_at`` before its commit), so what the sweep reads is minutes, not a
day of a city's events. It leaves the newest :data:`FRESH_S` to the live path. A hub that turns city
networking on for the first time starts the mark at that moment: it does not send the platform its history.

Only the leader runs the adapter (docs/gb28181.md), so one process writes these tables. At a change of leader
an alarm the old leader was sending may go up twice; never zero times.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, select, update

from hub.store.engine import insert_ignore
from hub.store.schema import events, gb_alarm_uplink, gb_uplink_mark

# what can go up (hub/gb28181/alarms.py code_for says which of them do, by their data and the node)
KINDS = ("alarm.pressed", "tamper.opened", "tamper.camera", "detection.loitering", "detection.person",
         "door.forced", "door.held_open")
FRESH_S = 10.0  # the live path's: the sweep leaves an alarm this young to it
LATE_COMMIT_S = 60.0  # a batch commits within this of the received_at it gave its events
GIVE_UP_AFTER = timedelta(hours=24)
KEEP = timedelta(days=2)  # settled rows older than the mark can never be read again; kept a while for audit
SWEEP_ROWS = 500


@dataclass(frozen=True)
class StoredAlarm:
    id: str
    node: str
    kind: str
    ts: str
    data: dict[str, Any]
    received_at: datetime


class UplinkStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def mark(self, now: datetime) -> datetime:
        """Where the sweep starts; the first start of city networking puts it at ``now``."""
        with self.engine.begin() as conn:
            at = conn.execute(select(gb_uplink_mark.c.settled_before).where(gb_uplink_mark.c.id == 1)).scalar()
            if at is None:
                insert_ignore(conn, gb_uplink_mark, {"id": 1, "settled_before": now}, "id")
                return now
            return at  # type: ignore[no-any-return]

    def unsettled(self, since: datetime, before: datetime, limit: int = SWEEP_ROWS) -> list[StoredAlarm]:
        """Alarm events received in [since, before) that the platform has not settled, oldest first."""
        settled = select(gb_alarm_uplink.c.event_id).where(gb_alarm_uplink.c.event_id == events.c.id)
        q = (select(events.c.id, events.c.node, events.c.kind, events.c.ts, events.c.data, events.c.received_at)
             .where(events.c.received_at >= since, events.c.received_at < before, events.c.kind.in_(KINDS),
                    ~settled.exists())
             .order_by(events.c.received_at).limit(limit))
        with self.engine.connect() as conn:
            return [StoredAlarm(r.id, r.node, r.kind, r.ts.isoformat(), r.data if isinstance(r.data, dict) else {},
                                r.received_at) for r in conn.execute(q)]

    def is_settled(self, event_id: str) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(gb_alarm_uplink.c.event_id)
                                .where(gb_alarm_uplink.c.event_id == event_id)).first() is not None

    def settle(self, event_id: str, outcome: str, now: datetime) -> None:
        with self.engine.begin() as conn:
            insert_ignore(conn, gb_alarm_uplink, {"event_id": event_id, "outcome": outcome, "at": now}, "event_id")

    def advance(self, oldest_unsettled: datetime | None, now: datetime) -> datetime:
        """Moves the mark up to the oldest alarm still owed to the platform (or to now - LATE_COMMIT_S)."""
        with self.engine.begin() as conn:
            mark = conn.execute(select(gb_uplink_mark.c.settled_before).where(gb_uplink_mark.c.id == 1)).scalar()
            floor = now - timedelta(seconds=LATE_COMMIT_S)
            new = max(mark, floor) if mark is not None else floor
            if oldest_unsettled is not None:
                new = min(new, oldest_unsettled)
            if mark is None or new > mark:
                conn.execute(update(gb_uplink_mark).where(gb_uplink_mark.c.id == 1).values(settled_before=new))
            return new if mark is None else max(new, mark)

    def purge(self, now: datetime) -> int:
        with self.engine.begin() as conn:
            return conn.execute(delete(gb_alarm_uplink).where(gb_alarm_uplink.c.at < now - KEEP)).rowcount or 0
