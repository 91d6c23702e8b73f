"""The audit log for administrators: who did what to what, filtered by actor, action, target and time,
newest first, a page at a time, and the same rows as CSV (UTF-8 with a BOM so Excel in a Chinese
locale opens it as UTF-8)."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from hub.store.engine import jsonable
from hub.store.schema import audit


def _where(actor: str | None, action: str | None, target: str | None, since: datetime | None,
           until: datetime | None) -> list[Any]:
    where = []
    if actor:
        where.append(audit.c.actor == actor)
    if action:  # "user." finds every user action; "user.add" that one
        where.append(audit.c.action.startswith(action, autoescape=True) if action.endswith(".")
                     else audit.c.action == action)
    if target:
        where.append(audit.c.target == target)
    if since:
        where.append(audit.c.at >= since)
    if until:
        where.append(audit.c.at < until)
    return where


def audit_page(engine: Engine, *, actor: str | None = None, action: str | None = None, target: str | None = None,
               since: datetime | None = None, until: datetime | None = None, limit: int = 50,
               offset: int = 0) -> dict[str, Any]:
    where = _where(actor, action, target, since, until)
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(audit).where(*where)).scalar_one()
        rows = conn.execute(select(audit).where(*where).order_by(audit.c.seq.desc()).limit(limit).offset(offset)).all()
    return {"total": total, "items": [jsonable(r) for r in rows]}


def audit_csv(engine: Engine, *, actor: str | None = None, action: str | None = None, target: str | None = None,
              since: datetime | None = None, until: datetime | None = None, limit: int = 100_000) -> str:
    page = audit_page(engine, actor=actor, action=action, target=target, since=since, until=until, limit=limit)
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["at", "actor", "action", "target", "detail"])
    for r in page["items"]:
        w.writerow([r["at"], r["actor"], r["action"], r["target"], json.dumps(r["detail"] or {}, ensure_ascii=False)])
    return "\ufeff" + out.getvalue()
