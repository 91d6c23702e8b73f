"""Response models of hub/api/fleet.py (adding a node answers its bundle, a tar.gz, not JSON)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hub.api.models import ApiModel


class NodeRemoved(ApiModel):
    node: str
    state: Literal["removed"]
    note: str = Field(description="What the installer still has to do (reload the broker)")


class NodeHealthHour(ApiModel):
    """One hour of a node's heartbeats, rolled up as they were stored (hub/nodes/health.py)."""

    node: str
    hour: str = Field(description="The hour's start, UTC")
    heartbeats: int = Field(description="Heartbeats stored in the hour (360 for a node sending every 10 s)")
    outbox_max: int = Field(description="The deepest its outbox was: events waiting for the hub's receipt")
    restarted: bool = Field(description=(
        "The node's agent started inside this hour (its uptime began after the hour did): a reboot, a crash "
        "restarted by systemd, or an update"))
    cpu_temp_max: float | None
    fps_min: float | None = Field(description="A pole's slowest camera rate reported in the hour")
    disk_free_min: int | None


class NodeHealth(ApiModel):
    node: str
    since: str = Field(description="The first hour asked for, UTC; hours without a row had no heartbeat")
    hours: int
    rows: list[NodeHealthHour]
