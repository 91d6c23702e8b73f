"""GB/T 28181 media, unit level: the PS muxer's packs parse back (by a parser written here from ISO 13818-1, and by
ffprobe and PyAV), RTP headers and the marker bit, RFC 4571 framing, and the TCP sender's behaviour with a receiver
that stops reading (the hub's loop is never blocked, the session ends with a reason)."""

from __future__ import annotations

import asyncio
import fractions
import struct
from pathlib import Path

import av
import numpy as np
import pytest

from hub.gb28181.media.ps import PsMuxer, _crc32_mpeg2, pes_packets
from hub.gb28181.media.rtp import RtpPacketizer, frame_tcp
from hub.gb28181.media.senders import RtpSender
from hub.gb28181.media.source import PsFrame
from hub.gb28181.media.tap import nal_types
from tests.gb_rtp import Capture, parse_rtp, probe, read_rfc4571


def h264_frames(n: int = 60, size: tuple[int, int] = (320, 240), noisy_every: int = 0) -> list[tuple[bytes, int, bool]]:
    """Annex B access units from libx264 (baseline, SPS/PPS in band before each IDR, keyint 30)."""
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = size[0], size[1], "yuv420p"
    codec.time_base = fractions.Fraction(1, 90000)
    codec.framerate = fractions.Fraction(15, 1)
    codec.options = {"preset": "ultrafast", "tune": "zerolatency", "profile": "baseline",
                     "x264-params": "keyint=30:min-keyint=30:scenecut=0"}
    rng = np.random.default_rng(7)
    out = []
    for i in range(n):
        if noisy_every and i % noisy_every == 0:
            img = rng.integers(0, 255, (size[1], size[0], 3), np.uint8)
        else:
            img = np.full((size[1], size[0], 3), (i * 4) % 255, np.uint8)
        frame = av.VideoFrame.from_ndarray(img, format="bgr24")
        frame.pts, frame.time_base = i * 6000, codec.time_base
        out += [(bytes(p), int(p.pts), bool(p.is_keyframe)) for p in codec.encode(frame)]
    out += [(bytes(p), int(p.pts), bool(p.is_keyframe)) for p in codec.encode(None)]
    return out


def parse_ps(data: bytes) -> list[tuple[str, dict[str, object]]]:
    """Walk the PS start codes; returns (kind, fields) in order. Fails on anything not where it should be."""
    out: list[tuple[str, dict[str, object]]] = []
    pos = 0
    while pos < len(data):
        assert data[pos:pos + 3] == b"\x00\x00\x01", f"no start code at {pos}"
        sid = data[pos + 3]
        if sid == 0xBA:
            b = data[pos + 4:pos + 14]
            assert b[0] >> 6 == 1, "MPEG-2 pack header"
            scr = (((b[0] >> 3) & 7) << 30 | ((b[0] & 3) << 28) | (b[1] << 20) | ((b[2] >> 3) << 15)
                   | ((b[2] & 3) << 13) | (b[3] << 5) | (b[4] >> 3))
            assert b[0] & 4 and b[2] & 4 and b[4] & 4 and b[5] & 1 and b[8] & 3 == 3, "marker bits"
            stuffing = b[9] & 7
            out.append(("pack", {"scr": scr, "mux_rate": (b[6] << 14) | (b[7] << 6) | (b[8] >> 2)}))
            pos += 14 + stuffing
            continue
        (length,) = struct.unpack(">H", data[pos + 4:pos + 6])
        body = data[pos + 6:pos + 6 + length]
        assert len(body) == length, "truncated"
        if sid == 0xBB:
            streams = [body[i] for i in range(6, len(body), 3)]
            out.append(("system", {"streams": streams}))
        elif sid == 0xBC:
            info_len = struct.unpack(">H", body[2:4])[0]
            es_len = struct.unpack(">H", body[4 + info_len:6 + info_len])[0]
            es = body[6 + info_len:6 + info_len + es_len]
            crc = struct.unpack(">I", body[-4:])[0]
            assert crc == _crc32_mpeg2(data[pos:pos + 6 + length - 4]), "PSM CRC"
            out.append(("psm", {"stream_type": es[0], "stream_id": es[1]}))
        elif sid == 0xE0:
            assert body[0] >> 6 == 2
            flags, hlen = body[1], body[2]
            fields: dict[str, object] = {"length": length, "payload": body[3 + hlen:]}
            if flags & 0x80:
                p = body[3:8]
                fields["pts"] = ((p[0] >> 1) & 7) << 30 | p[1] << 22 | (p[2] >> 1) << 15 | p[3] << 7 | p[4] >> 1
            out.append(("pes", fields))
        else:
            raise AssertionError(f"unexpected stream id {sid:#x}")
        pos += 6 + length
    return out


