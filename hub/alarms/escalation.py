"""Escalation: an alarm nobody acknowledged within ``escalate_after_s`` (default 60 s) escalates.

It is marked once (table ``alarm_escalations``, and audited), pushed to the consoles (which show it
louder), and POSTed as JSON to ``PINGAN_ESCALATION_WEBHOOK`` when one is set. The clock is
injectable: tests call :meth:`Escalator.check` with the time they want. A sensitive period in force
(hub/sensitive) shortens the limit for the alarms of its grids (``overrides``), e.g. to 30 s.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from hub.live.messages import AlarmChanged
from hub.store.engine import add_audit, has_rows, jsonable, now_utc
from hub.store.schema import alarms, escalations, nodes

log = logging.getLogger(__name__)


# Kinds that escalate: every alarm kind except tests (alarm.test is shown and reported apart).
NO_ESCALATION = frozenset({"alarm.test"})


class Escalator:
    def __init__(self, engine: Engine, *, after_s: float = 60, webhook: str | None = None,
                 publish: Callable[[list[dict[str, Any]]], None] | None = None,
                 clock: Callable[[], datetime] = now_utc, webhook_timeout_s: float = 5,
                 overrides: Callable[[datetime], dict[str | None, float]] | None = None) -> None:
        self.engine = engine
        self.after = timedelta(seconds=after_s)
        self.webhook = webhook
        self.publish = publish
        self.clock = clock
        self.webhook_timeout_s = webhook_timeout_s
        # shorter limits in force now, per grid (None: the whole district): sensitive periods (hub/sensitive)
        self.overrides = overrides

    def limit_for(self, grid: str | None, overrides: dict[str | None, float]) -> timedelta:
        """The escalation limit of an alarm from a pole in ``grid``: the shortest in force for it."""
        secs = [s for s in (overrides.get(None), overrides.get(grid) if grid else None) if s is not None]
        return min([self.after, *(timedelta(seconds=s) for s in secs)])

    def check(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """Escalate every open, unacknowledged alarm older than the limit; returns the escalated alarms."""
        now = now or self.clock()
        overrides = self.overrides(now) if self.overrides is not None else {}
        shortest = min([self.after, *(timedelta(seconds=s) for s in overrides.values())])
        done = select(escalations.c.alarm_id)
        due = (select(alarms, nodes.c.place, nodes.c.grid).join(nodes, nodes.c.id == alarms.c.node, isouter=True)
               .where(alarms.c.state == "open", alarms.c.raised_at <= now - shortest,
                      alarms.c.kind.not_in(NO_ESCALATION), alarms.c.id.not_in(done),
                      alarms.c.incident.is_(None)))  # an outage's nodes escalate as its one incident
        if not has_rows(self.engine, due):  # this runs every second: no write lock unless there is work
            return []
        with self.engine.begin() as conn:
            rows = conn.execute(due).all()
            out = []
            for row in rows:
                limit = self.limit_for(row.grid, overrides)
                if row.raised_at > now - limit:
                    continue  # a grid without a shorter limit in force: not yet
                conn.execute(escalations.insert().values(alarm_id=row.id, escalated_at=now))
                add_audit(conn, "system", "alarm.escalate", row.id,
                          {"after_s": limit.total_seconds(), "kind": row.kind, "node": row.node})
                out.append({**jsonable(row), "escalated": True, "escalated_at": now.isoformat()})
        for alarm in out:
            log.warning("alarm %s (%s at %s) not acknowledged in time: escalated", alarm["id"], alarm["kind"],
                        alarm["node"])
            if self.webhook:
                self._call_webhook(alarm)
        if out and self.publish:
            self.publish([AlarmChanged(alarm=a, escalated=True).out() for a in out])
        return out

    def _call_webhook(self, alarm: dict[str, Any]) -> None:
        body = json.dumps({"type": "alarm.escalated", "alarm": alarm}).encode()
        req = urllib.request.Request(self.webhook or "", data=body, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "pingan-hub"})
        status, error = None, None
        try:
            with urllib.request.urlopen(req, timeout=self.webhook_timeout_s) as r:
                status = r.status
        except Exception as exc:  # noqa: BLE001 - a dead webhook must not stop escalation
            error = str(exc)[:500]
            status = getattr(exc, "code", None)
            log.error("escalation webhook %s failed: %s", self.webhook, error)
        with self.engine.begin() as conn:
            conn.execute(update(escalations).where(escalations.c.alarm_id == alarm["id"]).values(
                webhook_status=status, webhook_error=error))


def annotate(engine: Engine, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add ``escalated``/``escalated_at`` to alarm dicts (for the API and the console)."""
    ids = [a["id"] for a in items if "id" in a]
    if not ids:
        return items
    with engine.connect() as conn:
        found = dict(conn.execute(select(escalations.c.alarm_id, escalations.c.escalated_at)
                                  .where(escalations.c.alarm_id.in_(ids))).all())
    for a in items:
        at = found.get(a.get("id"))
        a["escalated"] = at is not None
        a["escalated_at"] = at.isoformat() if at else None
    return items
