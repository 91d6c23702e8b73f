"""RTP for GB/T 28181 PS streams (RFC 3550): payload type 96 (PS/90000), 90 kHz timestamps, the SSRC from the
INVITE's ``y=`` line, the marker bit on the last packet of a frame; RFC 4571 framing (a 2-byte length before
each packet) when the stream goes over TCP.

The PS bytes of a frame are cut into payloads of at most ``MAX_PAYLOAD`` bytes, so a packet stays below a
typical 1500-byte MTU with IP/UDP headers; a platform reassembles the frame from the marker bit.
"""

from __future__ import annotations

import random
import struct

PAYLOAD_TYPE = 96
MAX_PAYLOAD = 1400
HEADER = struct.Struct(">BBHII")


class RtpPacketizer:
    """One city session's RTP numbering: its own sequence numbers and SSRC; timestamps are the frame's 90 kHz
    PTS plus a random offset (RFC 3550 §5.1: the first timestamp should be random)."""

    def __init__(self, ssrc: int, *, payload_type: int = PAYLOAD_TYPE, max_payload: int = MAX_PAYLOAD,
                 seq: int | None = None, ts_offset: int | None = None) -> None:
        if not 0 <= ssrc <= 0xFFFFFFFF:
            raise ValueError(f"SSRC {ssrc} is not a 32-bit number")
        self.ssrc = ssrc
        self.payload_type = payload_type
        self.max_payload = max_payload
        self.seq = random.randrange(1 << 16) if seq is None else seq & 0xFFFF
        self.ts_offset = random.randrange(1 << 32) if ts_offset is None else ts_offset
        self.packets_sent = 0

    def packets(self, payload: bytes, pts: int) -> list[bytes]:
        """One frame's RTP packets; all share its timestamp; the last has the marker bit."""
        ts = (pts + self.ts_offset) & 0xFFFFFFFF
        out: list[bytes] = []
        chunks = [payload[i:i + self.max_payload] for i in range(0, len(payload), self.max_payload)] or [b""]
        for n, chunk in enumerate(chunks):
            marker = 0x80 if n == len(chunks) - 1 else 0x00
            out.append(HEADER.pack(0x80, marker | self.payload_type, self.seq, ts, self.ssrc) + chunk)
            self.seq = (self.seq + 1) & 0xFFFF
        self.packets_sent += len(out)
        return out


def frame_tcp(packet: bytes) -> bytes:
    """RFC 4571: a 16-bit big-endian length, then the RTP packet."""
    if len(packet) > 0xFFFF:
        raise ValueError(f"an RTP packet of {len(packet)} bytes cannot be framed for TCP (RFC 4571: ≤ 65535)")
    return struct.pack(">H", len(packet)) + packet
