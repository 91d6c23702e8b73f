"""People on duty and dispatch (issue 18): who can go, who is nearest, and each step of a task.

* **Teams** are tied to grids and have a kind (grid staff, volunteer, patrol, police room) and weekly
  shifts in the district's time zone (``HubSettings.timezone``). A **responder** is a login with the
  role ``responder`` plus a row here (team, kind, consent to share position); their phone number is in
  the one phone book (``notify_contacts``) that the robots and SMS read.
* **On duty** = inside one of the team's shifts *and* checked in from the phone. A position is stored
  only while on duty and with consent; otherwise it is refused (409) and nothing is kept, so going off
  duty (checking out, or the shift ending) stops tracking. Positions older than
  ``position_keep_days`` are purged by a periodic job.
* **Dispatch**: the operator sees the on-duty responders of the alarm's grid nearest first (distance
  from the last fix, with the fix's age) and offers the task to one, several or a team. An offer not
  accepted within ``accept_within_s`` expires: the next nearest who has not been asked gets it and the
  operator's card is flagged. A decline needs a reason and is handled the same way. The first accept
  moves the alarm to ``dispatched``: the pole's LED says "help coming" (design.md "The resident's
  feedback"; the node command goes out after the commit, through ``HubService.writing``). On scene
  records the position and the distance to the pole; resolved records outcome, note and photos.
* When the alarm is resolved (by an operator at the console, or by one responder), every other task on it
  still in play (offered, not accepted in time, accepted, on scene) is withdrawn at once and each phone is
  told on its stream, so nobody keeps driving to a closed alarm; a resolved alarm's task can no longer be
  accepted. (The expiry sweep still withdraws any offer it finds on a closed alarm, as a safety net.)
* Every step is timed on its dispatch row and audited; each change is published to the operators'
  stream (``DispatchChanged``) and to the responder's own stream (``TaskMessage``) after the commit.
"""

from __future__ import annotations

import io
import logging
import math
import secrets
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection, Engine

from hub.alarms.service import OUTCOMES, STAGES, HubService
from hub.errors import Conflict, HubError, NotFound
from hub.live.messages import DispatchChanged, TaskMessage
from hub.store.engine import add_audit, jsonable, now_utc
from hub.store.schema import (
    alarms,
    dispatch_photos,
    dispatches,
    nodes,
    notify_contacts,
    positions,
    responders,
    shifts,
    snapshots,
    teams,
    users,
)

log = logging.getLogger(__name__)
KINDS = ("grid_staff", "volunteer", "patrol", "police_room")
ACTIVE = ("offered", "accepted", "on_scene")  # a dispatch still in play
MAX_PHOTOS = 4
PHOTO_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


class Forbidden(HubError):
    """A responder acting on a task that is not theirs (403)."""


class BadInput(HubError):
    """Input that is well-formed JSON but makes no sense here (422)."""


class TooLarge(HubError):
    """A photo over the limit (413)."""


class Notifier(Protocol):
    """Where a dispatch goes besides the responder's open page: the notify channels (Web Push, WeCom,
    DingTalk, SMS; hub/notify) implement this; app wiring injects one."""

    def send(self, responder: str, task: dict[str, Any]) -> None: ...


class NoChannel:
    """The default notifier: nothing is configured, and that is recorded (audit ``notify.none``), so a
    missing channel shows in the audit trail rather than passing for a delivery."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def send(self, responder: str, task: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            add_audit(conn, "system", "notify.none", responder,
                      {"dispatch": task.get("id"), "detail": "no channel configured"})


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine; a district is small enough for a sphere)."""
    r = 6_371_000.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(min(1.0, math.sqrt(a)))


def parse_hhmm(text: str) -> int:
    try:
        h, m = text.split(":")
        minutes = int(h) * 60 + int(m)
    except ValueError:
        raise BadInput(f"bad time {text!r}: use HH:MM, e.g. 08:00") from None
    if not 0 <= int(h) <= 24 or not 0 <= int(m) < 60 or minutes > 24 * 60:
        raise BadInput(f"bad time {text!r}: use HH:MM between 00:00 and 24:00")
    return minutes


