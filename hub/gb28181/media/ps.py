"""MPEG-2 Program Stream (ISO/IEC 13818-1 §2.5) for one H.264 video stream, the way GB/T 28181 platforms read it.

Hand-written rather than ffmpeg's ``mpeg`` muxer: GB/T 28181 (annex C) wants a pack header on every frame and a
system header plus a program stream map (PSM, stream_type 0x1B) before every IDR, so a platform can start
decoding at any keyframe; ffmpeg writes the PSM once at the start (if at all), and a platform that joins late
never learns the stream type.

One call of :meth:`PsMuxer.frame` turns one H.264 access unit (Annex B, with its SPS/PPS before an IDR) into the
bytes of one pack: pack header [+ system header + PSM] + PES packets (each ≤ 65535 bytes; only the first carries
the PTS, as the access unit starts there).
"""

from __future__ import annotations

import struct

VIDEO_STREAM_ID = 0xE0
STREAM_TYPE_H264 = 0x1B
MUX_RATE = 50_000  # program_mux_rate in units of 50 bytes/s: 20 Mbit/s, a bound well above any pole's stream
PES_PAYLOAD_MAX = 65_535 - 8  # PES_packet_length counts the 3 flag bytes and the 5 PTS bytes too
PTS_MASK = (1 << 33) - 1


def _crc32_mpeg2(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) & 0xFFFFFFFF if crc & 0x80000000 else (crc << 1) & 0xFFFFFFFF
    return crc


def pack_header(scr: int, mux_rate: int = MUX_RATE) -> bytes:
    """The 14-byte MPEG-2 pack header; SCR base = the frame's 90 kHz PTS, extension 0, no stuffing."""
    scr &= PTS_MASK
    return bytes([
        0x00, 0x00, 0x01, 0xBA,
        0x40 | ((scr >> 27) & 0x38) | 0x04 | ((scr >> 28) & 0x03),
        (scr >> 20) & 0xFF,
        ((scr >> 12) & 0xF8) | 0x04 | ((scr >> 13) & 0x03),
        (scr >> 5) & 0xFF,
        ((scr << 3) & 0xF8) | 0x04,  # SCR_extension bits 8..7 are 0
        0x01,  # SCR_extension bits 6..0 = 0, marker
        (mux_rate >> 14) & 0xFF,
        (mux_rate >> 6) & 0xFF,
        ((mux_rate << 2) & 0xFC) | 0x03,
        0xF8,  # reserved, pack_stuffing_length 0
    ])


def system_header(rate_bound: int = MUX_RATE) -> bytes:
    """System header naming the one video stream (no audio: the city gets the pole's picture only)."""
    size_kb = 1024  # P-STD buffer bound: 1 MB (buffer_bound_scale 1 = units of 1024 bytes)
    body = bytes([
        0x80 | ((rate_bound >> 15) & 0x7F), (rate_bound >> 7) & 0xFF, ((rate_bound << 1) & 0xFE) | 0x01,
        0x00,  # audio_bound 0, fixed_flag 0, CSPS_flag 0
        0xE1,  # system_audio_lock, system_video_lock, marker, video_bound 1
        0x7F,  # packet_rate_restriction 0, reserved
        VIDEO_STREAM_ID, 0xC0 | 0x20 | ((size_kb >> 8) & 0x1F), size_kb & 0xFF,
    ])
    return b"\x00\x00\x01\xBB" + struct.pack(">H", len(body)) + body


def program_stream_map(version: int = 0) -> bytes:
    """The PSM: one elementary stream, H.264 (0x1B) on stream id 0xE0, with its CRC-32."""
    entries = bytes([STREAM_TYPE_H264, VIDEO_STREAM_ID, 0x00, 0x00])
    body = bytes([0x80 | 0x60 | (version & 0x1F), 0xFF, 0x00, 0x00]) + struct.pack(">H", len(entries)) + entries
    head = b"\x00\x00\x01\xBC" + struct.pack(">H", len(body) + 4)
    return head + body + struct.pack(">I", _crc32_mpeg2(head + body))


def _pts_bytes(pts: int) -> bytes:
    pts &= PTS_MASK
    return bytes([0x20 | ((pts >> 29) & 0x0E) | 0x01]) + struct.pack(
        ">HH", ((pts >> 14) & 0xFFFE) | 0x01, ((pts << 1) & 0xFFFE) | 0x01)


def pes_packets(payload: bytes, pts: int, max_payload: int = PES_PAYLOAD_MAX) -> list[bytes]:
    """The access unit in PES packets of at most 65535 bytes; the first has the PTS (baseline: no B-frames, so
    DTS = PTS and is not written)."""
    out: list[bytes] = []
    pos = 0
    first = True
    while first or pos < len(payload):
        if first:
            header = b"\x84\x80\x05" + _pts_bytes(pts)  # data_alignment_indicator: an access unit starts here
        else:
            header = b"\x80\x00\x00"
        chunk = payload[pos:pos + max_payload - (len(header) - 3)]
        pos += len(chunk)
        out.append(b"\x00\x00\x01" + bytes([VIDEO_STREAM_ID]) + struct.pack(">H", len(header) + len(chunk))
                   + header + chunk)
        first = False
    return out


class PsMuxer:
    """One pole's PS: pack per frame, system header + PSM before each IDR."""

    def __init__(self) -> None:
        self.psm = program_stream_map()
        self.sys = system_header()

    def frame(self, access_unit: bytes, pts: int, keyframe: bool) -> bytes:
        parts = [pack_header(pts)]
        if keyframe:
            parts += [self.sys, self.psm]
        parts += pes_packets(access_unit, pts)
        return b"".join(parts)
