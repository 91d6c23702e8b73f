"""Each node's health over time: its heartbeats rolled up per hour (issue 21).

``nodes.heartbeat`` keeps only a node's newest heartbeat, because a city's heartbeats as rows would be
173 million a day. A fleet screen still has to answer "has this pole been dropping off every evening?",
"did it restart last night?", "does its CPU overheat in the afternoon sun?", "did its outbox back up
while the uplink was down?". One row per node and hour answers those at 24 rows a day: the ingest
writer adds a batch's heartbeats with one upsert (the same cost as the ``nodes`` upsert beside it), and
a periodic job deletes hours older than ``PINGAN_HEALTH_KEEP_DAYS``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, select

from edge.protocol import Heartbeat
from hub.store.engine import jsonable, upsert
from hub.store.schema import node_health_hourly, nodes

MAX_HOURS = 24 * 30  # what one request may ask for: a month of hours


def hour_of(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def hourly_rows(heartbeats: Iterable[tuple[str, Heartbeat, datetime]]) -> list[dict[str, Any]]:
    """One row per node and hour for a batch (a node's heartbeats that share an hour are merged here, so the
    upsert never meets the same key twice in one statement, which PostgreSQL refuses)."""
    rows: dict[tuple[str, datetime], dict[str, Any]] = {}
    for node, hb, at in heartbeats:
        hour = hour_of(at)
        # booted inside this hour: its uptime is shorter than the time since the hour began
        row = {"node": node, "hour": hour, "heartbeats": 1, "outbox_max": hb.outbox_depth,
               "restarted": int(hb.uptime_s < (at - hour).total_seconds()), "cpu_temp_max": hb.cpu_temp_c,
               "fps_min": hb.fps, "disk_free_min": hb.disk_free_bytes}
        seen = rows.get((node, hour))
        rows[(node, hour)] = row if seen is None else _merge(seen, row)
    return [rows[k] for k in sorted(rows)]  # one lock order for every replica (PostgreSQL)


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    def pick(f: Any, x: Any, y: Any) -> Any:
        return y if x is None else x if y is None else f(x, y)

    return {**a, "heartbeats": a["heartbeats"] + b["heartbeats"],
            "outbox_max": max(a["outbox_max"], b["outbox_max"]), "restarted": max(a["restarted"], b["restarted"]),
            "cpu_temp_max": pick(max, a["cpu_temp_max"], b["cpu_temp_max"]),
            "fps_min": pick(min, a["fps_min"], b["fps_min"]),
            "disk_free_min": pick(min, a["disk_free_min"], b["disk_free_min"])}


def _combine(dialect: str, how: str, col: str) -> str:
    """The stored hour's value and the batch's, the larger (or smaller) one, a missing value ignored: SQLite's
    two-argument max() is NULL when either is, PostgreSQL's GREATEST skips NULLs but is spelled differently."""
    table = node_health_hourly.name
    stored, offered = f"{table}.{col}", f"excluded.{col}"
    fn = {"postgresql": {"max": "GREATEST", "min": "LEAST"}}.get(dialect, {"max": "MAX", "min": "MIN"})[how]
    return f"{fn}(COALESCE({stored}, {offered}), COALESCE({offered}, {stored}))"


def roll_up(conn: Connection, heartbeats: Iterable[tuple[str, Heartbeat, datetime]]) -> None:
    """Add heartbeats to their nodes' hours, in one statement (run inside the writer's transaction)."""
    rows = hourly_rows(heartbeats)
    if not rows:
        return
    d = conn.dialect.name
    t = node_health_hourly.name
    upsert(conn, node_health_hourly, rows, "node, hour", {
        "heartbeats": f"{t}.heartbeats + excluded.heartbeats",
        "outbox_max": _combine(d, "max", "outbox_max"),
        "restarted": _combine(d, "max", "restarted"),
        "cpu_temp_max": _combine(d, "max", "cpu_temp_max"),
        "fps_min": _combine(d, "min", "fps_min"),
        "disk_free_min": _combine(d, "min", "disk_free_min"),
    })


@dataclass(frozen=True)
class NodeHealthHistory:
    engine: Engine
    keep: timedelta

    def hours(self, node: str, hours: int, now: datetime) -> dict[str, Any] | None:
        """The node's last ``hours`` hours (this one included) that have any heartbeat, oldest first; an hour
        without a row is an hour the hub heard nothing from it, and the screen draws it empty. None: no such node."""
        since = hour_of(now) - timedelta(hours=hours - 1)
        with self.engine.connect() as conn:
            if conn.execute(select(nodes.c.id).where(nodes.c.id == node)).first() is None:
                return None
            rows = conn.execute(select(node_health_hourly).where(
                node_health_hourly.c.node == node, node_health_hourly.c.hour >= since)
                .order_by(node_health_hourly.c.hour)).all()
        return {"node": node, "since": since.isoformat(), "hours": hours,
                "rows": [{**jsonable(r), "restarted": bool(r.restarted)} for r in rows]}

    def purge(self, now: datetime) -> int:
        """Delete hours older than ``keep`` (a periodic job on the leader)."""
        with self.engine.begin() as conn:
            return conn.execute(delete(node_health_hourly).where(node_health_hourly.c.hour < now - self.keep)).rowcount