def test_ps_packs_parse_back_with_psm_before_every_idr_and_ffprobe_reads_all_frames(tmp_path: Path) -> None:
    frames = h264_frames(60)
    mux = PsMuxer()
    data = b""
    for au, pts, key in frames:
        pack = mux.frame(au, pts, key)
        parts = parse_ps(pack)
        kinds = [k for k, _ in parts]
        assert kinds[0] == "pack" and parts[0][1]["scr"] == pts
        if key:  # GB/T 28181: system header and PSM (H.264, 0xE0) before each IDR, so a platform can join there
            assert kinds[:3] == ["pack", "system", "psm"]
            assert parts[1][1]["streams"] == [0xE0]
            assert parts[2][1] == {"stream_type": 0x1B, "stream_id": 0xE0}
            assert 5 in nal_types(au) and 7 in nal_types(au)
        else:
            assert "psm" not in kinds
        pes = [f for k, f in parts if k == "pes"]
        assert pes[0]["pts"] == pts and all("pts" not in f for f in pes[1:])
        assert b"".join(f["payload"] for f in pes) == au  # type: ignore[misc]
        data += pack
    assert sum(1 for _, _, k in frames if k) == 2
    info = probe(data, tmp_path / "unit.ps")
    assert info["codec_name"] == "h264" and int(info["nb_read_frames"]) == 60 and not info["errors"], info
    with av.open(str(tmp_path / "unit.ps"), format="mpeg") as container:
        assert sum(1 for _ in container.decode(video=0)) == 60


def test_a_large_frame_is_split_into_pes_packets_of_at_most_65535_bytes() -> None:
    au = b"\x00\x00\x00\x01\x65" + bytes(range(256)) * 800  # 204,805 bytes
    packets = pes_packets(au, 123456)
    assert len(packets) == 4
    parsed = parse_ps(b"".join(packets))
    assert all(6 + int(f["length"]) <= 65535 + 6 and int(f["length"]) <= 65535 for _, f in parsed)  # type: ignore
    assert parsed[0][1]["pts"] == 123456 and all("pts" not in f for _, f in parsed[1:])
    assert b"".join(f["payload"] for _, f in parsed) == au  # type: ignore[misc]


def test_rtp_headers_marker_and_timestamps() -> None:
    rtp = RtpPacketizer(0x0123ABCD, seq=65534, ts_offset=1000)
    first = [parse_rtp(p) for p in rtp.packets(bytes(3000), 90000)]
    second = [parse_rtp(p) for p in rtp.packets(bytes(10), 96000)]
    assert [len(p.payload) for p in first] == [1400, 1400, 200]
    assert [p.marker for p in first + second] == [False, False, True, True]
    assert [p.seq for p in first + second] == [65534, 65535, 0, 1]  # wraps
    assert {p.ts for p in first} == {91000} and second[0].ts == 97000
    assert all(p.version == 2 and p.pt == 96 and p.ssrc == 0x0123ABCD for p in first + second)
    with pytest.raises(ValueError):
        RtpPacketizer(1 << 32)


def test_rfc4571_framing_reads_back() -> None:
    packets = RtpPacketizer(7).packets(bytes(5000), 0)
    stream = b"".join(frame_tcp(p) for p in packets)
    assert stream[:2] == struct.pack(">H", len(packets[0]))

    async def main() -> Capture:
        reader = asyncio.StreamReader()
        reader.feed_data(stream)
        reader.feed_eof()
        capture = Capture()
        await read_rfc4571(reader, capture)
        return capture

    capture = asyncio.run(main())
    assert [p.payload for p in capture.packets] == [p[12:] for p in packets]
    with pytest.raises(ValueError):
        frame_tcp(bytes(70000))


def test_a_receiver_that_stops_reading_never_blocks_and_ends_the_session() -> None:
    """A platform that connects and never reads: the sender's queue stays bounded (skips to keyframes), push never
    blocks the loop, and after stall_s the session ends with its reason."""
    big = PsFrame(0, bytes(200_000), True)
    small = PsFrame(3000, bytes(20_000), False)

    async def main() -> tuple[list[str], RtpSender, float]:
        accepted: list[asyncio.StreamWriter] = []

        async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.append(writer)  # holds the connection, reads nothing

        server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        ended: list[str] = []
        ready = asyncio.Event()
        sender = RtpSender("tcp-active", ssrc=1, dest_host="127.0.0.1", dest_port=port, bind_host="127.0.0.1",
                           on_ready=ready.set, on_end=ended.append, stall_s=1.5, queue_frames=10)
        await sender.open()
        await asyncio.wait_for(ready.wait(), 5)
        loop_blocked = 0.0
        for i in range(400):  # ~40 MB offered to a receiver that takes nothing
            t0 = asyncio.get_running_loop().time()
            sender.push(big if i % 30 == 0 else small)
            loop_blocked = max(loop_blocked, asyncio.get_running_loop().time() - t0)
            assert len(sender._queue) <= 10
            await asyncio.sleep(0.005)
        for _ in range(100):
            if ended:
                break
            await asyncio.sleep(0.05)
        await sender.close()
        server.close()
        for w in accepted:
            w.close()
        return ended, sender, loop_blocked

    ended, sender, blocked = asyncio.run(asyncio.wait_for(main(), 30))
    assert ended and "stalled" in ended[0], ended
    assert sender.frames_dropped > 0 and blocked < 0.5


def test_tcp_passive_without_a_platform_times_out_with_a_reason() -> None:
    async def main() -> list[str]:
        ended: list[str] = []
        sender = RtpSender("tcp-passive", ssrc=1, dest_host="127.0.0.1", dest_port=0, bind_host="127.0.0.1",
                           on_ready=lambda: None, on_end=ended.append, accept_timeout_s=0.5)
        port = await sender.open()
        assert port > 0
        await asyncio.sleep(1.0)
        await sender.close()
        return ended

    ended = asyncio.run(main())
    assert len(ended) == 1 and "did not connect" in ended[0] and "0.5 s" in ended[0]
