"""Response model of hub/api/reports.py's summary (hub/reports/service.py ``Reports.summary``).

The door kinds counted are ``hub.reports.service.DOOR_KINDS`` without their ``door.`` prefix; the
response stages are ``STAGE_COLUMNS``' keys (both checked against these models by the tests).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hub.api.models import ApiModel


class Stats(ApiModel):
    """Seconds from the hub receiving an alarm to a stage (median, p90 by nearest rank); None when n is 0."""

    n: int
    median_s: float | None
    p90_s: float | None


class StageStats(Stats):
    skipped: int = Field(description="Alarms staff took past this stage without doing it (not timed)")


class ResponseTimes(ApiModel):
    acknowledge: StageStats
    dispatch: StageStats
    arrive: StageStats
    resolve: StageStats


class DoorCounts(ApiModel):
    granted: int
    denied: int
    forced: int
    held_open: int
    lockout: int


class Totals(ApiModel):
    alarms: int = Field(description="Every alarm kind except alarm.test; an outage counts once")
    tests: int
    by_kind: dict[str, int]
    by_outcome: dict[str, int]
    escalated: int
    open: int


class NodeAlarms(ApiModel):
    node: str
    place: str
    grid: str
    alarms: int
    by_kind: dict[str, int]


class GridAlarms(ApiModel):
    grid: str
    alarms: int


class Uptime(ApiModel):
    node: str
    grid: str
    place: str
    observed_s: float = Field(description="The part of the range the node was registered")
    downtime_s: float
    uptime_pct: float


class GridScore(ApiModel):
    grid: str
    nodes: int
    alarms: int
    false_alarms: int
    escalated: int
    ack: Stats
    resolve: Stats
    uptime_pct: float | None = Field(description="The mean of its nodes'; None when it has none")
    doors: DoorCounts


class SelftestSummary(ApiModel):
    not_tested: list[str] = Field(description="Poles and doors without a self-test result in the last not_tested_days")
    not_tested_days: int


class ReportSummary(ApiModel):
    period: Literal["today", "yesterday", "week", "range"]
    from_: str = Field(alias="from", description="The range's start in the centre's zone (ISO 8601)")
    to: str = Field(description="Its end, exclusive")
    timezone: str
    totals: Totals
    per_node: list[NodeAlarms]
    per_grid: list[GridAlarms]
    per_hour: list[int] = Field(min_length=24, max_length=24, description="Alarms per hour of the day (0-23)")
    per_day: dict[str, int] = Field(description="Alarms per day (YYYY-MM-DD in the centre's zone)")
    response: ResponseTimes
    uptime: list[Uptime]
    doors: DoorCounts
    doors_by_node: dict[str, dict[str, int]] = Field(description="Per node, the door kinds it counted")
    scorecard: list[GridScore]
    selftest: SelftestSummary
