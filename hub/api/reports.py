"""The reports' HTTP routes: the summary and the alarms CSV."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from hub.api.deps import ReportsDep
from hub.api.models import Refused
from hub.api.models.reports import ReportSummary
from hub.reports.service import parse_range

# --- routes ------------------------------------------------------------------------------------------
router = APIRouter(tags=["reports"])
FromQ = Annotated[str | None, Query(alias="from", description="YYYY-MM-DD (centre's zone) or ISO time")]
ToQ = Annotated[str | None, Query(alias="to", description="YYYY-MM-DD, inclusive, or ISO time (exclusive)")]
PeriodQ = Annotated[str | None, Query(pattern="^(today|yesterday|week)$")]
BAD_RANGE: dict[int | str, dict[str, Any]] = {422: {"model": Refused, "description": "A bad date or range"}}


@router.get("/api/reports/summary", response_model=ReportSummary, responses=BAD_RANGE)
def report_summary(reports: ReportsDep, start: FromQ = None, end: ToQ = None, period: PeriodQ = None) -> dict[str, Any]:
    """Alarms per node/grid/hour, response times (median, p90), uptime, door figures, per-grid scorecard."""
    s, e, label = parse_range(str(reports.tz.key), start, end, period)
    return {"period": label, **reports.summary(s, e)}


@router.get("/api/reports/alarms.csv", response_class=Response,
            responses={200: {"content": {"text/csv": {}}}, **BAD_RANGE})
def report_alarms_csv(reports: ReportsDep, start: FromQ = None, end: ToQ = None, period: PeriodQ = None) -> Response:
    s, e, label = parse_range(str(reports.tz.key), start, end, period)
    name = f"pingan-alarms-{s.date().isoformat()}-{(e - timedelta(seconds=1)).date().isoformat()}.csv"
    return Response("\ufeff" + reports.alarms_csv(s, e), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
