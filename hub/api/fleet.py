"""``POST /api/nodes`` and ``DELETE /api/nodes/{node}``: add a node from the console and download its bundle,
or remove it (installers and admins; the same as ``pingan-hub nodes add|remove``, hub/nodes/fleet.py). With
``PINGAN_BROKER_DIR`` (the folder of ``pingan-hub broker config``) the bundle carries the broker's ca.crt, and
a node may log in with a client certificate from that CA instead of a password (``auth: cert``).

The bundle holds the node's secrets (command-signing key, MQTT password): it is made for this one
response and not kept on the hub. The broker learns the new user (or loses the removed one) when the
operator of the broker runs ``pingan-hub broker config --out DIR --reload``; the response says so."""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel, Field

from edge.protocol import check_node_id
from hub.api.deps import NodeHealthDep, ServiceDep, SettingsDep, UserDep
from hub.api.models import Refused
from hub.api.models.fleet import NodeHealth, NodeRemoved
from hub.auth.policy import requires
from hub.errors import HubError
from hub.nodes.fleet import Fleet, is_loopback, node_config_for, write_bundle
from hub.nodes.health import MAX_HOURS

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
    auth: Literal["password", "cert"] = Field(default="password", description=(
        "The node's MQTT login: a password, or a client certificate from the hub's CA (PINGAN_BROKER_DIR; the "
        "node dials the broker's --cert-port listener)"))


@router.post("/api/nodes", status_code=201, response_class=Response,
             responses={201: {"content": {"application/gzip": {}}},
                        422: {"model": Refused, "description": "A bad node id, broker address or key"}})
@requires("installer", "admin")
def add_node(body: NewNode, service: ServiceDep, user: UserDep, settings: SettingsDep) -> Response:
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
    # the broker's CA (PINGAN_BROKER_DIR): its ca.crt goes in every bundle (the node then trusts the hub's own
    # broker, not only the system's CAs), and its ca.key signs a client certificate for a node that logs in so
    broker_dir = settings.broker_dir
    ca_crt = broker_dir / "ca.crt" if broker_dir is not None and (broker_dir / "ca.crt").is_file() else None
    if body.auth == "cert":
        if ca_crt is None or broker_dir is None or not os.access(broker_dir / "ca.key", os.R_OK):
            # checked before anything is made: ca.key is root's (0600) unless the hub is given it to read
            raise HTTPException(422, "a client certificate needs the hub's CA: set PINGAN_BROKER_DIR to the folder "
                                     "of `pingan-hub broker config`, its ca.key readable by the hub / 客户端证书需要"
                                     "中心的 CA：请将 PINGAN_BROKER_DIR 设为 `pingan-hub broker config` 的目录，"
                                     "且中心可读取其中的 ca.key")
        if url.scheme != "mqtts":
            raise HTTPException(422, "a client certificate needs an mqtts:// broker_url (the broker's certificate "
                                     "listener) / 客户端证书需要 mqtts:// 地址（代理服务器的证书端口）")
    if any(n["id"] == body.id and n.get("state") != "removed" for n in service.list_nodes()):
        raise HTTPException(409, f"{body.id} exists / 设备 {body.id} 已存在")
    fleet = Fleet(service.engine, service)
    try:
        made = fleet.add(body.id, kind=body.kind, grid=body.grid, place=body.place, lat=body.lat, lon=body.lon,
                         actor=user.username, ca_dir=broker_dir if body.auth == "cert" else None)
        config = node_config_for(body.id, body.kind, body.grid, body.place, body.lat, body.lon, body.broker_url)
        if ca_crt is not None:  # where `pingan-edge install` puts the bundle's files (as `nodes add --ca`)
            config["mqtt"]["ca_file"] = "/etc/pingan/ca.crt"
        if body.auth == "cert":
            config["mqtt"]["client_cert"] = "/etc/pingan/mqtt-client.crt"
        with tempfile.TemporaryDirectory() as tmp:
            bundle = write_bundle(made, config, Path(tmp), ca_crt=ca_crt, block_key=body.block_key).read_bytes()
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


@router.get("/api/nodes/{node}/health", response_model=NodeHealth)
def node_health(node: str, history: NodeHealthDep,
                hours: int = Query(48, ge=1, le=MAX_HOURS, description="How many hours back, this one included"),
                ) -> dict[str, Any]:
    """The node's heartbeats per hour: gaps, restarts, temperature, outbox (the node page's trend)."""
    out = history.hours(node, hours, datetime.now(UTC))
    if out is None:
        raise HTTPException(404, f"no node {node}")
    return out
