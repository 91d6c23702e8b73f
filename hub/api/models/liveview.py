"""Response models of hub/api/liveview.py: the browser's ICE servers, a live or talk session, the audit."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from hub.api.models import ApiModel


class IceServer(ApiModel):
    """One RTCIceServer as configured (``PINGAN_LIVE_ICE_SERVERS``), handed to the browser verbatim.

    ``extra="allow"``: the setting is WebRTC's own dictionary, which has more members than these
    (and may grow); the hub only passes it through, so it keeps whatever the administrator wrote."""

    model_config = ConfigDict(extra="allow")
    urls: str | list[str]
    username: str | None = None
    credential: str | None = None


class LiveConfig(ApiModel):
    ice_servers: list[IceServer]
    keepalive_s: float = Field(description="Send POST /api/live/{session}/keepalive this often")
    viewer_timeout_s: float = Field(description="A session without keep-alives this long ends")


class LiveStarted(ApiModel):
    session: str
    node: str
    kind: Literal["live", "talk"]
    sdp: str = Field(description="The node's SDP answer")
    type: Literal["answer"]
    keepalive_s: float
    viewer_timeout_s: float
    max_session_s: float | None = Field(description="The node ends the session after this long; None: not said")


class LiveAlive(ApiModel):
    session: str
    alive: bool


class LiveSession(ApiModel):
    """One live, talk or MJPEG session, as audited."""

    id: str
    node: str
    username: str
    kind: Literal["live", "talk", "mjpeg", "gb28181"]  # gb28181: the city platform (hub/gb28181/media)
    started: str
    ended: str | None
    duration_s: float | None
    end_reason: str | None
