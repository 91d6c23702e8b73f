"""GB/T 28181 live video: a pole's H.264, taken from the hub's own live path, muxed into MPEG-PS and sent
over RTP (UDP, TCP active, TCP passive) to the city platform that sent the INVITE.

The SIP side (hub/gb28181) calls :class:`GbMediaSessions`; nothing here speaks SIP.
"""

from hub.gb28181.media.sessions import GbMediaSessions
from hub.gb28181.media.types import MediaStarted, StreamLimit, Transport

__all__ = ["GbMediaSessions", "MediaStarted", "StreamLimit", "Transport"]
