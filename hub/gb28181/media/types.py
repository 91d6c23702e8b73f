"""What the SIP side and the media side exchange (the signalling helper keeps a copy; the lead joins them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hub.errors import HubError

Transport = Literal["udp", "tcp-active", "tcp-passive"]


@dataclass(frozen=True)
class MediaStarted:
    """Where the stream comes from, for the SDP answer (``c=`` and ``m=`` lines)."""

    local_host: str
    local_port: int  # tcp-passive: the port we listen on; udp / tcp-active: the port we send from


class StreamLimit(HubError):
    """The pole already sends its most city streams (SIP 486 Busy Here)."""
