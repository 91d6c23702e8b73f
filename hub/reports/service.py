"""Reports for the centre (seeds: daily in sensitive periods, weekly normally; per-community scores).

Ranges are days in the centre's time zone (``PINGAN_TIMEZONE``, default Asia/Shanghai); the store
keeps UTC. Response times are measured from the hub's receive time (``alarms.raised_at``) to each
stage's time, as design.md "Time" requires. Definitions:

* alarms: every alarm kind except ``alarm.test`` (tests are counted apart, as ``tests``);
* median: the usual median; p90: nearest rank (the ceil(0.9·n)-th smallest value);
* a stage staff went past without doing it (resolved with nobody acknowledging, say) has no time: it is
  counted as ``skipped`` beside that stage's times (not timed), and the CSV says ``skipped``; alarms the
  system closed (a node's return) skip nothing, nobody was meant to work them;
* resolve time: only alarms resolved by staff (``node.offline`` closed by the node's return is not
  a response);
* an outage (``nodes.offline``, many nodes silent together) counts as one alarm; the nodes'
  ``node.offline`` alarms inside it are not counted again, but still make each node's downtime;
* uptime: the share of the range (from the node's registration if later) not covered by one of the
  node's ``node.offline`` alarms (raised → recovered, or → the end of the range if still open);
* door figures: ``door.granted``/``denied``/``forced``/``held_open``/``lockout`` events by hub time.

Door figures come from a million-row table, so closed days are rolled up once into
``report_door_daily`` (per centre-zone day, node and kind): ``received_at`` is the hub's clock, so
once a day has passed (plus a margin for a batch in flight) no event can join it and its counts never
change. A report reads the rolled days and queries only the open day and partial-day edges; the hub
rolls up yesterday in the background (``roll_up``), and a report rolls up any closed day it lacks.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import HTTPException
from sqlalchemy import String, and_, func, select, type_coerce
from sqlalchemy.engine import Engine

from hub.alarms.escalation import escalations
from hub.alarms.service import STAGES, skipped_stages
from hub.store.engine import now_utc
from hub.store.schema import alarms, door_daily, events, nodes, rolled_days

DOOR_KINDS = ("door.granted", "door.denied", "door.forced", "door.held_open", "door.lockout")
STAGE_COLUMNS = {"acknowledge": "acked_at", "dispatch": "dispatched_at", "arrive": "on_scene_at",
                 "resolve": "resolved_at"}
ROLLUP_MARGIN = timedelta(minutes=5)  # a day is closed this long after its end (batches in flight)


CSV_COLUMNS = ("id", "node", "place", "grid", "kind", "state", "count", "raised_at", "acked_at", "acked_by",
               "dispatched_at", "dispatched_to", "on_scene_at", "resolved_at", "resolved_by", "outcome", "note",
               "escalated", "ack_s", "resolve_s")


# --- ranges --------------------------------------------------------------------------------------
def _parse_bound(value: str, tz: ZoneInfo, end: bool) -> datetime:
    try:
        if len(value) == 10:
            d = date.fromisoformat(value)
            return datetime.combine(d + timedelta(days=1 if end else 0), time(), tz)
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise HTTPException(422, f"bad date {value!r}: use YYYY-MM-DD or an ISO-8601 time") from None
    return dt if dt.tzinfo else dt.replace(tzinfo=tz)


def parse_range(tz_name: str, start: str | None = None, end: str | None = None, period: str | None = None,
                now: datetime | None = None) -> tuple[datetime, datetime, str]:
    """(start, end, label) in the centre's zone; a date as ``to`` includes that whole day."""
    tz = ZoneInfo(tz_name)
    now_local = (now or datetime.now(tz)).astimezone(tz)
    today = datetime.combine(now_local.date(), time(), tz)
    if start or end:
        s = _parse_bound(start, tz, False) if start else today
        e = _parse_bound(end, tz, True) if end else s + timedelta(days=1)
        label = "range"
    elif period in (None, "today"):
        s, e, label = today, today + timedelta(days=1), "today"
    elif period == "yesterday":
        s, e, label = today - timedelta(days=1), today, "yesterday"
    elif period == "week":
        s = today - timedelta(days=now_local.weekday())
        e, label = s + timedelta(days=7), "week"
    else:
        raise HTTPException(422, "period must be today, yesterday or week")
    if e <= s:
        raise HTTPException(422, "the range ends before it starts")
    if e - s > timedelta(days=400):
        raise HTTPException(422, "a range is at most 400 days")
    return s, e, label


