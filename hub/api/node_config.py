"""``/api/nodes/{node}/config``: push a node config (config.update) and list what became of each push.

Installers and admins only (``@requires``); the hub validates before sending, so a bad config is a
422 whose ``detail`` lists each problem with its field (``loc``) and YAML ``line``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from hub.api.deps import IngestDep, ServiceDep, UserDep
from hub.api.models import ConfigRefused
from hub.api.models.node_config import ConfigSent, ConfigUpdate
from hub.auth.policy import requires
from hub.nodes.config_push import ConfigInvalid, config_text, list_updates, push_config, validate_for

router = APIRouter(prefix="/api/nodes", tags=["nodes"])


class ConfigPush(BaseModel):
    yaml: str | None = Field(default=None, max_length=64 * 1024,
                             description="The whole node config as YAML text (as in /etc/pingan/node.yaml)")
    config: dict[str, Any] | None = Field(default=None, description="Or the same as a JSON object")


def _invalid(exc: ConfigInvalid) -> JSONResponse:
    return JSONResponse({"detail": exc.problems, "message": str(exc)}, status_code=422)


@router.post("/{node}/config", status_code=202, response_model=ConfigSent,
             responses={422: {"model": ConfigRefused, "description": "Invalid config, not sent"}})
@requires("installer", "admin")
def push_node_config(node: str, body: ConfigPush, user: UserDep, ingest: IngestDep, service: ServiceDep) -> Any:
    """Validate the config as the node would, then send it as a signed config.update. The node tries
    it, and either confirms it (``applied``) or goes back to its last confirmed config (``rolled_back``)."""
    try:
        text = config_text(body.yaml, body.config)
        if ingest is not None and not ingest.connected:  # validate first, but do not queue a push that cannot go
            validate_for(node, None, text)
            raise HTTPException(503, "the hub is not connected to the broker: try again when /api/health says "
                                     "mqtt connected")
        return push_config(service, node, text, user.username)
    except ConfigInvalid as exc:
        return _invalid(exc)


@router.get("/{node}/config/updates", response_model=list[ConfigUpdate], response_model_exclude_unset=True)
@requires("installer", "admin")
def node_config_updates(node: str, service: ServiceDep,
                        limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[dict[str, Any]]:
    """Each config pushed to the node, newest first: sent → accepted → applied | rolled_back, or refused
    (with the node's reason) or expired."""
    return list_updates(service, node, limit)
