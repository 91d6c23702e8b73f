"""Response models of hub/api/selftest.py (the rule: hub/api/models/__init__.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from edge.protocol import SelftestCheck
from hub.api.models import ApiModel


class SelftestRecord(ApiModel):
    id: str
    ts: datetime
    received_at: datetime
    ok: bool
    trigger: str | None = None
    duration_s: float | None = None
    checks: list[SelftestCheck] = Field(default_factory=list)


class SelftestRequested(ApiModel):
    command_id: str
    node: str
    status: Literal["sent"] = "sent"


class GridSelftest(ApiModel):
    """One grid's alarm poles (``poles`` … ``untested``) and rental doors (``doors`` … ``doors_untested``)."""

    grid: str
    poles: int
    passing: int
    failing: int
    untested: list[str]
    doors: int
    doors_passing: int
    doors_failing: int
    doors_untested: list[str]


class FleetSelftest(ApiModel):
    grids: list[GridSelftest]
    not_tested_days: int
