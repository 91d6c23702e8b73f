"""Response models of hub/api/fleet.py (adding a node answers its bundle, a tar.gz, not JSON)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hub.api.models import ApiModel


class NodeRemoved(ApiModel):
    node: str
    state: Literal["removed"]
    note: str = Field(description="What the installer still has to do (reload the broker)")
