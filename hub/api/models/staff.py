"""Response models of hub/api/staff.py: the audit log's page (accounts answer ``auth.StaffUser``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from hub.api.models import ApiModel


class StaffAction(ApiModel):
    """One row of the hub's audit log: who did what to what, and its detail."""

    seq: int
    at: str
    actor: str = Field(description="A staff username, a node id, or 'system'")
    action: str = Field(description="user.add, alarm.resolve, dispatch.withdrawn ...")
    target: str
    detail: dict[str, Any] | None


class AuditPage(ApiModel):
    total: int = Field(description="Rows matching the filters, for the pager")
    items: list[StaffAction]