# --- figures -------------------------------------------------------------------------------------
def stats(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0, "median_s": None, "p90_s": None}
    s = sorted(values)
    return {"n": len(s), "median_s": round(statistics.median(s), 3),
            "p90_s": round(s[max(0, math.ceil(0.9 * len(s)) - 1)], 3)}


def csv_cell(value: Any) -> str:
    """A CSV cell a spreadsheet will not run: cells starting with = + - @ (or tab/CR) get a leading '."""
    text = "" if value is None else str(value)
    if text and text[0] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


class Reports:
    def __init__(self, engine: Engine, tz: str = "Asia/Shanghai") -> None:
        self.engine = engine
        self.tz = ZoneInfo(tz)

    # the store-layer queries ----------------------------------------------------------------------
    def _alarm_rows(self, start: datetime, end: datetime) -> list[Any]:
        q = (select(alarms, nodes.c.place, nodes.c.grid, escalations.c.escalated_at)
             .join(nodes, nodes.c.id == alarms.c.node, isouter=True)
             .join(escalations, escalations.c.alarm_id == alarms.c.id, isouter=True)
             .where(alarms.c.raised_at >= start, alarms.c.raised_at < end, alarms.c.incident.is_(None))
             .order_by(alarms.c.raised_at))
        with self.engine.connect() as conn:
            return conn.execute(q).all()

    def _seconds(self, later: Any, earlier: Any) -> Any:
        """SQL for ``later - earlier`` in seconds (NULL when either is NULL), done by the database."""
        if self.engine.dialect.name == "sqlite":
            return (func.julianday(later) - func.julianday(earlier)) * 86400.0
        return func.extract("epoch", later - earlier)

    def _summary_rows(self, start: datetime, end: datetime) -> list[Any]:
        """One light row per alarm: the durations come computed, ``raised_at`` raw (parsed below, fast)."""
        raised = alarms.c.raised_at
        q = (select(alarms.c.node, alarms.c.kind, type_coerce(raised, String()).label("raised"),
                    self._seconds(alarms.c.acked_at, raised), self._seconds(alarms.c.dispatched_at, raised),
                    self._seconds(alarms.c.on_scene_at, raised), self._seconds(alarms.c.resolved_at, raised),
                    alarms.c.resolved_by, alarms.c.outcome, nodes.c.place, nodes.c.grid,
                    escalations.c.alarm_id.is_not(None), alarms.c.state)
             .join(nodes, nodes.c.id == alarms.c.node, isouter=True)
             .join(escalations, escalations.c.alarm_id == alarms.c.id, isouter=True)
             .where(alarms.c.raised_at >= start, alarms.c.raised_at < end, alarms.c.incident.is_(None)))
        with self.engine.connect() as conn:
            return conn.execute(q).all()

    def _door_query(self, start: datetime, end: datetime) -> Any:
        return (select(events.c.node, events.c.kind, func.count().label("n"))
                .where(events.c.kind.in_(DOOR_KINDS), events.c.received_at >= start, events.c.received_at < end)
                .group_by(events.c.node, events.c.kind))

    def _midnight(self, d: date) -> datetime:
        return datetime.combine(d, time(), self.tz)

    def roll_up_day(self, day: date) -> None:
        """Count one closed day's door events into report_door_daily (idempotent)."""
        key = {"tz": str(self.tz.key), "day": day.isoformat()}
        with self.engine.begin() as conn:
            if conn.execute(select(rolled_days.c.day).where(
                    and_(*(rolled_days.c[k] == v for k, v in key.items())))).first():
                return
            rows = conn.execute(self._door_query(self._midnight(day), self._midnight(day + timedelta(days=1)))).all()
            if rows:
                conn.execute(door_daily.insert(), [{**key, "node": r.node, "kind": r.kind, "n": r.n} for r in rows])
            conn.execute(rolled_days.insert().values(**key, rolled_at=now_utc()))

    def roll_up(self, now: datetime | None = None, max_days: int = 400) -> int:
        """Roll up every closed day (back to the first event, at most ``max_days``) not rolled yet."""
        now = now or now_utc()
        with self.engine.connect() as conn:
            first = conn.execute(select(func.min(events.c.received_at))).scalar()
            done = {d for (d,) in conn.execute(select(rolled_days.c.day).where(rolled_days.c.tz == str(self.tz.key)))}
        if first is None:
            return 0
        last_closed = (now - ROLLUP_MARGIN).astimezone(self.tz).date() - timedelta(days=1)
        day = max(first.astimezone(self.tz).date(), last_closed - timedelta(days=max_days))
        made = 0
        while day <= last_closed:
            if day.isoformat() not in done:
                self.roll_up_day(day)
                made += 1
            day += timedelta(days=1)
        return made

    def _door_counts(self, start: datetime, end: datetime, now: datetime | None = None) -> list[Any]:
        """[start, a) and [b, end) straight from events; the closed whole days [a, b) from the roll-up."""
        now = now or now_utc()
        first_day = start.astimezone(self.tz).date()
        a = self._midnight(first_day) if self._midnight(first_day) >= start else self._midnight(
            first_day + timedelta(days=1))
        closed = self._midnight((now - ROLLUP_MARGIN).astimezone(self.tz).date())
        b = min(self._midnight(end.astimezone(self.tz).date()), closed)
        out: Counter[tuple[str, str]] = Counter()
        with self.engine.connect() as conn:
            if a >= b:
                return [(n, k, c) for n, k, c in conn.execute(self._door_query(start, end)).all()]
            for lo, hi in ((start, a), (b, end)):
                if hi > lo:
                    for node, kind, n in conn.execute(self._door_query(lo, hi)):
                        out[(node, kind)] += n
        days = []
        d = a.date()
        while self._midnight(d) < b:
            days.append(d)
            d += timedelta(days=1)
        with self.engine.connect() as conn:
            done = {x for (x,) in conn.execute(select(rolled_days.c.day).where(
                rolled_days.c.tz == str(self.tz.key), rolled_days.c.day.in_([x.isoformat() for x in days])))}
        for d in days:
            if d.isoformat() not in done:
                self.roll_up_day(d)
        with self.engine.connect() as conn:
            for node, kind, n in conn.execute(
                    select(door_daily.c.node, door_daily.c.kind, func.sum(door_daily.c.n))
                    .where(door_daily.c.tz == str(self.tz.key), door_daily.c.day >= a.date().isoformat(),
                           door_daily.c.day < b.date().isoformat())
                    .group_by(door_daily.c.node, door_daily.c.kind)):
                out[(node, kind)] += int(n)
        return [(node, kind, n) for (node, kind), n in out.items()]

    def _nodes(self) -> list[Any]:
        with self.engine.connect() as conn:
            return conn.execute(select(nodes.c.id, nodes.c.kind, nodes.c.place, nodes.c.grid, nodes.c.created,
                                       nodes.c.state).where(nodes.c.state != "removed")
                                .order_by(nodes.c.id)).all()

    def _offline_spans(self, start: datetime, end: datetime) -> list[Any]:
        q = (select(alarms.c.node, alarms.c.raised_at, alarms.c.resolved_at)
             .where(alarms.c.kind == "node.offline", alarms.c.raised_at < end,
                    (alarms.c.resolved_at.is_(None)) | (alarms.c.resolved_at > start)))
        with self.engine.connect() as conn:
            return conn.execute(q).all()

    # the report ---------------------------------------------------------------------------------------
    def uptime(self, start: datetime, end: datetime, now: datetime | None = None) -> dict[str, dict[str, Any]]:
        stop = min(end, now) if now else end
        down: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
        for node, raised, resolved in self._offline_spans(start, end):
            a, b = max(raised, start), min(resolved or stop, stop)
            if b > a:
                down[node].append((a, b))
        out = {}
        for n in self._nodes():
            begin = max(start, n.created)
            if begin >= stop:
                continue
            total = (stop - begin).total_seconds()
            spans = sorted((max(a, begin), b) for a, b in down.get(n.id, []) if b > begin)
            merged = 0.0
            cur_a = cur_b = None
            for a, b in spans:  # union of overlapping spans
                if cur_b is None or a > cur_b:
                    if cur_b is not None:
                        merged += (cur_b - cur_a).total_seconds()
                    cur_a, cur_b = a, b
                else:
                    cur_b = max(cur_b, b)
            if cur_b is not None:
                merged += (cur_b - cur_a).total_seconds()
            out[n.id] = {"node": n.id, "grid": n.grid, "place": n.place, "observed_s": round(total, 1),
                         "downtime_s": round(merged, 1), "uptime_pct": round(100 * (1 - merged / total), 3)}
        return out

    def summary(self, start: datetime, end: datetime, now: datetime | None = None) -> dict[str, Any]:
        now = now or datetime.now(self.tz)
        rows = self._summary_rows(start, end)
        real = [r for r in rows if r.kind != "alarm.test"]
        per_node: dict[str, dict[str, Any]] = {}
        per_grid: Counter[str] = Counter()
        per_hour = [0] * 24
        per_day: Counter[str] = Counter()
        durations: dict[str, list[float]] = {k: [] for k in STAGE_COLUMNS}
        ack_all, dispatch_all, arrive_all, resolve_all = (durations[k] for k in STAGE_COLUMNS)
        grid_ack: dict[str, list[float]] = defaultdict(list)
        grid_resolve: dict[str, list[float]] = defaultdict(list)
        grid_false: Counter[str] = Counter()
        grid_escalated: Counter[str] = Counter()
        local_hour: dict[datetime, tuple[int, str]] = {}  # zone lookups once per UTC hour, not per alarm
        by_kind: Counter[str] = Counter()
        by_outcome: Counter[str] = Counter()
        escalated = still_open = 0
        skipped: Counter[str] = Counter()
        reached = {"acknowledge": 1, "dispatch": 2, "arrive": 3}  # stage past which each one counts as skipped
        for (node, kind, raised, acked, dispatched, on_scene, resolved, resolved_by, outcome, place, grid, esc,
             state) in real:
            by_kind[kind] += 1
            if outcome:
                by_outcome[outcome] += 1
            if state != "resolved":
                still_open += 1
            if isinstance(raised, str):  # SQLite's text; other databases return datetimes
                raised = datetime.fromisoformat(raised)
            grid = grid or ""
            item = per_node.get(node)
            if item is None:
                item = per_node[node] = {"node": node, "place": place or "", "grid": grid, "alarms": 0,
                                         "by_kind": Counter()}
            item["alarms"] += 1
            item["by_kind"][kind] += 1
            per_grid[grid] += 1
            hour_key = raised.replace(minute=0, second=0, microsecond=0)
            hd = local_hour.get(hour_key)
            if hd is None:
                local = (hour_key if hour_key.tzinfo else hour_key.replace(tzinfo=UTC)).astimezone(self.tz)
                hd = local_hour[hour_key] = (local.hour, local.date().isoformat())
            per_hour[hd[0]] += 1
            per_day[hd[1]] += 1
            if resolved_by != "system" and state in STAGES:
                at = STAGES.index(state)
                for stage, value in (("acknowledge", acked), ("dispatch", dispatched), ("arrive", on_scene)):
                    if value is None and at > reached[stage]:
                        skipped[stage] += 1
            if acked is not None:
                ack_all.append(acked)
                grid_ack[grid].append(acked)
            if dispatched is not None:
                dispatch_all.append(dispatched)
            if on_scene is not None:
                arrive_all.append(on_scene)
            if resolved is not None and resolved_by != "system":
                resolve_all.append(resolved)
                grid_resolve[grid].append(resolved)
            if outcome == "false_alarm":
                grid_false[grid] += 1
            if esc:
                grid_escalated[grid] += 1
                escalated += 1
        doors_total: Counter[str] = Counter()
        doors_by_node: dict[str, Counter[str]] = defaultdict(Counter)
        for node, kind, n in self._door_counts(start, end, now):
            doors_total[kind.split(".", 1)[1]] += n
            doors_by_node[node][kind.split(".", 1)[1]] += n
        node_list = self._nodes()
        grid_of = {n.id: n.grid or "" for n in node_list}
        members_of: dict[str, list[str]] = defaultdict(list)
        for n, g in grid_of.items():
            members_of[g].append(n)
        up = self.uptime(start, end, now)
        doors_by_grid: dict[str, Counter[str]] = defaultdict(Counter)
        for node, counts in doors_by_node.items():
            doors_by_grid[grid_of.get(node, "")].update(counts)
        grids = sorted({*grid_of.values(), *per_grid})
        scorecard = []
        for g in grids:
            members = members_of.get(g, [])
            ups = [up[n]["uptime_pct"] for n in members if n in up]
            scorecard.append({
                "grid": g, "nodes": len(members), "alarms": per_grid.get(g, 0),
                "false_alarms": grid_false.get(g, 0), "escalated": grid_escalated.get(g, 0),
                "ack": stats(grid_ack.get(g, [])), "resolve": stats(grid_resolve.get(g, [])),
                "uptime_pct": round(sum(ups) / len(ups), 3) if ups else None,
                "doors": {k.split(".", 1)[1]: doors_by_grid[g].get(k.split(".", 1)[1], 0) for k in DOOR_KINDS},
            })
        return {
            "from": start.astimezone(self.tz).isoformat(), "to": end.astimezone(self.tz).isoformat(),
            "timezone": str(self.tz.key),
            "totals": {"alarms": len(real), "tests": len(rows) - len(real),
                       "by_kind": dict(by_kind), "by_outcome": dict(by_outcome), "escalated": escalated,
                       "open": still_open},
            "per_node": [{**v, "by_kind": dict(v["by_kind"])}
                         for v in sorted(per_node.values(), key=lambda v: (-v["alarms"], v["node"]))],
            "per_grid": [{"grid": g, "alarms": n} for g, n in sorted(per_grid.items(), key=lambda x: (-x[1], x[0]))],
            "per_hour": per_hour,
            "per_day": dict(sorted(per_day.items())),
            "response": {stage: {**stats(v), "skipped": skipped.get(stage, 0)} for stage, v in durations.items()},
            "uptime": sorted(up.values(), key=lambda v: (v["uptime_pct"], v["node"])),
            "doors": {k.split(".", 1)[1]: doors_total.get(k.split(".", 1)[1], 0) for k in DOOR_KINDS},
            "doors_by_node": {n: dict(c) for n, c in sorted(doors_by_node.items())},
            "scorecard": scorecard,
            "selftest": self._selftest(end, now),
        }

    def _selftest(self, end: datetime, now: datetime) -> dict[str, Any]:
        """Poles with no self-test result in the 3 days before the report's end (issue 20; the zero report's
        question "does every pole still work" answered even when nothing happened)."""
        from hub.selftest.service import NOT_TESTED_AFTER, not_tested

        with self.engine.connect() as conn:
            return {"not_tested": not_tested(conn, min(end, now)), "not_tested_days": NOT_TESTED_AFTER.days}

    def alarms_csv(self, start: datetime, end: datetime) -> str:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(CSV_COLUMNS)

        def local(at: datetime | None) -> str:
            return at.astimezone(self.tz).isoformat(timespec="seconds") if at else ""

        for r in self._alarm_rows(start, end):
            ack_s: Any = (r.acked_at - r.raised_at).total_seconds() if r.acked_at else None
            if ack_s is None and r.resolved_by != "system" and "acknowledged" in skipped_stages(r.state, r._mapping):
                ack_s = "skipped"  # nobody acknowledged it: a skipped stage, not a time
            res_s = (r.resolved_at - r.raised_at).total_seconds() if r.resolved_at else None
            values = [r.id, r.node, r.place, r.grid, r.kind, r.state, r.count, local(r.raised_at), local(r.acked_at),
                      r.acked_by, local(r.dispatched_at), r.dispatched_to, local(r.on_scene_at),
                      local(r.resolved_at), r.resolved_by, r.outcome, r.note,
                      "yes" if r.escalated_at else "no",
                      round(ack_s, 1) if isinstance(ack_s, float) else ack_s,
                      None if res_s is None else round(res_s, 1)]
            w.writerow([csv_cell(v) for v in values])
        return buf.getvalue()


