"""Patrols' HTTP routes: a check-in from a scanned sticker, the check-ins, coverage and night-gap reports."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from hub.api.deps import PatrolsDep, UserDep
from hub.api.models import Refused
from hub.api.models.patrols import CheckIn, CheckInOut, PatrolReport
from hub.api.reports import FromQ, PeriodQ, ToQ
from hub.auth.policy import client_ip, requires
from hub.auth.service import ALL_STAFF, ROLES
from hub.patrols.service import may_patrol, to_csv
from hub.patrols.tokens import TokenRefused
from hub.reports.service import parse_range

router = APIRouter(tags=["patrols"])
REFUSED: dict[int | str, dict[str, Any]] = {422: {"model": Refused, "description": "A bad position, date or range"}}
CSV: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {}}}, **REFUSED}
# the route admits every logged-in role (the responders' too, once it exists); may_patrol() decides
CHECKIN_ROLES = tuple(r for r in (*ROLES, "responder") if r in ALL_STAFF)


class CheckInBody(BaseModel):
    token: str = Field(min_length=1, max_length=200, description="What the pole's sticker carries")
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000)


@router.post("/api/patrols/checkins", status_code=201, response_model=CheckInOut, responses=REFUSED)
@requires(*CHECKIN_ROLES)
def check_in(body: CheckInBody, request: Request, user: UserDep, p: PatrolsDep) -> CheckInOut:
    """Record a patrol check-in at the pole whose sticker was scanned (who, when, the phone's position).

    A forged, foreign or stale sticker: 403, nothing recorded, an audit row (``patrol.refused``)."""
    if not may_patrol(user):
        raise HTTPException(403, f"role {user.role} may not record patrols / 此角色不能巡逻签到")
    if (body.lat is None) != (body.lon is None):
        raise HTTPException(422, "give both lat and lon, or neither / 经纬度需同时提供")
    try:
        out = p.check_in(user, body.token, lat=body.lat, lon=body.lon, accuracy_m=body.accuracy_m,
                                        ip=client_ip(dict(request.scope)))
    except TokenRefused as exc:
        raise HTTPException(403, {"reason": exc.reason, "message": str(exc)}) from None
    return CheckInOut(**out)


@router.get("/api/patrols/checkins", response_model=list[CheckIn], responses=REFUSED)
@requires("operator", "admin")
def list_checkins(p: PatrolsDep, start: FromQ = None, end: ToQ = None, period: PeriodQ = None,
                  node: Annotated[str | None, Query(max_length=64)] = None) -> list[dict[str, Any]]:
    s, e, _ = parse_range(str(p.tz.key), start, end, period)
    return p.checkins(s, e, node)


@router.get("/api/patrols/report", response_model=PatrolReport, responses=REFUSED)
@requires("operator", "admin")
def patrol_report(p: PatrolsDep, start: FromQ = None, end: ToQ = None, period: PeriodQ = None) -> dict[str, Any]:
    """Coverage per grid per day, and per pole the longest gap between check-ins inside a night."""
    s, e, label = parse_range(str(p.tz.key), start, end, period)
    return {"period": label, "coverage": p.coverage(s, e), "night_gaps": p.night_gaps(s, e)}


COVERAGE_COLUMNS = [("day", "日期 Day"), ("grid", "网格 Grid"), ("poles", "立杆数 Poles"),
                    ("visited", "已巡 Visited"), ("coverage", "覆盖率 Coverage"), ("checkins", "签到次数 Check-ins")]
GAP_COLUMNS = [("node", "设备 Pole"), ("place", "位置 Place"), ("grid", "网格 Grid"),
               ("longest_gap_min", "最长间隔(分钟) Longest gap (min)"), ("night", "夜间 Night"),
               ("gap_from", "自 From"), ("gap_to", "至 To"), ("checkins_that_night", "当夜签到 Check-ins that night")]


def _csv(body: str, name: str, s: datetime, e: datetime) -> Response:
    fname = f"pingan-{name}-{s.date().isoformat()}-{(e - timedelta(seconds=1)).date().isoformat()}.csv"
    return Response("\ufeff" + body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{fname}"'})


@router.get("/api/patrols/coverage.csv", response_class=Response, responses=CSV)
@requires("operator", "admin")
def coverage_csv(p: PatrolsDep, start: FromQ = None, end: ToQ = None, period: PeriodQ = None) -> Response:
    s, e, _ = parse_range(str(p.tz.key), start, end, period)
    return _csv(to_csv(p.coverage(s, e), COVERAGE_COLUMNS), "patrol-coverage", s, e)


@router.get("/api/patrols/night_gaps.csv", response_class=Response, responses=CSV)
@requires("operator", "admin")
def night_gaps_csv(p: PatrolsDep, start: FromQ = None, end: ToQ = None, period: PeriodQ = None) -> Response:
    s, e, _ = parse_range(str(p.tz.key), start, end, period)
    return _csv(to_csv(p.night_gaps(s, e), GAP_COLUMNS), "patrol-night-gaps", s, e)
