"""``/api/sensitive-periods``: raise the alert level for the district or some grids for a time window (issue 20).

Staff read (the console's banner loads the periods in force from here); admins create and cancel. A bad
window or scope is a 422 whose ``detail`` is one sentence in English and Chinese, and nothing is stored."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from hub.api.deps import PeriodsDep, SensitiveDep, UserDep
from hub.api.models import Refused
from hub.api.models.sensitive import SensitiveDetail, SensitivePeriod
from hub.auth.policy import requires
from hub.sensitive.periods import PeriodInvalid
from hub.sensitive.profile import DetectionProfile

router = APIRouter(prefix="/api/sensitive-periods", tags=["sensitive"])
REFUSED: dict[int | str, dict[str, Any]] = {422: {"model": Refused, "description": "A bad window or scope"}}


class PeriodCreate(BaseModel):
    start: str | None = Field(default=None, max_length=40, description=(
        "ISO date and time; without an offset it is the district's local time; empty = now"))
    end: str = Field(max_length=40, description="ISO date and time the period ends (district time without offset)")
    grids: list[str] | None = Field(default=None, max_length=500,
                                    description="Grid codes in scope; absent = the whole district")
    reason: str = Field(max_length=500, description="Why (shown on the banner, kept in the audit log)")
    escalate_after_s: float = Field(default=30, description="Escalation after this many seconds (default 30)")
    profile: DetectionProfile = Field(default_factory=DetectionProfile,
                                      description="The detection profile pushed to the poles in scope")


def _refused(exc: PeriodInvalid) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=422)


@router.get("", response_model=list[SensitivePeriod], response_model_exclude_unset=True)
def list_periods(periods: PeriodsDep, limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[dict[str, Any]]:
    """Every period, latest start first."""
    return periods.listed(limit)


@router.get("/active", response_model=list[SensitivePeriod], response_model_exclude_unset=True)
def active_periods(periods: PeriodsDep) -> list[dict[str, Any]]:
    """The periods in force now (the console's banner)."""
    from hub.sensitive.scheduler import jsonable_period

    return [jsonable_period(p) for p in periods.in_force()]


@router.get("/{period_id}", response_model=SensitiveDetail, response_model_exclude_unset=True)
def period_detail(period_id: str, periods: PeriodsDep, sensitive: SensitiveDep) -> dict[str, Any]:
    """One period with each pole's profile push and revert, and each daily report's deliveries."""
    return {**periods.get(period_id), "pushes": sensitive.pushes(period_id),
            "reports": sensitive.reports.listed(period_id)}


@router.post("", status_code=201, response_model=SensitivePeriod, responses=REFUSED,
             response_model_exclude_unset=True)
@requires("admin")
def create_period(body: PeriodCreate, user: UserDep, periods: PeriodsDep, sensitive: SensitiveDep) -> Any:
    """Store a period (scheduled); it starts, pushes and reverts by itself (hub/sensitive/scheduler.py)."""
    try:
        made = periods.create(start=body.start, end=body.end, grids=body.grids, reason=body.reason,
                              actor=user.username, escalate_after_s=body.escalate_after_s, profile=body.profile)
    except PeriodInvalid as exc:
        return _refused(exc)
    return made


@router.post("/{period_id}/cancel", response_model=SensitivePeriod, responses=REFUSED,
             response_model_exclude_unset=True)
@requires("admin")
def cancel_period(period_id: str, user: UserDep, periods: PeriodsDep) -> Any:
    """End a scheduled or active period now; what it pushed is pushed back on the job's next round."""
    try:
        return periods.cancel(period_id, user.username)
    except PeriodInvalid as exc:
        return _refused(exc)
