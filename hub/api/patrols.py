"""Patrols' HTTP routes: a check-in from a scanned sticker, the check-ins, coverage and night-gap reports."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from hub.api.auth import current_user
from hub.api.reports import FromQ, PeriodQ, ToQ
from hub.auth.policy import client_ip, requires
from hub.auth.service import ALL_STAFF, ROLES
from hub.patrols.service import Patrols, may_patrol, to_csv
from hub.patrols.tokens import PatrolKeys, TokenRefused
from hub.reports.service import parse_range

router = APIRouter(tags=["patrols"])
# the route admits every logged-in role (the responders' too, once it exists); may_patrol() decides
CHECKIN_ROLES = tuple(r for r in (*ROLES, "responder") if r in ALL_STAFF)


def patrols(request: Request) -> Patrols:
    s = request.app.state.hub.settings
    return Patrols(request.app.state.hub.engine, PatrolKeys(s.data_dir), s.timezone,
                   max_age_days=s.patrol_token_max_age_days, night=s.patrol_night)


class CheckInBody(BaseModel):
    token: str = Field(min_length=1, max_length=200, description="What the pole's sticker carries")
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000)


class CheckInOut(BaseModel):
    node: str
    place: str
    grid: str
    at: datetime
    distance_m: float | None = Field(description="From the pole's stored position, when both are known")
    far: bool = Field(description="More than 200 m from the pole: a photographed sticker, or a poor fix")


class CheckIn(BaseModel):
    node: str
    username: str
    at: datetime
    lat: float | None
    lon: float | None
    accuracy_m: float | None
    distance_m: float | None


class Coverage(BaseModel):
    day: str
    grid: str
    poles: int
    visited: int
    coverage: float
    checkins: int


class NightGap(BaseModel):
    node: str
    place: str
    grid: str
    longest_gap_min: float
    night: str = Field(description="The date the night began (centre's zone)")
    gap_from: datetime
    gap_to: datetime
    checkins_that_night: int


class PatrolReport(BaseModel):
    period: str
    coverage: list[Coverage]
    night_gaps: list[NightGap]


@router.post("/api/patrols/checkins", status_code=201, response_model=CheckInOut)
@requires(*CHECKIN_ROLES)
def check_in(body: CheckInBody, request: Request) -> CheckInOut:
    """Record a patrol check-in at the pole whose sticker was scanned (who, when, the phone's position).

    A forged, foreign or stale sticker: 403, nothing recorded, an audit row (``patrol.refused``)."""
    user = current_user(request)
    if not may_patrol(user):
        raise HTTPException(403, f"role {user.role} may not record patrols / 此角色不能巡逻签到")
    if (body.lat is None) != (body.lon is None):
        raise HTTPException(422, "give both lat and lon, or neither / 经纬度需同时提供")
    try:
        out = patrols(request).check_in(user, body.token, lat=body.lat, lon=body.lon, accuracy_m=body.accuracy_m,
                                        ip=client_ip(dict(request.scope)))
    except TokenRefused as exc:
        raise HTTPException(403, {"reason": exc.reason, "message": str(exc)}) from None
    return CheckInOut(**out)


@router.get("/api/patrols/checkins", response_model=list[CheckIn])
@requires("operator", "admin")
def list_checkins(request: Request, start: FromQ = None, end: ToQ = None, period: PeriodQ = None,
                  node: Annotated[str | None, Query(max_length=64)] = None) -> list[dict[str, Any]]:
    p = patrols(request)
    s, e, _ = parse_range(str(p.tz.key), start, end, period)
    return p.checkins(s, e, node)


@router.get("/api/patrols/report", response_model=PatrolReport)
@requires("operator", "admin")
def patrol_report(request: Request, start: FromQ = None, end: ToQ = None, period: PeriodQ = None) -> dict[str, Any]:
    """Coverage per grid per day, and per pole the longest gap between check-ins inside a night."""
    p = patrols(request)
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


@router.get("/api/patrols/coverage.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
@requires("operator", "admin")
def coverage_csv(request: Request, start: FromQ = None, end: ToQ = None, period: PeriodQ = None) -> Response:
    p = patrols(request)
    s, e, _ = parse_range(str(p.tz.key), start, end, period)
    return _csv(to_csv(p.coverage(s, e), COVERAGE_COLUMNS), "patrol-coverage", s, e)


@router.get("/api/patrols/night_gaps.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
@requires("operator", "admin")
def night_gaps_csv(request: Request, start: FromQ = None, end: ToQ = None, period: PeriodQ = None) -> Response:
    p = patrols(request)
    s, e, _ = parse_range(str(p.tz.key), start, end, period)
    return _csv(to_csv(p.night_gaps(s, e), GAP_COLUMNS), "patrol-night-gaps", s, e)
