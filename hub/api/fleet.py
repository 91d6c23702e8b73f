"""``POST /api/nodes`` and ``DELETE /api/nodes/{node}``: add a node from the console and download its bundle,
or remove it (installers and admins; the same as ``pingan-hub nodes add|remove``, hub/nodes/fleet.py).

The bundle holds the node's secrets (command-signing key, MQTT password): it is made for this one
response and not kept on the hub. The broker learns the new user (or loses the removed one) when the
operator of the broker runs ``pingan-hub broker config --out DIR --reload``; the response says so."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel, Field

from edge.protocol import check_node_id
from hub.api.deps import ServiceDep, UserDep
from hub.api.models import Refused
from hub.api.models.fleet import NodeRemoved
from hub.auth.policy import requires
from hub.errors import HubError
from hub.nodes.fleet import Fleet, is_loopback, node_config_for, write_bundle

router = APIRouter(tags=["nodes"])
BROKER_NOTE = "run `pingan-hub broker config --out DIR --reload` so the broker knows it"


class NewNode(BaseModel):
    id: str = Field(min_length=1, max_length=64)
    kind: str = Field(pattern="^(alarm_post|rental_door)$")
    grid: str = Field(default="", max_length=32)
    place: str = Field(default="", max_length=200)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    broker_url: str = Field(max_length=300, description="mqtts://HOST:8883, the broker's TLS listener")
    block_key: str | None = Field(default=None, min_length=16, max_length=200,
                                  description="Doors: the block's template key (the hub never stores it)")


@router.post("/api/nodes", status_code=201, response_class=Response,
             responses={201: {"content": {"application/gzip": {}}},
                        422: {"model": Refused, "description": "A bad node id, broker address or key"}})
@requires("installer", "admin")
def add_node(body: NewNode, service: ServiceDep, user: UserDep) -> Response:
    """Register the node and answer with its bundle (node.yaml, credentials, systemd unit) as a tar.gz."""
    try:
        check_node_id(body.id)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    url = urlparse(body.broker_url)
    if url.scheme not in ("mqtt", "mqtts") or not url.hostname:
        raise HTTPException(422, "broker_url must look like mqtts://HOST:8883 / 地址应为 mqtts://主机:8883")
    if url.scheme == "mqtt" and not is_loopback(url.hostname):
        raise HTTPException(422, "plain mqtt:// beyond this machine would send the node's password in clear: use "
                                 "mqtts:// / 明文 mqtt:// 会泄露设备密码，请使用 mqtts://")
    if (body.lat is None) != (body.lon is None):
        raise HTTPException(422, "give both lat and lon, or neither / 经纬度需同时填写")
    if body.kind == "rental_door" and not body.block_key:
        raise HTTPException(422, "a door needs its block's key (block_key) / 门禁需要所在楼栋的密钥")
    if any(n["id"] == body.id and n.get("state") != "removed" for n in service.list_nodes()):
        raise HTTPException(409, f"{body.id} exists / 设备 {body.id} 已存在")
    fleet = Fleet(service.engine, service)
    try:
        made = fleet.add(body.id, kind=body.kind, grid=body.grid, place=body.place, lat=body.lat, lon=body.lon,
                         actor=user.username)
        config = node_config_for(body.id, body.kind, body.grid, body.place, body.lat, body.lon, body.broker_url)
        with tempfile.TemporaryDirectory() as tmp:
            bundle = write_bundle(made, config, Path(tmp), block_key=body.block_key).read_bytes()
    except HubError as exc:
        raise HTTPException(422, str(exc)) from None
    return Response(bundle, status_code=201, media_type="application/gzip", headers={
        "Content-Disposition": f'attachment; filename="{body.id}.bundle.tar.gz"', "X-Pingan-Note": BROKER_NOTE,
        "Cache-Control": "no-store"})


@router.delete("/api/nodes/{node}", response_model=NodeRemoved)
@requires("installer", "admin")
def remove_node(node: str, service: ServiceDep, user: UserDep) -> dict[str, Any]:
    """Revoke the node's MQTT login and signing key; its history stays."""
    try:
        Fleet(service.engine, service).remove(node, actor=user.username)
    except HubError as exc:
        raise HTTPException(404, str(exc)) from None
    return {"node": node, "state": "removed", "note": BROKER_NOTE}
