"""Patrol check-ins (a scanned sticker) and the patrol reports: coverage per grid per day, the longest
night gap per pole.

Who may check in is :func:`may_patrol`, the policy hook the responders' role plugs into: until that
role exists every logged-in user may (a staff member walking the street is a patrol too). A refused
sticker records nothing and leaves an audit row (``patrol.refused``: reason, pole, address), so forged
or copied stickers show up in the audit trail.
"""

from __future__ import annotations

import csv
import io
import math
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, select
from sqlalchemy.engine import Engine

from hub.auth.service import User
from hub.patrols.tokens import PatrolKeys, TokenRefused
from hub.reports.service import csv_cell
from hub.store.engine import add_audit, now_utc
from hub.store.schema import nodes, patrol_checkins

POLE_KIND = "alarm_post"
FAR_M = 200  # a check-in farther than this from the pole's stored position is flagged (a photographed sticker?)
# The responders' policy hook. None: any logged-in user may check in. The responder role (issue 18 item 1)
# sets it, e.g. frozenset({"responder", "operator", "admin"}).
RESPONDER_ROLES: frozenset[str] | None = None


def may_patrol(user: User) -> bool:
    """May this user record a patrol check-in? (the responders' policy hook, see RESPONDER_ROLES)"""
    return RESPONDER_ROLES is None or user.role in RESPONDER_ROLES


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine), metres."""
    r = 6_371_000.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(a))


class Patrols:
    def __init__(self, engine: Engine, keys: PatrolKeys, tz: str, *, max_age_days: int = 730,
                 night: str = "20:00-08:00") -> None:
        self.engine = engine
        self.keys = keys
        self.tz = ZoneInfo(tz)
        self.max_age = timedelta(days=max_age_days)
        a, b = night.split("-")
        self.night_start = time.fromisoformat(a)
        self.night_end = time.fromisoformat(b)

    # --- check-ins -----------------------------------------------------------------------------------
    def check_in(self, user: User, token: str, *, lat: float | None = None, lon: float | None = None,
                 accuracy_m: float | None = None, ip: str = "-", now: datetime | None = None) -> dict[str, Any]:
        """Record a check-in at the sticker's pole, or raise :class:`TokenRefused` (audited)."""
        now = now or now_utc()
        try:
            sticker = self.keys.verify(token, now=now, max_age=self.max_age)
            with self.engine.connect() as conn:
                pole = conn.execute(select(nodes.c.id, nodes.c.place, nodes.c.grid, nodes.c.lat, nodes.c.lon)
                                    .where(nodes.c.id == sticker.node)).first()
            if pole is None:
                raise TokenRefused("foreign", "this hub has no such pole / 本中心没有此设备", sticker.node)
        except TokenRefused as exc:
            with self.engine.begin() as conn:
                add_audit(conn, user.username, "patrol.refused", exc.node or "-",
                          {"reason": exc.reason, "ip": ip, "token": token[:120]})
            raise
        dist = None
        if lat is not None and lon is not None and pole.lat is not None and pole.lon is not None:
            dist = round(distance_m(lat, lon, pole.lat, pole.lon), 1)
        with self.engine.begin() as conn:
            conn.execute(patrol_checkins.insert().values(
                node=pole.id, username=user.username, at=now, lat=lat, lon=lon, accuracy_m=accuracy_m,
                distance_m=dist, token_key=sticker.key_id, token_issued=sticker.issued))
        return {"node": pole.id, "place": pole.place, "grid": pole.grid, "at": now, "distance_m": dist,
                "far": dist is not None and dist > FAR_M}

    def checkins(self, start: datetime, end: datetime, node: str | None = None) -> list[dict[str, Any]]:
        q = select(patrol_checkins).where(and_(patrol_checkins.c.at >= start, patrol_checkins.c.at < end))
        if node:
            q = q.where(patrol_checkins.c.node == node)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q.order_by(patrol_checkins.c.at)).all()]

    # --- reports --------------------------------------------------------------------------------------
    def _poles(self) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(nodes.c.id, nodes.c.place, nodes.c.grid)
                                     .where(nodes.c.kind == POLE_KIND).order_by(nodes.c.grid, nodes.c.id)).all())

    def _days(self, start: datetime, end: datetime) -> list[datetime]:
        day = datetime.combine(start.astimezone(self.tz).date(), time(), self.tz)
        out = []
        while day < end:
            out.append(day)
            day = datetime.combine(day.date() + timedelta(days=1), time(), self.tz)
        return out

    def coverage(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Per day (centre's zone) and grid: poles, poles checked at least once, the share, check-ins."""
        poles = self._poles()
        grid_of = {p.id: p.grid for p in poles}
        by_grid: dict[str, int] = {}
        for p in poles:
            by_grid[p.grid] = by_grid.get(p.grid, 0) + 1
        visits = self.checkins(start, end)
        out = []
        for day in self._days(start, end):
            nxt = datetime.combine(day.date() + timedelta(days=1), time(), self.tz)
            todays = [v for v in visits if day <= v["at"] < nxt and v["node"] in grid_of]
            for grid, n in sorted(by_grid.items()):
                mine = [v for v in todays if grid_of[v["node"]] == grid]
                visited = len({v["node"] for v in mine})
                out.append({"day": day.date().isoformat(), "grid": grid, "poles": n, "visited": visited,
                            "coverage": round(visited / n, 3), "checkins": len(mine)})
        return out

    def night_gaps(self, start: datetime, end: datetime, now: datetime | None = None) -> list[dict[str, Any]]:
        """Per pole: the longest time without a check-in inside a night (``patrol_night``), over the nights
        that start in the range; a night still running counts up to now. A pole nobody visited in a night
        has that whole night as its gap."""
        now = now or now_utc()
        nights = []
        for day in self._days(start, end):
            ns = datetime.combine(day.date(), self.night_start, self.tz)
            ne_day = day.date() + timedelta(days=1) if self.night_end <= self.night_start else day.date()
            ne = min(datetime.combine(ne_day, self.night_end, self.tz), now)
            if ns < ne:
                nights.append((day.date(), ns, ne))
        if not nights:
            return []
        visits = self.checkins(nights[0][1], nights[-1][2])
        out = []
        for pole in self._poles():
            times = [v["at"] for v in visits if v["node"] == pole.id]
            worst: dict[str, Any] | None = None
            for night, ns, ne in nights:
                points = [ns, *(t for t in times if ns <= t < ne), ne]
                gap, a, b = max(((y - x, x, y) for x, y in zip(points, points[1:], strict=False)),
                                key=lambda g: g[0])
                if worst is None or gap > worst["gap"]:
                    worst = {"gap": gap, "night": night, "from": a, "to": b,
                             "checkins": len(points) - 2}
            assert worst is not None
            out.append({"node": pole.id, "place": pole.place, "grid": pole.grid,
                        "longest_gap_min": round(worst["gap"].total_seconds() / 60, 1),
                        "night": worst["night"].isoformat(), "gap_from": worst["from"].astimezone(self.tz),
                        "gap_to": worst["to"].astimezone(self.tz), "checkins_that_night": worst["checkins"]})
        return out


def to_csv(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    """Rows as CSV with bilingual headers, cells a spreadsheet will not run (hub/reports' csv_cell)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([h for _, h in columns])
    for row in rows:
        w.writerow([csv_cell(v.strftime("%Y-%m-%d %H:%M") if isinstance(v, datetime) else v)
                    for v in (row.get(k) for k, _ in columns)])
    return buf.getvalue()
