"""Sensitive periods: creating one (with every check a bad window fails), listing, cancelling, and which are
in force for a grid at a given time.

Why "in force" is read from the clock and not from the ``state`` column: the escalator asks every second,
and a period must raise the level at its start even if the scheduler job has not run yet (or the hub just
restarted); ``state`` records what the scheduler has *done* (pushes, banner) so it is done once.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Engine

from hub.errors import HubError, NotFound
from hub.sensitive.profile import DetectionProfile
from hub.store.engine import add_audit, jsonable, now_utc
from hub.store.schema import grids as grids_table
from hub.store.schema import sensitive_periods

STATES = ("scheduled", "active", "ended", "cancelled")
LIVE_STATES = ("scheduled", "active")  # may still be (or become) in force
MAX_DAYS = 31  # a longer "sensitive period" is the normal level: raise the defaults instead
PAST_GRACE = timedelta(minutes=5)  # "from now" typed a minute ago is not in the past


class PeriodInvalid(HubError, ValueError):
    """A period that cannot be stored: the sentence (English / 中文) says what to change."""


def parse_time(value: str, tz: ZoneInfo, what: str) -> datetime:
    """ISO 8601 text; without an offset it is the district's local time (as staff type it)."""
    try:
        at = datetime.fromisoformat(value.strip())
        at = at.replace(tzinfo=tz) if at.tzinfo is None else at
        at.astimezone(UTC), at.astimezone(tz)  # both must exist: year 1 or 9999 near a zone's edge do not
    except (ValueError, OverflowError):
        zh = "开始" if what == "start" else "结束"
        raise PeriodInvalid(f"{what} {value!r} is not a date and time like 2026-12-24T18:00 (or is out of range) / "
                            f"{zh}时间 {value!r} 格式不对或超出范围，应如 2026-12-24T18:00") from None
    return at