def in_shift(rows: Iterable[Any], local: datetime) -> bool:
    """Whether ``local`` (the district's wall clock) falls in one of the weekly shifts ``rows``.
    A shift whose end is before its start runs past midnight into the next day."""
    day, minute = local.weekday(), local.hour * 60 + local.minute
    for s in rows:
        if s.start_min < s.end_min:
            if s.weekday == day and s.start_min <= minute < s.end_min:
                return True
        else:  # overnight: the evening of its weekday, the morning of the next
            if (s.weekday == day and minute >= s.start_min) or ((s.weekday + 1) % 7 == day and minute < s.end_min):
                return True
    return False


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    v = sorted(values)
    k = (len(v) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return round(v[lo] + (v[hi] - v[lo]) * (k - lo), 1)


class Responders:
    """Teams, shifts, duty, positions, dispatch and reports over the store.

    ``publish_ops`` sends messages to the operators' stream (``LiveHub.publish_threadsafe``),
    ``publish_task`` to one responder's stream; both are called after the commit."""

    def __init__(self, engine: Engine, service: HubService, *, timezone: str = "Asia/Shanghai",
                 accept_within_s: float = 60, keep_days: float = 30, warn_m: float = 200,
                 photo_max_bytes: int = 10 * 1024 * 1024, auto_kinds: Iterable[str] = (),
                 publish_ops: Callable[[list[dict[str, Any]]], None] = lambda m: None,
                 publish_task: Callable[[str, dict[str, Any]], None] = lambda u, m: None,
                 notifier: Notifier | None = None, clock: Callable[[], datetime] = now_utc) -> None:
        self.engine = engine
        self.service = service
        self.tz = ZoneInfo(timezone)
        self.accept_within = timedelta(seconds=accept_within_s)
        self.keep = timedelta(days=keep_days)
        self.warn_m = warn_m
        self.photo_max_bytes = photo_max_bytes
        self.auto_kinds = frozenset(auto_kinds)
        self.publish_ops = publish_ops
        self.publish_task = publish_task
        self.notifier: Notifier = notifier or NoChannel(engine)
        self.clock = clock
        self._auto = ThreadPoolExecutor(1, thread_name_prefix="auto-dispatch")  # off the ingest thread
        self._lock = threading.Lock()  # one re-offer round at a time in this process

    # --- teams, shifts, responders ------------------------------------------------------------
    def set_team(self, team_id: str, name: str, kind: str, grids: list[str], actor: str) -> dict[str, Any]:
        if kind not in KINDS:
            raise BadInput(f"team kind must be one of {', '.join(KINDS)}")
        if not team_id or len(team_id) > 32:
            raise BadInput("team id: 1 to 32 characters")
        grids = sorted({g.strip() for g in grids if g.strip()})
        with self.engine.begin() as conn:
            if conn.execute(select(teams.c.id).where(teams.c.id == team_id)).first():
                conn.execute(update(teams).where(teams.c.id == team_id).values(name=name, kind=kind, grids=grids))
            else:
                conn.execute(teams.insert().values(id=team_id, name=name, kind=kind, grids=grids))
            add_audit(conn, actor, "team.set", team_id, {"kind": kind, "grids": grids})
        return {"id": team_id, "name": name, "kind": kind, "grids": grids}

    def set_shifts(self, team_id: str, weekly: list[tuple[int, str, str]], actor: str) -> list[dict[str, Any]]:
        """Replace a team's weekly shifts: (weekday 0=Monday, "HH:MM" start, "HH:MM" end) in the district's zone."""
        rows = []
        for day, start, end in weekly:
            if not 0 <= day <= 6:
                raise BadInput(f"weekday {day}: 0 (Monday) to 6 (Sunday)")
            s, e = parse_hhmm(start), parse_hhmm(end)
            if s == e:
                raise BadInput(f"shift {start}-{end} is empty")
            rows.append({"team": team_id, "weekday": day, "start_min": s, "end_min": e % (24 * 60)})
        with self.engine.begin() as conn:
            if not conn.execute(select(teams.c.id).where(teams.c.id == team_id)).first():
                raise NotFound(f"no team {team_id}")
            conn.execute(delete(shifts).where(shifts.c.team == team_id))
            if rows:
                conn.execute(shifts.insert(), rows)
            add_audit(conn, actor, "team.shifts", team_id, {"shifts": [list(w) for w in weekly]})
        return self.list_shifts(team_id)

    def list_shifts(self, team_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(shifts).where(shifts.c.team == team_id)
                                .order_by(shifts.c.weekday, shifts.c.start_min)).all()
        return [{"weekday": r.weekday, "start": f"{r.start_min // 60:02d}:{r.start_min % 60:02d}",
                 "end": f"{r.end_min // 60:02d}:{r.end_min % 60:02d}"} for r in rows]

    def list_teams(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            out = [jsonable(r) for r in conn.execute(select(teams).order_by(teams.c.id))]
        for t in out:
            t["shifts"] = self.list_shifts(t["id"])
        return out

    def set_responder(self, username: str, name: str, team_id: str, kind: str | None, phone: str | None,
                      actor: str) -> dict[str, Any]:
        """Tie a ``responder`` login to a team (the login is made with ``pingan-hub users add --role responder``)."""
        with self.engine.begin() as conn:
            role = conn.execute(select(users.c.role).where(users.c.username == username)).scalar()
            if role is None:
                raise NotFound(f"no user {username} (pingan-hub users add {username} --role responder)")
            if role != "responder":
                raise BadInput(f"{username} is a {role}, not a responder")
            team = conn.execute(select(teams).where(teams.c.id == team_id)).first()
            if team is None:
                raise NotFound(f"no team {team_id}")
            kind = kind or team.kind
            if kind not in KINDS:
                raise BadInput(f"kind must be one of {', '.join(KINDS)}")
            values = {"name": name or username, "team": team_id, "kind": kind}
            if conn.execute(select(responders.c.username).where(responders.c.username == username)).first():
                conn.execute(update(responders).where(responders.c.username == username).values(**values))
            else:
                conn.execute(responders.insert().values(username=username, consent=False, **values))
            if phone is not None:  # one phone book: the robots' @-mentions and SMS read the same number
                conn.execute(delete(notify_contacts).where(notify_contacts.c.username == username))
                conn.execute(notify_contacts.insert().values(username=username, phone=phone or None,
                                                             updated=self.clock()))
            add_audit(conn, actor, "responder.set", username, {"team": team_id, "kind": kind})
        return self.me(username)

    def list_responders(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            names = [r.username for r in conn.execute(select(responders.c.username).order_by(responders.c.username))]
        return [self.me(n) for n in names]

    # --- duty and position --------------------------------------------------------------------
    @staticmethod
    def _with_phone() -> Any:
        """A responder's row with their number from the one phone book (``notify_contacts``)."""
        return (select(responders, func.coalesce(notify_contacts.c.phone, "").label("phone"))
                .join(notify_contacts, notify_contacts.c.username == responders.c.username, isouter=True))

    def _row(self, conn: Connection, username: str) -> Any:
        row = conn.execute(self._with_phone().where(responders.c.username == username)).first()
        if row is None:
            raise NotFound(f"{username} is not set up as a responder yet (ask the centre to add you to a team)")
        return row

    def _in_shift(self, conn: Connection, team_id: str) -> bool:
        rows = conn.execute(select(shifts).where(shifts.c.team == team_id)).all()
        return in_shift(rows, self.clock().astimezone(self.tz))

    def me(self, username: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = self._row(conn, username)
            team = conn.execute(select(teams).where(teams.c.id == row.team)).first()
            shift_now = self._in_shift(conn, row.team)
        out = jsonable(row)
        out["team_name"] = team.name if team else row.team
        out["grids"] = list(team.grids) if team else []
        out["in_shift"] = shift_now
        out["on_duty"] = shift_now and row.checked_in is not None
        out["shifts"] = self.list_shifts(row.team)
        return out

    def check_in(self, username: str, consent: bool) -> dict[str, Any]:
        """Start duty from the phone: only inside a shift (409 outside one)."""
        now = self.clock()
        with self.engine.begin() as conn:
            row = self._row(conn, username)
            if not self._in_shift(conn, row.team):
                raise Conflict("no shift of your team now: you can check in during a shift")
            conn.execute(update(responders).where(responders.c.username == username)
                         .values(checked_in=now, consent=consent))
            add_audit(conn, username, "duty.check_in", username, {"consent": consent})
        return self.me(username)

    def check_out(self, username: str) -> dict[str, Any]:
        """End duty: tracking stops (positions are refused) and the last fix is forgotten."""
        with self.engine.begin() as conn:
            self._row(conn, username)
            conn.execute(update(responders).where(responders.c.username == username).values(
                checked_in=None, last_lat=None, last_lon=None, last_accuracy=None, last_fix_at=None))
            add_audit(conn, username, "duty.check_out", username)
        return self.me(username)

    def record_position(self, username: str, lat: float, lon: float, accuracy: float | None) -> dict[str, Any]:
        """Store a fix, only while on duty and with consent; otherwise 409 and nothing is kept."""
        now = self.clock()
        with self.engine.begin() as conn:
            row = self._row(conn, username)
            if row.checked_in is None or not self._in_shift(conn, row.team):
                raise Conflict("off duty: position not recorded")
            if not row.consent:
                raise Conflict("no consent to share position: position not recorded")
            conn.execute(positions.insert().values(username=username, at=now, lat=lat, lon=lon, accuracy=accuracy))
            conn.execute(update(responders).where(responders.c.username == username).values(
                last_lat=lat, last_lon=lon, last_accuracy=accuracy, last_fix_at=now))
        return {"recorded": True, "at": now.isoformat()}

    def purge_positions(self) -> int:
        """Delete positions older than ``position_keep_days`` (a periodic job)."""
        with self.engine.begin() as conn:
            return conn.execute(delete(positions).where(positions.c.at < self.clock() - self.keep)).rowcount

    # --- who can go -----------------------------------------------------------------------------
    def _alarm_place(self, conn: Connection, alarm_id: str) -> Any:
        row = conn.execute(select(alarms.c.id, alarms.c.node, alarms.c.kind, alarms.c.state, alarms.c.raised_at,
                                  nodes.c.grid, nodes.c.place, nodes.c.lat, nodes.c.lon)
                           .join(nodes, nodes.c.id == alarms.c.node, isouter=True)
                           .where(alarms.c.id == alarm_id)).first()
        if row is None:
            raise NotFound(f"no alarm {alarm_id}")
        return row

    def _on_duty(self, conn: Connection, grid: str | None, team_id: str | None = None) -> list[dict[str, Any]]:
        now = self.clock()
        local = now.astimezone(self.tz)
        team_rows = conn.execute(select(teams)).all()
        shift_rows = conn.execute(select(shifts)).all()
        ok_teams = {t.id for t in team_rows
                    if (team_id is None or t.id == team_id) and (grid is None or grid in (t.grids or []))
                    and in_shift([s for s in shift_rows if s.team == t.id], local)}
        if not ok_teams:
            return []
        rows = conn.execute(self._with_phone().where(responders.c.team.in_(ok_teams),
                                                     responders.c.checked_in.is_not(None))).all()
        return [jsonable(r) for r in rows]

    def candidates(self, alarm_id: str) -> list[dict[str, Any]]:
        """On-duty responders of the alarm's grid, nearest first (no fix: last), with the fix's age and
        what each is doing now (busy: an accepted task in play)."""
        with self.engine.connect() as conn:
            alarm = self._alarm_place(conn, alarm_id)
            people = self._on_duty(conn, alarm.grid or "")
            busy = {r.responder for r in conn.execute(select(dispatches.c.responder).where(
                dispatches.c.state.in_(("accepted", "on_scene"))))}
            asked = {r.responder: r.state for r in conn.execute(select(dispatches.c.responder, dispatches.c.state)
                                                                 .where(dispatches.c.alarm_id == alarm_id))}
        now = self.clock()
        for p in people:
            p["distance_m"] = None
            p["fix_age_s"] = None
            if p["last_fix_at"] is not None:
                p["fix_age_s"] = round((now - datetime.fromisoformat(p["last_fix_at"])).total_seconds())
                if alarm.lat is not None and alarm.lon is not None:
                    p["distance_m"] = round(distance_m(p["last_lat"], p["last_lon"], alarm.lat, alarm.lon))
            p["busy"] = p["username"] in busy
            p["asked"] = asked.get(p["username"])
        people.sort(key=lambda p: (p["busy"], p["distance_m"] is None, p["distance_m"] or 0, p["username"]))
        return people

    # --- dispatch -------------------------------------------------------------------------------
    def dispatch(self, alarm_id: str, by: str, *, to: list[str] | None = None, team: str | None = None,
                 nearest: int = 0) -> list[dict[str, Any]]:
        """Offer the task to responders (``to``), to a team's on-duty members, or to the ``nearest`` N."""
        if not to and not team and not nearest:
            raise BadInput("say whom: responders (to), a team, or nearest")
        people = self.candidates(alarm_id)
        by_name = {p["username"]: p for p in people}
        chosen: list[dict[str, Any]] = []
        for name in to or []:
            if name not in by_name:
                raise Conflict(f"{name} is not on duty for this alarm's grid")
            chosen.append(by_name[name])
        if team:
            members = [p for p in people if p["team"] == team]
            if not members:
                raise Conflict(f"nobody of team {team} is on duty for this alarm's grid")
            chosen += [p for p in members if p not in chosen]
        if nearest:
            chosen += [p for p in people if p not in chosen and not p["asked"] and not p["busy"]][:nearest]
        chosen = [p for p in chosen if p["asked"] not in ACTIVE]
        if not chosen:
            raise Conflict("nobody on duty left to ask for this alarm")
        return self._offer(alarm_id, by, chosen)

    def _offer(self, alarm_id: str, by: str, people: list[dict[str, Any]], flag: str | None = None,
               ops_extra: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        now = self.clock()
        made = []
        with self.service.writing() as conn:
            alarm = conn.execute(select(alarms.c.state).where(alarms.c.id == alarm_id)).scalar()
            if alarm is None:
                raise NotFound(f"no alarm {alarm_id}")
            if alarm == "resolved":
                raise Conflict("the alarm is resolved")
            if alarm == "open":  # asking someone to go is acknowledging it (the LED: "seen")
                self._advance(conn, alarm_id, "acknowledged", by)
            for p in people:
                row = {"id": secrets.token_hex(8), "alarm_id": alarm_id, "responder": p["username"],
                       "team": p["team"], "by": by, "state": "offered", "offered_at": now,
                       "distance_m": p.get("distance_m")}
                conn.execute(dispatches.insert().values(**row))
                add_audit(conn, by, "dispatch.offer", alarm_id, {"responder": p["username"], "dispatch": row["id"],
                                                                 "distance_m": p.get("distance_m"), "flag": flag})
                made.append(row["id"])
        tasks = [self.task(d) for d in made]
        self._after(alarm_id, tasks, flag, ops_extra)
        for t in tasks:
            try:
                self.notifier.send(t["responder"], t)
            except Exception:  # noqa: BLE001 - a channel failing never undoes the dispatch
                log.exception("notifying %s of %s failed", t["responder"], t["id"])
        return tasks

    def _advance(self, conn: Connection, alarm_id: str, stage: str, actor: str, **values: Any) -> None:
        """Move the alarm forward inside ``conn`` (its node command goes out after the commit), never back."""
        state = conn.execute(select(alarms.c.state).where(alarms.c.id == alarm_id)).scalar()
        if state is None or STAGES.index(stage) <= STAGES.index(state):
            return
        self.service.advance_in(conn, alarm_id, stage, actor, **values)

    def _after(self, alarm_id: str, tasks: list[dict[str, Any]], flag: str | None = None,
               extra: list[dict[str, Any]] | None = None) -> None:
        """After a commit: each task to its responder's page, and the dispatches to the operators' cards."""
        for t in tasks:
            self.publish_task(t["responder"], TaskMessage(task=t).out())
        msg = DispatchChanged(alarm_id=alarm_id, alarm=self.service.get_alarm(alarm_id),
                              dispatches=self.for_alarm(alarm_id), flag=flag)
        self.publish_ops([msg.out(), *(extra or [])])

    def for_alarm(self, alarm_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(dispatches, responders.c.name)
                                .join(responders, responders.c.username == dispatches.c.responder, isouter=True)
                                .where(dispatches.c.alarm_id == alarm_id).order_by(dispatches.c.offered_at)).all()
        return [jsonable(r) for r in rows]

    def task(self, dispatch_id: str, username: str | None = None) -> dict[str, Any]:
        """What the responder's page shows: the dispatch, the alarm, the place and its coordinates.
        ``username`` given: 403 unless it is theirs."""
        with self.engine.connect() as conn:
            d = conn.execute(select(dispatches).where(dispatches.c.id == dispatch_id)).first()
            if d is None:
                raise NotFound(f"no task {dispatch_id}")
            if username is not None and d.responder != username:
                raise Forbidden("this task is not yours")
            a = self._alarm_place(conn, d.alarm_id)
            presses = conn.execute(select(alarms.c.count).where(alarms.c.id == d.alarm_id)).scalar()
            pictured = conn.execute(select(snapshots.c.event_id).where(snapshots.c.event_id == d.alarm_id)).first()
            photos = conn.execute(select(func.count()).select_from(dispatch_photos)
                                  .where(dispatch_photos.c.dispatch_id == dispatch_id)).scalar()
        out = jsonable(d)
        out.update(kind=a.kind, node=a.node, grid=a.grid or "", place=a.place or "", lat=a.lat, lon=a.lon,
                   alarm_state=a.state, raised_at=a.raised_at.isoformat(), presses=presses or 1,
                   has_snapshot=pictured is not None, photos=photos or 0,
                   geo=f"geo:{a.lat},{a.lon}" if a.lat is not None and a.lon is not None else None,
                   accept_by=(d.offered_at + self.accept_within).isoformat())
        return out

    def tasks_of(self, username: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            ids = [r.id for r in conn.execute(
                select(dispatches.c.id).join(alarms, alarms.c.id == dispatches.c.alarm_id)
                .where(dispatches.c.responder == username, dispatches.c.state.in_(ACTIVE),
                       alarms.c.state != "resolved").order_by(dispatches.c.offered_at))]
        return [self.task(i) for i in ids]

    def _step(self, dispatch_id: str, username: str, want: tuple[str, ...], values: dict[str, Any],
              action: str, detail: dict[str, Any], alarm_stage: str | None = None,
              alarm_values: dict[str, Any] | None = None) -> dict[str, Any]:
        with self.service.writing() as conn:
            d = conn.execute(select(dispatches).where(dispatches.c.id == dispatch_id)).first()
            if d is None:
                raise NotFound(f"no task {dispatch_id}")
            if d.responder != username:
                raise Forbidden("this task is not yours")
            if d.state not in want:
                raise Conflict(f"the task is {d.state}")
            if action in ("accepted", "on_scene") and conn.execute(
                    select(alarms.c.state).where(alarms.c.id == d.alarm_id)).scalar() == "resolved":
                raise Conflict("the alarm is already resolved: nothing to do")
            conn.execute(update(dispatches).where(dispatches.c.id == dispatch_id).values(state=action, **values))
            add_audit(conn, username, f"dispatch.{action}", d.alarm_id, {"dispatch": dispatch_id, **detail})
            if alarm_stage:
                self._advance(conn, d.alarm_id, alarm_stage, username, **(alarm_values or {}))
        task = self.task(dispatch_id)
        self._after(d.alarm_id, [task])
        return task

    def accept(self, dispatch_id: str, username: str) -> dict[str, Any]:
        """Accepted: the alarm is dispatched (to this responder) and the pole says help is coming."""
        with self.engine.connect() as conn:
            name = conn.execute(select(responders.c.name).where(responders.c.username == username)).scalar()
        return self._step(dispatch_id, username, ("offered", "expired"), {"accepted_at": self.clock()}, "accepted",
                          {}, "dispatched", {"to": f"{name or username} ({username})"})

    def decline(self, dispatch_id: str, username: str, reason: str) -> dict[str, Any]:
        """Declined with a reason; the next nearest who has not been asked gets the task."""
        if not reason.strip():
            raise BadInput("say why you decline")
        task = self._step(dispatch_id, username, ("offered",), {"declined_at": self.clock(), "reason": reason},
                          "declined", {"reason": reason})
        self._reoffer(task["alarm_id"], "declined")
        return task

    def on_scene(self, dispatch_id: str, username: str, lat: float | None, lon: float | None) -> dict[str, Any]:
        """On scene: the position and its distance to the pole (a warning past ``on_scene_warn_m``)."""
        with self.engine.connect() as conn:
            d = conn.execute(select(dispatches.c.alarm_id).where(dispatches.c.id == dispatch_id)).first()
            pole = self._alarm_place(conn, d.alarm_id) if d else None
        dist = None
        if pole is not None and None not in (lat, lon, pole.lat, pole.lon):
            dist = round(distance_m(lat, lon, pole.lat, pole.lon))  # type: ignore[arg-type]
        warning = dist is not None and dist > self.warn_m
        task = self._step(dispatch_id, username, ("accepted",),
                          {"on_scene_at": self.clock(), "scene_lat": lat, "scene_lon": lon, "scene_distance_m": dist},
                          "on_scene", {"distance_m": dist, "warning": warning}, "on_scene")
        task["warning"] = (f"{dist} m from the pole (more than {self.warn_m:.0f} m) / 距报警柱 {dist} 米"
                           if warning else None)
        return task

    def resolve(self, dispatch_id: str, username: str, outcome: str, note: str | None) -> dict[str, Any]:
        if outcome not in OUTCOMES:
            raise BadInput(f"outcome must be one of {', '.join(OUTCOMES)}")
        task = self._step(dispatch_id, username, ("accepted", "on_scene"),
                          {"resolved_at": self.clock(), "outcome": outcome, "note": note}, "resolved",
                          {"outcome": outcome, "note": note}, "resolved", {"outcome": outcome, "note": note})
        self.on_alarm_resolved(task["alarm_id"], username)  # the others who were asked stop now
        return task

    def on_alarm_resolved(self, alarm_id: str, by: str) -> int:
        """The alarm is closed: withdraw every task on it still in play and tell each phone now."""
        with self._lock:
            with self.engine.begin() as conn:
                if conn.execute(select(alarms.c.state).where(alarms.c.id == alarm_id)).scalar() != "resolved":
                    return 0
                rows = conn.execute(select(dispatches.c.id, dispatches.c.responder, dispatches.c.state).where(
                    dispatches.c.alarm_id == alarm_id, dispatches.c.state.in_((*ACTIVE, "expired")))).all()
                for r in rows:
                    conn.execute(update(dispatches).where(dispatches.c.id == r.id, dispatches.c.state == r.state)
                                 .values(state="withdrawn"))
                    add_audit(conn, by, "dispatch.withdrawn", alarm_id,
                              {"dispatch": r.id, "responder": r.responder, "was": r.state, "why": "alarm_resolved"})
        if rows:
            self._after(alarm_id, [self.task(r.id) for r in rows], "withdrawn:alarm_resolved")
        return len(rows)

    def add_photo(self, dispatch_id: str, username: str, data: bytes) -> dict[str, Any]:
        """One resolution photo (JPEG, PNG or WebP, checked by decoding it), stored with the alarm."""
        if len(data) > self.photo_max_bytes:
            raise TooLarge(f"the photo is over {self.photo_max_bytes // (1024 * 1024)} MB")
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(io.BytesIO(data)) as img:
                fmt = img.format or ""
                img.verify()
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
            raise BadInput("not an image (send a JPEG, PNG or WebP photo)") from None
        if fmt not in PHOTO_TYPES:
            raise BadInput(f"{fmt} images are not taken: send a JPEG, PNG or WebP photo")
        with self.engine.begin() as conn:
            d = conn.execute(select(dispatches).where(dispatches.c.id == dispatch_id)).first()
            if d is None:
                raise NotFound(f"no task {dispatch_id}")
            if d.responder != username:
                raise Forbidden("this task is not yours")
            if d.state not in ("accepted", "on_scene", "resolved"):
                raise Conflict(f"the task is {d.state}")
            n = conn.execute(select(func.count()).select_from(dispatch_photos)
                             .where(dispatch_photos.c.dispatch_id == dispatch_id)).scalar() or 0
            if n >= MAX_PHOTOS:
                raise Conflict(f"at most {MAX_PHOTOS} photos per task")
            inserted = conn.execute(dispatch_photos.insert().values(
                dispatch_id=dispatch_id, alarm_id=d.alarm_id, at=self.clock(), content_type=PHOTO_TYPES[fmt],
                size=len(data), data=data)).inserted_primary_key
            pid = int(inserted[0]) if inserted else 0
            add_audit(conn, username, "dispatch.photo", d.alarm_id, {"dispatch": dispatch_id, "photo": pid,
                                                                      "size": len(data)})
        self._after(d.alarm_id, [])
        return {"id": pid, "alarm_id": d.alarm_id, "size": len(data), "content_type": PHOTO_TYPES[fmt]}

    def photos(self, alarm_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [jsonable(r) for r in conn.execute(
                select(dispatch_photos.c.id, dispatch_photos.c.dispatch_id, dispatch_photos.c.at,
                       dispatch_photos.c.content_type, dispatch_photos.c.size)
                .where(dispatch_photos.c.alarm_id == alarm_id).order_by(dispatch_photos.c.id))]

    def photo(self, alarm_id: str, photo_id: int) -> tuple[bytes, str]:
        with self.engine.connect() as conn:
            row = conn.execute(select(dispatch_photos.c.data, dispatch_photos.c.content_type).where(
                dispatch_photos.c.id == photo_id, dispatch_photos.c.alarm_id == alarm_id)).first()
        if row is None:
            raise NotFound(f"no photo {photo_id} of alarm {alarm_id}")
        return row.data, row.content_type

    def snapshot_for(self, dispatch_id: str, username: str) -> bytes:
        """The alarm's picture, for the responder it was offered to only."""
        task = self.task(dispatch_id, username)
        with self.engine.connect() as conn:
            jpeg = conn.execute(select(snapshots.c.jpeg).where(snapshots.c.event_id == task["alarm_id"])).scalar()
        if jpeg is None:
            raise NotFound("no snapshot stored")
        return bytes(jpeg)

    # --- timeouts, re-offers, auto-dispatch -------------------------------------------------------
    def _reoffer(self, alarm_id: str, why: str, extra: list[dict[str, Any]] | None = None) -> None:
        """Offer the alarm to the next nearest not yet asked, unless someone is still on it; flag the operator."""
        with self.engine.connect() as conn:
            state = conn.execute(select(alarms.c.state).where(alarms.c.id == alarm_id)).scalar()
            live = conn.execute(select(dispatches.c.id).where(dispatches.c.alarm_id == alarm_id,
                                                              dispatches.c.state.in_(ACTIVE))).first()
        if state in (None, "resolved") or live is not None:
            if extra:
                self._after(alarm_id, [], why, extra)
            return
        nxt = [p for p in self.candidates(alarm_id) if not p["asked"] and not p["busy"]][:1]
        if not nxt:
            with self.engine.begin() as conn:
                add_audit(conn, "system", "dispatch.nobody", alarm_id, {"why": why})
            self._after(alarm_id, [], f"nobody_left:{why}", extra)
            return
        self._offer(alarm_id, "auto", nxt, flag=f"reoffered:{why}", ops_extra=extra)

    def expire(self) -> int:
        """Offers not accepted within ``accept_within_s`` expire; each alarm goes to the next nearest (periodic)."""
        cutoff = self.clock() - self.accept_within
        with self._lock:
            with self.engine.begin() as conn:
                rows = conn.execute(select(dispatches.c.id, dispatches.c.alarm_id, dispatches.c.responder,
                                           alarms.c.state.label("alarm_state"))
                                    .join(alarms, alarms.c.id == dispatches.c.alarm_id, isouter=True).where(
                    dispatches.c.state == "offered", dispatches.c.offered_at < cutoff)).all()
                for r in rows:
                    # the alarm was closed meanwhile (by an operator): the offer is withdrawn, not "not accepted"
                    closed = r.alarm_state in (None, "resolved")
                    values = {"state": "withdrawn"} if closed else {"state": "expired", "expired_at": self.clock()}
                    conn.execute(update(dispatches).where(dispatches.c.id == r.id, dispatches.c.state == "offered")
                                 .values(**values))
                    add_audit(conn, "system", "dispatch.withdrawn" if closed else "dispatch.expired", r.alarm_id,
                              {"dispatch": r.id, "responder": r.responder})
            for r in rows:
                self.publish_task(r.responder, TaskMessage(task=self.task(r.id)).out())
            for alarm_id in dict.fromkeys(r.alarm_id for r in rows if r.alarm_state not in (None, "resolved")):
                self._reoffer(alarm_id, "expired")
        return len(rows)

    def on_new_alarms(self, items: list[dict[str, Any]]) -> None:
        """Ingest's commit hook: a new alarm of an auto-dispatch kind goes to the nearest on duty (off the
        ingest thread; nothing when ``auto_dispatch_kinds`` is empty, the default)."""
        if not self.auto_kinds:
            return
        for item in items:
            alarm = item.get("alarm") if item.get("type") == "event" else None
            if alarm and alarm.get("state") == "open" and alarm.get("kind") in self.auto_kinds \
                    and alarm.get("id") == (item.get("event") or {}).get("id"):
                self._auto.submit(self.auto_dispatch, alarm["id"])

    def auto_dispatch(self, alarm_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            if conn.execute(select(dispatches.c.id).where(dispatches.c.alarm_id == alarm_id)).first():
                return []
        try:
            return self.dispatch(alarm_id, "auto", nearest=1)
        except (Conflict, NotFound) as exc:
            with self.engine.begin() as conn:
                add_audit(conn, "system", "dispatch.auto_failed", alarm_id, {"detail": str(exc)})
            self._after(alarm_id, [], "nobody_left:auto")
            log.warning("auto-dispatch of %s: %s", alarm_id, exc)
            return []

    def close(self) -> None:
        self._auto.shutdown(wait=False, cancel_futures=True)

    # --- reports --------------------------------------------------------------------------------
    def report(self, since: datetime, until: datetime) -> dict[str, Any]:
        """Per team and per responder: time to accept, on scene, resolve (p50/p90, seconds from the offer),
        declines, offers that expired, and per team the alarms nobody accepted."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(dispatches, responders.c.name)
                                .join(responders, responders.c.username == dispatches.c.responder, isouter=True)
                                .where(dispatches.c.offered_at >= since, dispatches.c.offered_at < until)).all()

        def block(group: list[Any]) -> dict[str, Any]:
            def secs(col: str) -> list[float]:
                return [(getattr(r, col) - r.offered_at).total_seconds() for r in group if getattr(r, col)]

            out: dict[str, Any] = {"offers": len(group),
                                   "accepted": sum(1 for r in group if r.accepted_at),
                                   "declines": sum(1 for r in group if r.state == "declined"),
                                   "expired": sum(1 for r in group if r.expired_at and not r.accepted_at)}
            for label, col in (("accept", "accepted_at"), ("on_scene", "on_scene_at"), ("resolve", "resolved_at")):
                v = secs(col)
                out[f"{label}_p50_s"] = percentile(v, 0.5)
                out[f"{label}_p90_s"] = percentile(v, 0.9)
            by_alarm: dict[str, bool] = {}
            for r in group:
                by_alarm[r.alarm_id] = by_alarm.get(r.alarm_id, False) or r.accepted_at is not None
            out["alarms"] = len(by_alarm)
            out["nobody_accepted"] = sum(1 for ok in by_alarm.values() if not ok)
            return out

        teams_out: dict[str, list[Any]] = {}
        people: dict[str, list[Any]] = {}
        for r in rows:
            teams_out.setdefault(r.team, []).append(r)
            people.setdefault(r.responder, []).append(r)
        return {"since": since.isoformat(), "until": until.isoformat(), "all": block(list(rows)),
                "teams": [{"team": t, **block(g)} for t, g in sorted(teams_out.items())],
                "responders": [{"responder": u, "name": g[0].name or u, "team": g[-1].team, **block(g)}
                               for u, g in sorted(people.items())]}
