"""A GB/T 28181 platform's receiving side, for the tests and the bench: takes RTP over UDP or RFC 4571 TCP, checks
every header, unwraps the PS and counts what ffprobe (Debian's ffmpeg) decodes from it. Written from the RFCs,
independent of hub/gb28181/media."""

from __future__ import annotations

import asyncio
import json
import shutil
import struct
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Packet:
    version: int
    marker: bool
    pt: int
    seq: int
    ts: int
    ssrc: int
    payload: bytes


def parse_rtp(data: bytes) -> Packet:
    assert len(data) >= 12, f"RTP packet of {len(data)} bytes"
    b0, b1, seq, ts, ssrc = struct.unpack(">BBHII", data[:12])
    assert not b0 & 0x20 and not b0 & 0x10 and not b0 & 0x0F, "padding, extension or CSRCs: not expected"
    return Packet(b0 >> 6, bool(b1 & 0x80), b1 & 0x7F, seq, ts, ssrc, data[12:])


@dataclass
class Capture:
    packets: list[Packet] = field(default_factory=list)
    first_at: float | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    got: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, data: bytes) -> None:
        if self.first_at is None:
            self.first_at = time.monotonic()
        self.packets.append(parse_rtp(data))
        self.got.set()

    @property
    def frames(self) -> int:
        return sum(1 for p in self.packets if p.marker)

    async def wait_frames(self, n: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.frames < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.frames} of {n} RTP frames within {timeout} s")
            self.got.clear()
            try:
                async with asyncio.timeout(left):
                    await self.got.wait()
            except TimeoutError:
                pass

    def ps(self) -> bytes:
        return b"".join(p.payload for p in self.packets)

    def check_headers(self, ssrc: int) -> None:
        """Version 2, PT 96, the INVITE's SSRC, consecutive sequence numbers, one timestamp per frame, rising."""
        assert self.packets
        for n, p in enumerate(self.packets):
            assert (p.version, p.pt, p.ssrc) == (2, 96, ssrc), p
            assert len(p.payload) <= 1400
            if n:
                prev = self.packets[n - 1]
                assert p.seq == (prev.seq + 1) & 0xFFFF, (prev.seq, p.seq)
                if not prev.marker:
                    assert p.ts == prev.ts, "a frame's packets share their timestamp"
                else:
                    assert (p.ts - prev.ts) & 0xFFFFFFFF < 1 << 31, "timestamps rise"
        assert self.packets[-1].marker or len(self.packets) > 1


class UdpReceiver(asyncio.DatagramProtocol):
    def __init__(self, capture: Capture) -> None:
        self.capture = capture

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.capture.add(data)


async def udp_receiver(capture: Capture, port: int = 0) -> tuple[asyncio.DatagramTransport, int]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: UdpReceiver(capture), local_addr=("127.0.0.1", port))
    return transport, transport.get_extra_info("sockname")[1]


async def read_rfc4571(reader: asyncio.StreamReader, capture: Capture) -> None:
    try:
        while True:
            head = await reader.readexactly(2)
            (length,) = struct.unpack(">H", head)
            capture.add(await reader.readexactly(length))
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        capture.closed.set()


async def tcp_listener(capture: Capture, port: int = 0) -> tuple[asyncio.Server, int]:
    """The platform's side of tcp-active: it listens, the hub connects."""
    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_rfc4571(reader, capture)
        writer.close()

    server = await asyncio.start_server(on_conn, "127.0.0.1", port)
    return server, server.sockets[0].getsockname()[1]


async def tcp_connect(port: int, capture: Capture) -> asyncio.StreamWriter:
    """The platform's side of tcp-passive: the hub listens, it connects."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    asyncio.get_running_loop().create_task(read_rfc4571(reader, capture))
    return writer


def probe(ps: bytes, path: Path) -> dict[str, object]:
    """ffprobe's view of the PS: codec and the number of frames it decoded."""
    path.write_bytes(ps)
    exe = shutil.which("ffprobe") or "/usr/bin/ffprobe"
    out = subprocess.run([exe, "-v", "error", "-f", "mpeg", "-count_frames", "-select_streams", "v:0",
                          "-show_entries", "stream=codec_name,nb_read_frames,width,height", "-of", "json", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    streams = json.loads(out.stdout)["streams"]
    assert streams, f"ffprobe found no video stream in {path}"
    return {**streams[0], "errors": out.stderr}
