"""Response models of hub/api/sensitive.py (the rule: hub/api/models/__init__.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hub.api.models import ApiModel

PeriodState = Literal["scheduled", "active", "ended", "cancelled"]  # hub.sensitive.periods.STATES
PushState = Literal["pending", "sending", "sent", "skipped", "failed"]


class ProfileOut(ApiModel):
    loiter_s: float | None = Field(default=None, description="Loitering reported after this many seconds")
    night_schedule: list[str] | None = Field(default=None, description="Zone windows during the period")


class SensitivePeriod(ApiModel):
    id: str
    scope: Literal["district", "grids"]
    grids: list[str] = Field(description="The grids in scope (empty for the whole district)")
    starts_at: str
    ends_at: str
    reason: str
    created_by: str
    created_at: str
    escalate_after_s: float = Field(description="Unacknowledged alarms in scope escalate after this long")
    profile: ProfileOut
    state: PeriodState
    activated_at: str | None
    ended_at: str | None
    cancelled_by: str | None


class SensitivePush(ApiModel):
    period_id: str
    node: str
    phase: Literal["apply", "revert"] = Field(description="The profile at the start, the previous config at the end")
    state: PushState = Field(description="pending: waits for the pole to be online; skipped/failed: see reason")
    base_command: str | None = Field(description="The config.update the pole had applied before (its previous config)")
    command_id: str | None = Field(description="The config.update this push sent (the node page lists it)")
    reason: str | None
    updated_at: str
    outcome: str | None = Field(description="What the pole made of it: sent, accepted, applied, rolled_back, "
                                            "refused, expired")


class SensitiveReport(ApiModel):
    day: str
    generated_at: str
    path: str = Field(description="The report's file on the hub")
    webhook_status: int | None
    webhook_error: str | None
    notified: dict[str, dict[str, int] | str] | None = Field(
        description="Per notification channel: deliveries by status; or why nothing was sent")


class SensitiveDetail(SensitivePeriod):
    pushes: list[SensitivePush]
    reports: list[SensitiveReport]
