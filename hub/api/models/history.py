"""Response models of hub/api/history.py: pages of closed alarms and of past events.

Each row says how many pictures are stored for it, so the console asks only for those that are there."""

from __future__ import annotations

from pydantic import Field

from hub.api.models import ApiModel
from hub.api.models.routes import AlarmOut, EventCore


class Pictured(ApiModel):
    snapshots: int = Field(description="Snapshots stored for it (0 or 1)")
    clip_frames: int = Field(description="Frames of its pre-press burst stored")


class ClosedAlarm(AlarmOut, Pictured):
    """A resolved alarm with its node's place and grid."""

    place: str | None
    grid: str | None


class PastEvent(EventCore, Pictured):
    grid: str | None
    place: str | None


class ClosedAlarmPage(ApiModel):
    total: int = Field(description="Rows matching the filters, for the pager")
    items: list[ClosedAlarm]


class PastEventPage(ApiModel):
    total: int = Field(description="Rows matching the filters, for the pager")
    items: list[PastEvent]
