"""Response models of hub/api/responders.py: teams and shifts, responders, dispatches, the responder's task
and the dispatch report. Rows are the store's (hub/store/schema.py) as ``jsonable`` writes them: times as
ISO text, ``None`` for an empty column."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hub.api.models import ApiModel
from hub.api.models.routes import AlarmState, Outcome

TeamKind = Literal["grid_staff", "volunteer", "patrol", "police_room"]  # hub.responders.service.KINDS
DispatchState = Literal["offered", "accepted", "declined", "expired", "withdrawn", "on_scene", "resolved"]


class Shift(ApiModel):
    weekday: int = Field(ge=0, le=6, description="0 = Monday, in the district's time zone")
    start: str = Field(examples=["08:00"])
    end: str = Field(examples=["20:00"], description="Before start: the shift runs past midnight")


class Team(ApiModel):
    id: str
    name: str
    kind: TeamKind
    grids: list[str]
    shifts: list[Shift] = Field(default_factory=list, description="Absent when a change did not touch them")


class ResponderRow(ApiModel):
    """A responder's row: team, phone, duty and last fix (kept only while on duty and with consent)."""

    username: str
    name: str
    team: str
    kind: TeamKind
    phone: str
    consent: bool
    checked_in: str | None = Field(description="When they checked in from the phone; None: off duty")
    last_lat: float | None
    last_lon: float | None
    last_accuracy: float | None
    last_fix_at: str | None


class Responder(ResponderRow):
    team_name: str
    grids: list[str]
    in_shift: bool
    on_duty: bool = Field(description="In a shift of the team and checked in")
    shifts: list[Shift]


class ResponderMe(Responder):
    accept_within_s: float = Field(description="An offer not accepted within this goes to the next nearest")


class Candidate(ResponderRow):
    """An on-duty responder of the alarm's grid, nearest first."""

    distance_m: int | None = Field(description="From the last fix to the pole; None without either")
    fix_age_s: int | None
    busy: bool = Field(description="Has an accepted task in play")
    asked: DispatchState | None = Field(description="Their dispatch's state for this alarm, if asked already")


class Dispatch(ApiModel):
    """One offer of an alarm to one responder, timed at each step."""

    id: str
    alarm_id: str
    responder: str
    team: str
    by: str = Field(description="The operator, or 'auto'")
    state: DispatchState
    offered_at: str
    distance_m: float | None
    accepted_at: str | None
    declined_at: str | None
    reason: str | None
    expired_at: str | None
    on_scene_at: str | None
    scene_lat: float | None
    scene_lon: float | None
    scene_distance_m: float | None
    resolved_at: str | None
    outcome: Outcome | None
    note: str | None


class DispatchListed(Dispatch):
    name: str | None = Field(description="The responder's name")


class Task(Dispatch):
    """A dispatch as the responder's phone shows it: the alarm, the place and how to get there."""

    kind: str
    node: str
    grid: str
    place: str
    lat: float | None
    lon: float | None
    alarm_state: AlarmState
    raised_at: str
    presses: int
    has_snapshot: bool
    photos: int
    geo: str | None = Field(description="A geo: URI for the phone's map app")
    accept_by: str
    warning: str | None = Field(default=None, description="Only on scene: far from the pole")


class PositionStored(ApiModel):
    recorded: bool
    at: str


class PhotoOut(ApiModel):
    id: int
    alarm_id: str
    size: int
    content_type: str


class PhotoListed(ApiModel):
    id: int
    dispatch_id: str
    at: str
    content_type: str
    size: int


class DispatchFigures(ApiModel):
    offers: int
    accepted: int
    declines: int
    expired: int
    accept_p50_s: float | None
    accept_p90_s: float | None
    on_scene_p50_s: float | None
    on_scene_p90_s: float | None
    resolve_p50_s: float | None
    resolve_p90_s: float | None
    alarms: int
    nobody_accepted: int


class TeamFigures(DispatchFigures):
    team: str


class ResponderFigures(DispatchFigures):
    responder: str
    name: str
    team: str


class DispatchReport(ApiModel):
    since: str
    until: str
    all: DispatchFigures
    teams: list[TeamFigures]
    responders: list[ResponderFigures]