class Periods:
    def __init__(self, engine: Engine, tz: str = "Asia/Shanghai", default_escalate_s: float = 60) -> None:
        self.engine = engine
        self.tz = ZoneInfo(tz)
        self.default_escalate_s = default_escalate_s

    # --- creating -----------------------------------------------------------------------------------------
    def create(self, *, start: str | None, end: str, grids: list[str] | None, reason: str, actor: str,
               escalate_after_s: float = 30, profile: DetectionProfile | None = None,
               now: datetime | None = None) -> dict[str, Any]:
        """Check the window and scope, store the period (scheduled) and audit it; PeriodInvalid otherwise."""
        now = now or now_utc()
        starts = parse_time(start, self.tz, "start") if start else now
        ends = parse_time(end, self.tz, "end")
        if ends <= starts:
            raise PeriodInvalid(f"the end ({self._local(ends)}) must be after the start ({self._local(starts)}) / "
                                f"结束时间（{self._local(ends)}）必须晚于开始时间（{self._local(starts)}）")
        if starts < now - PAST_GRACE:
            raise PeriodInvalid(f"the start ({self._local(starts)}) is in the past: start now (leave it empty) or "
                                f"later / 开始时间（{self._local(starts)}）已过去：留空表示立即开始，或选以后的时间")
        if ends - starts > timedelta(days=MAX_DAYS):
            days = (ends - starts).days
            raise PeriodInvalid(f"a sensitive period lasts at most {MAX_DAYS} days; this one lasts {days} / "
                                f"敏感时期最长 {MAX_DAYS} 天，此时段为 {days} 天")
        if not reason.strip():
            raise PeriodInvalid("say why (the reason is shown on the banner and in the audit log) / 请填写原因")
        if not 5 <= escalate_after_s <= self.default_escalate_s:
            raise PeriodInvalid(f"escalation after {escalate_after_s:g} s: a sensitive period escalates between 5 s "
                                f"and the usual {self.default_escalate_s:g} s / 升级时间须在 5 秒到平时的 "
                                f"{self.default_escalate_s:g} 秒之间")
        scope_grids = sorted(set(g.strip() for g in grids or [] if g.strip()))
        profile = profile or DetectionProfile()
        with self.engine.begin() as conn:
            if grids is not None:
                if not scope_grids:
                    raise PeriodInvalid("name at least one grid, or leave the grids out for the whole district / "
                                        "请至少选择一个网格，或不选表示全辖区")
                known = set(conn.execute(select(grids_table.c.name)
                                         .where(grids_table.c.name.in_(scope_grids))).scalars())
                unknown = [g for g in scope_grids if g not in known]
                if unknown:
                    raise PeriodInvalid(f"no grid {', '.join(unknown)} (import the district's grids with pingan-hub "
                                        f"grids import) / 没有网格 {'、'.join(unknown)}")
            clash = self._overlapping(conn, starts, ends, scope_grids if grids is not None else None)
            if clash is not None:
                raise PeriodInvalid(
                    f"it overlaps period {clash['id']} ({self._local(clash['starts_at'])} – "
                    f"{self._local(clash['ends_at'])}, {self._scope_text(clash)}): cancel that one or choose "
                    f"another window / 与敏感时期 {clash['id']}（{self._local(clash['starts_at'])} 至 "
                    f"{self._local(clash['ends_at'])}）重叠：请先取消它或换一个时段")
            period_id = uuid.uuid4().hex[:12]
            row: dict[str, Any] = {"id": period_id, "scope": "grids" if grids is not None else "district",
                   "grids": scope_grids if grids is not None else [], "starts_at": starts, "ends_at": ends,
                   "reason": reason.strip()[:500], "created_by": actor, "created_at": now,
                   "escalate_after_s": float(escalate_after_s), "profile": profile.model_dump(exclude_none=True),
                   "state": "scheduled"}
            conn.execute(sensitive_periods.insert().values(**row))
            add_audit(conn, actor, "sensitive.create", period_id,
                      {"scope": row["scope"], "grids": row["grids"], "starts_at": starts.isoformat(),
                       "ends_at": ends.isoformat(), "escalate_after_s": row["escalate_after_s"],
                       "profile": row["profile"], "reason": row["reason"]})
        return self.get(period_id)

    def _overlapping(self, conn: Connection, starts: datetime, ends: datetime,
                     scope: list[str] | None) -> dict[str, Any] | None:
        rows = conn.execute(select(sensitive_periods).where(
            sensitive_periods.c.state.in_(LIVE_STATES), sensitive_periods.c.starts_at < ends,
            sensitive_periods.c.ends_at > starts)).all()
        for r in rows:  # the district overlaps every grid; two grid periods overlap when they share a grid
            if scope is None or r.scope == "district" or set(scope) & set(r.grids or []):
                return dict(r._mapping)
        return None

    # --- reading ------------------------------------------------------------------------------------------
    def get(self, period_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(sensitive_periods).where(sensitive_periods.c.id == period_id)).first()
        if row is None:
            raise NotFound(f"no sensitive period {period_id} / 没有敏感时期 {period_id}")
        return jsonable(row)

    def listed(self, limit: int = 100) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(sensitive_periods).order_by(sensitive_periods.c.starts_at.desc())
                                .limit(limit)).all()
        return [jsonable(r) for r in rows]

    def in_force(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """Periods whose window holds ``now`` and that nobody cancelled (the clock decides, see the module doc)."""
        now = now or now_utc()
        with self.engine.connect() as conn:
            rows = conn.execute(select(sensitive_periods).where(
                sensitive_periods.c.state.in_(LIVE_STATES), sensitive_periods.c.starts_at <= now,
                sensitive_periods.c.ends_at > now)).all()
        return [dict(r._mapping) for r in rows]

    def escalation_overrides(self, now: datetime) -> dict[str | None, float]:
        """For the escalator: the shortest escalation in force per grid; key None is the whole district."""
        out: dict[str | None, float] = {}
        for p in self.in_force(now):
            for key in ([None] if p["scope"] == "district" else p["grids"]):
                out[key] = min(out.get(key, p["escalate_after_s"]), p["escalate_after_s"])
        return out

    # --- cancelling ---------------------------------------------------------------------------------------
    def cancel(self, period_id: str, actor: str) -> dict[str, Any]:
        """A scheduled or active period stops now; the scheduler reverts what it pushed on its next round."""
        period = self.get(period_id)
        if period["state"] not in LIVE_STATES:
            raise PeriodInvalid(f"period {period_id} is already {period['state']} / 敏感时期 {period_id} 已"
                                f"{'结束' if period['state'] == 'ended' else '取消'}")
        with self.engine.begin() as conn:
            done = conn.execute(update(sensitive_periods).where(
                sensitive_periods.c.id == period_id, sensitive_periods.c.state.in_(LIVE_STATES)).values(
                state="cancelled", cancelled_by=actor, ended_at=now_utc())).rowcount
            if done:
                add_audit(conn, actor, "sensitive.cancel", period_id, {"was": period["state"]})
        return self.get(period_id)

    # --- words ----------------------------------------------------------------------------------------------
    def _local(self, at: datetime) -> str:
        return at.astimezone(self.tz).strftime("%Y-%m-%d %H:%M")

    @staticmethod
    def _scope_text(p: dict[str, Any]) -> str:
        return "the district" if p["scope"] == "district" else "grids " + ", ".join(p["grids"] or [])
