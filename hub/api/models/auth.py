"""Response models of hub/api/auth.py: login, logout, the live ticket, who am I, the staff list."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hub.api.models import ApiModel, Role


class LoginOut(ApiModel):
    token: str = Field(description="Send as `Authorization: Bearer <token>`; the console uses the cookie instead")
    username: str
    role: Role
    expires_in_s: int = Field(description="The session ends after this long without use")


class LogoutOut(ApiModel):
    ok: Literal[True]


class LiveTicketOut(ApiModel):
    ticket: str = Field(description="Single use: /api/live?ticket=<ticket>")
    expires_in_s: int


class Me(ApiModel):
    username: str
    role: Role
    timezone: str = Field(description="The centre's time zone (reports' days)")
    escalate_after_s: float = Field(description="An alarm nobody acknowledged this long escalates")


class StaffUser(ApiModel):
    username: str
    role: Role
    disabled: bool
    created: str
