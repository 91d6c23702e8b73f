"""Response models of hub/api/history.py: pages of closed alarms and of past events.

Each row says how many pictures are stored for it, so the console asks only for those that are there."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from hub.api.models import ApiModel
from hub.api.models.routes import AlarmOut


class Pictured(ApiModel):
    snapshots: int = Field(description="Snapshots stored for it (0 or 1)")
    clip_frames: int = Field(description="Frames of its pre-press burst stored")


class ClosedAlarm(AlarmOut, Pictured):
    """A resolved alarm with its node's place and grid."""

    place: str | None
    grid: str | None


class PastEvent(Pictured):
    id: str
    node: str
    kind: str
    ts: str = Field(description="The node's clock")
    received_at: str = Field(description="The hub's clock")
    data: dict[str, Any] = Field(description="The kind's body: its model is edge/protocol.py EVENT_DATA[kind]")
    grid: str | None
    place: str | None


class ClosedAlarmPage(ApiModel):
    total: int = Field(description="Rows matching the filters, for the pager")
    items: list[ClosedAlarm]


class PastEventPage(ApiModel):
    total: int = Field(description="Rows matching the filters, for the pager")
    items: list[PastEvent]
