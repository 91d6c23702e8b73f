"""History: closed alarms and past events, searched by node, kind, grid and time, newest first, a page at a
time. Each row says whether a snapshot and how many burst frames are stored, so the console asks only
for pictures that are there (a 404 each was an error in the browser's console)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from hub.alarms.service import with_skipped
from hub.store.engine import jsonable
from hub.store.schema import alarms, clips, events, nodes, snapshots


def _media(q: Any, id_col: Any) -> Any:
    pictured = select(func.count()).where(snapshots.c.event_id == id_col).scalar_subquery().label("snapshots")
    frames = select(func.count()).where(clips.c.event_id == id_col).scalar_subquery().label("clip_frames")
    return q.add_columns(pictured, frames)


def _filters(table: Any, time_col: Any, node: str | None, kind: str | None, grid: str | None,
             since: datetime | None, until: datetime | None) -> list[Any]:
    """The search's common filters; ``time_col`` is the table's own time (raised or received)."""
    where = []
    if node:
        where.append(table.c.node == node)
    if kind:
        where.append(table.c.kind == kind)
    if grid:
        where.append(nodes.c.grid == grid)
    if since:
        where.append(time_col >= since)
    if until:
        where.append(time_col < until)
    return where


def _page(base: Any, id_col: Any, where: list[Any], order: Any, limit: int, offset: int,
          engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(base.where(*where).subquery())).scalar_one()
        rows = conn.execute(_media(base, id_col).where(*where).order_by(order).limit(limit).offset(offset)).all()
    return {"total": total, "items": [jsonable(r) for r in rows]}


def closed_alarms(engine: Engine, *, node: str | None = None, kind: str | None = None, grid: str | None = None,
                  since: datetime | None = None, until: datetime | None = None, outcome: str | None = None,
                  limit: int = 50, offset: int = 0) -> dict[str, Any]:
    """Resolved alarms matching every filter given, newest first; ``total`` for the pager."""
    where = [alarms.c.state == "resolved",
             *_filters(alarms, alarms.c.raised_at, node, kind, grid, since, until)]
    if outcome:
        where.append(alarms.c.outcome == outcome)
    base = select(alarms, nodes.c.place, nodes.c.grid).join(nodes, nodes.c.id == alarms.c.node, isouter=True)
    page = _page(base, alarms.c.id, where, alarms.c.raised_at.desc(), limit, offset, engine)
    page["items"] = [with_skipped(a) for a in page["items"]]  # stages nobody did, as the queue shows them
    return page


def past_events(engine: Engine, *, node: str | None = None, kind: str | None = None, grid: str | None = None,
                since: datetime | None = None, until: datetime | None = None, limit: int = 50,
                offset: int = 0) -> dict[str, Any]:
    """Events matching every filter given, newest first."""
    where = _filters(events, events.c.received_at, node, kind, grid, since, until)
    base = (select(events.c.id, events.c.node, events.c.kind, events.c.ts, events.c.received_at, events.c.data,
                   nodes.c.grid, nodes.c.place).join(nodes, nodes.c.id == events.c.node, isouter=True))
    return _page(base, events.c.id, where, events.c.seq.desc(), limit, offset, engine)
