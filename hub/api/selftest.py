"""Self-test routes (issue 20, docs/selftest.md): a node's history, a signed request to test now, and the
fleet view per grid. Results themselves arrive as ``selftest.result`` events (hub/selftest/service.py)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from edge.config import node_config_from_text
from edge.errors import PinganError
from edge.protocol import NODE_ID_PATTERN
from edge.shared.wiring import wiring
from hub.api.auth import current_user
from hub.api.deps import ServiceDep
from hub.api.models.selftest import FleetSelftest, SelftestRecord, SelftestRequested
from hub.auth.policy import requires
from hub.errors import NotFound
from hub.nodes.config_push import list_updates
from hub.selftest.service import fleet, history
from hub.store.engine import now_utc
from hub.store.schema import nodes

router = APIRouter(tags=["selftest"])


class SelftestRequest(BaseModel):
    checks: list[str] | None = Field(default=None, max_length=20,
                                     description="Checks to run (button_loop, audio_loop, camera, …); none = all")


@router.get("/api/nodes/{node}/selftests", response_model=list[SelftestRecord], response_model_exclude_unset=True)
def node_selftests(node: str, service: ServiceDep,
                   limit: Annotated[int, Query(ge=1, le=365)] = 30) -> list[dict[str, Any]]:
    """The node's self-test results, newest first."""
    with service.engine.connect() as conn:
        return history(conn, node, limit)


@router.post("/api/nodes/{node}/selftest", status_code=202, response_model=SelftestRequested,
             response_model_exclude_unset=True,
             responses={404: {"description": "No such node"}, 409: {"description": "Node has no signing key"}})
@requires("operator", "installer", "admin")
def request_selftest(node: str, body: SelftestRequest, request: Request, service: ServiceDep) -> dict[str, Any]:
    """Send a signed ``selftest.run``; the result comes back as the node's reply and a selftest.result event."""
    if not re.fullmatch(NODE_ID_PATTERN, node):
        raise HTTPException(404, f"no node {node!r} / 没有节点 {node!r}")
    with service.engine.connect() as conn:
        if conn.execute(select(nodes.c.id).where(nodes.c.id == node)).scalar() is None:
            raise HTTPException(404, f"no node {node!r} / 没有节点 {node!r}")
    args: dict[str, Any] = {} if body.checks is None else {"checks": body.checks}
    command_id = service.send_command(node, "selftest.run", args, current_user(request).username)
    if command_id is None:
        raise HTTPException(409, f"node {node} has no signing key: register it first / "
                                 f"节点 {node} 没有签名密钥，请先登记")
    return {"command_id": command_id, "node": node, "status": "sent"}


@router.get("/api/selftest/fleet", response_model=FleetSelftest)
def fleet_selftest(service: ServiceDep) -> dict[str, Any]:
    """Poles and doors (apart) passing, failing and not tested in the last 3 days, per grid."""
    with service.engine.connect() as conn:
        return fleet(conn, now_utc())


@router.get("/api/nodes/{node}/wiring.svg", response_class=Response,
            responses={200: {"content": {"image/svg+xml": {}}}, 404: {"description": "No config in effect known"}})
def node_wiring(node: str, service: ServiceDep) -> Response:
    """The Pi header of the config in effect on the node: the newest pushed config the node applied
    (the hub knows no other; a node never pushed to has its installer's file only)."""
    try:
        updates = list_updates(service, node, 500)
    except NotFound:
        raise HTTPException(404, f"no node {node!r} / 没有节点 {node!r}") from None
    applied = next((u for u in updates if u["state"] == "applied" and u.get("yaml")), None)
    if applied is None:
        raise HTTPException(404, f"the hub has no config in effect for {node}: only configs pushed and applied are "
                                 f"known; run pingan-edge wiring on the node / 中心没有 {node} 正在使用的配置，"
                                 "请在节点上运行 pingan-edge wiring")
    try:
        _, picture = wiring(node_config_from_text(applied["yaml"], f"config for {node}"))
    except PinganError as exc:
        raise HTTPException(422, f"the config in effect is mis-wired / 配置接线错误: {exc}") from None
    return Response(picture, media_type="image/svg+xml")
