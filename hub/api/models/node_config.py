"""Response models of hub/api/node_config.py: a config push sent, and what became of each push."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from hub.api.models import ApiModel

# sent → accepted → applied | rolled_back, or refused (the node's reason) or expired (hub.nodes.config_push)
UpdateState = Literal["sent", "accepted", "refused", "applied", "rolled_back", "expired"]


class ConfigSent(ApiModel):
    command_id: str
    node: str
    state: Literal["sent"]
    sha256: str = Field(description="Of the YAML text sent; the node reports it back")


class ConfigReply(ApiModel):
    """The node's reply to the config.update command (it took the config for a trial, or refused it)."""

    ok: bool | None
    detail: str | None
    at: str
    data: dict[str, Any] | None = Field(description="The reply's data as the node sent it")


class ConfigUpdate(ApiModel):
    command_id: str
    operator: str | None
    issued_at: str
    expires_at: str
    sha256: str
    yaml: str = Field(description="The config text that was sent")
    reply: ConfigReply | None
    state: UpdateState
    reason: str | None = Field(description="Why it was refused, rolled back or expired")
    outcome_at: str | None = Field(description="When the hub received config.applied / config.rolled_back")
    boots: int | None = Field(default=None, description="Boots the trial took; only with an outcome")
