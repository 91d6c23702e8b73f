"""Response models of hub/api/patrols.py (the rule: hub/api/models/__init__.py)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from hub.api.models import ApiModel


class CheckInOut(ApiModel):
    node: str
    place: str
    grid: str
    at: datetime
    distance_m: float | None = Field(description="From the pole's stored position, when both are known")
    far: bool = Field(description="More than 200 m from the pole: a photographed sticker, or a poor fix")


class CheckIn(ApiModel):
    seq: int
    node: str
    username: str
    at: datetime
    lat: float | None
    lon: float | None
    accuracy_m: float | None
    distance_m: float | None
    token_key: str = Field(description="Which sticker key signed the scanned code (rotation: nodes qr-key)")
    token_issued: datetime = Field(description="When the scanned sticker was printed")


class Coverage(ApiModel):
    day: str
    grid: str
    poles: int
    visited: int
    coverage: float
    checkins: int


class NightGap(ApiModel):
    node: str
    place: str
    grid: str
    longest_gap_min: float
    night: str = Field(description="The date the night began (centre's zone)")
    gap_from: datetime
    gap_to: datetime
    checkins_that_night: int


class PatrolReport(ApiModel):
    period: str
    coverage: list[Coverage]
    night_gaps: list[NightGap]
