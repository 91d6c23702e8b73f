"""Live view HTTP routes. Roles: operators (and admins) may watch and talk, installers may watch.
Every route is behind hub/auth/policy.py's middleware; a session can be kept alive or stopped only by the
user who started it (or an admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from hub.api.deps import LiveDep, MjpegDep, UserDep
from hub.api.models.liveview import LiveAlive, LiveConfig, LiveSession, LiveStarted
from hub.auth.policy import requires
from hub.auth.service import User
from hub.live.video.service import LiveService, NodeUnavailable

router = APIRouter()
VIEW_ROLES = ("operator", "installer", "admin")
TALK_ROLES = ("operator", "admin")
MJPEG = "multipart/x-mixed-replace; boundary=frame"


class OfferBody(BaseModel):
    sdp: str = Field(min_length=10, max_length=32_000, description="The browser's SDP offer (ICE gathered)")


async def _start(live: LiveService, user: User, node_id: str, body: OfferBody, kind: str) -> dict[str, Any]:
    try:
        return await live.start(node_id, user.username, body.sdp, kind=kind)
    except NodeUnavailable as exc:
        raise HTTPException(exc.status, str(exc)) from None


@router.get("/api/live/config", response_model=LiveConfig, response_model_exclude_unset=True)
@requires(*VIEW_ROLES)
def live_config(live: LiveDep) -> dict[str, Any]:
    """ICE servers for the browser's RTCPeerConnection (a TURN server in a NATed deployment)."""
    return {"ice_servers": live.ice_servers, "keepalive_s": 5, "viewer_timeout_s": live.viewer_timeout_s}


@router.post("/api/nodes/{node_id}/live", response_model=LiveStarted)
@requires(*VIEW_ROLES)
async def start_live(node_id: str, body: OfferBody, user: UserDep, live: LiveDep) -> dict[str, Any]:
    """Watch a pole: SDP offer in, the node's SDP answer and a session id out."""
    return await _start(live, user, node_id, body, "live")


@router.post("/api/nodes/{node_id}/talk", response_model=LiveStarted)
@requires(*TALK_ROLES)
async def start_talk(node_id: str, body: OfferBody, user: UserDep, live: LiveDep) -> dict[str, Any]:
    """Watch and talk: the offer carries the operator's microphone; the answer the pole's."""
    return await _start(live, user, node_id, body, "talk")


@router.post("/api/live/{session_id}/keepalive", response_model=LiveAlive)
@requires(*VIEW_ROLES)
def keepalive(session_id: str, user: UserDep, live: LiveDep) -> dict[str, Any]:
    """The console sends this every few seconds; without it the session ends (the viewer left)."""
    return live.keepalive(session_id, user.username, user.role)


@router.delete("/api/live/{session_id}", response_model=LiveAlive)
@requires(*VIEW_ROLES)
async def stop_live(session_id: str, user: UserDep, live: LiveDep) -> dict[str, Any]:
    return await live.stop(session_id, user.username, user.role)


@router.get("/api/live/sessions", response_model=list[LiveSession])
@requires("operator", "admin")
def live_history(live: LiveDep, node: str | None = None,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[dict[str, Any]]:
    """The audit of live and talk sessions: who, which pole, when, how long, why it ended."""
    return live.history(node, limit)


@router.get("/api/nodes/{node_id}/live.mjpeg", response_class=StreamingResponse,
            responses={200: {"content": {MJPEG: {}}}})
@requires(*VIEW_ROLES)
async def live_mjpeg(node_id: str, user: UserDep, relays: MjpegDep) -> StreamingResponse:
    """MJPEG fallback for clients without WebRTC: the hub watches the pole itself (one WebRTC session per
    pole, shared by every MJPEG client) and re-serves its frames as JPEGs."""
    try:
        stream = await relays.open(node_id, user.username)
    except NodeUnavailable as exc:
        raise HTTPException(exc.status, str(exc)) from None
    return StreamingResponse(stream, media_type=MJPEG,
                             headers={"Cache-Control": "no-store"})
