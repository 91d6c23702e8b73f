"""History: closed alarms and past events, searched by node, kind, grid and time, newest first, a page at a
time. Each row says whether a snapshot and how many burst frames are stored, so the console asks only
for pictures that are there (a 404 each was an error in the browser's console)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from hub.store.engine import jsonable
from hub.store.schema import alarms, clips, events, nodes, snapshots


def _media(q: Any, id_col: Any) -> Any:
    pictured = select(func.count()).where(snapshots.c.event_id == id_col).scalar_subquery().label("snapshots")
    frames = select(func.count()).where(clips.c.event_id == id_col).scalar_subquery().label("clip_frames")
    return q.add_columns(pictured, frames)


def closed_alarms(engine: Engine, *, node: str | None = None, kind: str | None = None, grid: str | None = None,
                  since: datetime | None = None, until: datetime | None = None, outcome: str | None = None,
                  limit: int = 50, offset: int = 0) -> dict[str, Any]:
    """Resolved alarms matching every filter given, newest first; ``total`` for the pager."""
    where = [alarms.c.state == "resolved"]
    if node:
        where.append(alarms.c.node == node)
    if kind:
        where.append(alarms.c.kind == kind)
    if grid:
        where.append(nodes.c.grid == grid)
    if since:
        where.append(alarms.c.raised_at >= since)
    if until:
        where.append(alarms.c.raised_at < until)
    if outcome:
        where.append(alarms.c.outcome == outcome)
    base = select(alarms, nodes.c.place, nodes.c.grid).join(nodes, nodes.c.id == alarms.c.node, isouter=True)
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(base.where(*where).subquery())).scalar_one()
        rows = conn.execute(_media(base, alarms.c.id).where(*where)
                            .order_by(alarms.c.raised_at.desc()).limit(limit).offset(offset)).all()
    return {"total": total, "items": [jsonable(r) for r in rows]}


def past_events(engine: Engine, *, node: str | None = None, kind: str | None = None, grid: str | None = None,
                since: datetime | None = None, until: datetime | None = None, limit: int = 50,
                offset: int = 0) -> dict[str, Any]:
    """Events matching every filter given, newest first."""
    where = []
    if node:
        where.append(events.c.node == node)
    if kind:
        where.append(events.c.kind == kind)
    if grid:
        where.append(nodes.c.grid == grid)
    if since:
        where.append(events.c.received_at >= since)
    if until:
        where.append(events.c.received_at < until)
    base = (select(events.c.id, events.c.node, events.c.kind, events.c.ts, events.c.received_at, events.c.data,
                   nodes.c.grid, nodes.c.place).join(nodes, nodes.c.id == events.c.node, isouter=True))
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(base.where(*where).subquery())).scalar_one()
        rows = conn.execute(_media(base, events.c.id).where(*where)
                            .order_by(events.c.seq.desc()).limit(limit).offset(offset)).all()
    return {"total": total, "items": [jsonable(r) for r in rows]}
