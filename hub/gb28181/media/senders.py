"""Send one city session's RTP: over UDP to the platform, over TCP to the platform (active: we connect), or over
TCP from the platform (passive: we listen, it connects).

A slow or dead receiver must never hold up the pole's other sessions, the hub or its alarm path: ``push`` never
blocks. UDP hands each packet to the kernel and drops it if the kernel will not take it (UDP is lossy anyway).
TCP keeps a bounded queue of frames and one writer task; when the queue is full it is emptied and the session
skips to the next keyframe (a frame missing from the middle of a GOP would smear the picture until the next one
anyway); when the connection makes no progress for ``stall_s``, or the peer closes it, the session ends with
that reason. A passive session whose platform never connects ends after ``accept_timeout_s``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import logging
import socket
import time
from collections.abc import Callable

from hub.gb28181.media.rtp import RtpPacketizer, frame_tcp
from hub.gb28181.media.source import PsFrame
from hub.gb28181.media.types import Transport

log = logging.getLogger(__name__)
QUEUE_FRAMES = 90  # about 6 s at 15 fps
CONNECT_TIMEOUT_S = 10.0


class RtpSender:
    """One city session's sending side. ``on_ready`` fires when frames can flow (UDP at once, TCP once
    connected); ``on_end(reason)`` when the session cannot go on."""

    def __init__(self, transport: Transport, *, ssrc: int, dest_host: str, dest_port: int, bind_host: str,
                 on_ready: Callable[[], None], on_end: Callable[[str], None], accept_timeout_s: float = 20.0,
                 stall_s: float = 10.0, queue_frames: int = QUEUE_FRAMES) -> None:
        self.transport = transport
        self.rtp = RtpPacketizer(ssrc)
        self.dest = (dest_host, dest_port)
        self.bind_host = bind_host
        self.on_ready, self.on_end = on_ready, on_end
        self.accept_timeout_s, self.stall_s, self.queue_frames = accept_timeout_s, stall_s, queue_frames
        self.local_port = 0
        self.frames_sent = 0
        self.frames_dropped = 0
        self.first_packet_at: float | None = None
        self._queue: collections.deque[bytes] = collections.deque()
        self._queued = asyncio.Event()
        self._need_key = True  # every stream (and every resumption after a drop) starts at an IDR
        self._udp: socket.socket | None = None
        self._server: asyncio.Server | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.closed = False

    async def open(self) -> int:
        """Bind (and for tcp-passive listen); returns the local port for the SDP answer. Connecting and
        accepting happen in the background."""
        family = socket.AF_INET6 if ":" in self.bind_host else socket.AF_INET
        if self.transport == "udp":
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setblocking(False)
            sock.bind((self.bind_host, 0))
            self._udp = sock
            self.local_port = sock.getsockname()[1]
            asyncio.get_running_loop().call_soon(self._ready)
        elif self.transport == "tcp-active":
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
            sock.bind((self.bind_host, 0))  # bound first, so the SDP answer can name the port before we connect
            self.local_port = sock.getsockname()[1]
            self._spawn(self._connect(sock))
        else:
            self._server = await asyncio.start_server(self._accepted, self.bind_host, 0)
            self.local_port = self._server.sockets[0].getsockname()[1]
            self._spawn(self._accept_deadline())
        return self.local_port

    def _spawn(self, coro: object) -> None:
        self._tasks.append(asyncio.create_task(coro))  # type: ignore[arg-type]

    def _ready(self) -> None:
        if not self.closed:
            self.on_ready()

    def _fail(self, reason: str) -> None:
        if not self.closed:
            self.on_end(reason)

    # --- TCP connection -----------------------------------------------------------------------
    async def _connect(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                await loop.sock_connect(sock, self.dest)
            reader, writer = await asyncio.open_connection(sock=sock)
        except (OSError, TimeoutError) as exc:
            sock.close()
            self._fail(f"could not connect to {self.dest[0]}:{self.dest[1]} over TCP: {exc or 'timed out'}")
            return
        self._connected(reader, writer)

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._writer is not None or self.closed:  # one platform connection per session
            writer.close()
            return
        if self._server is not None:
            self._server.close()  # no second connection; the port is free again once this one ends
        self._connected(reader, writer)

    async def _accept_deadline(self) -> None:
        await asyncio.sleep(self.accept_timeout_s)
        if self._writer is None:
            self._fail(f"the platform did not connect to our TCP port {self.local_port} within "
                       f"{self.accept_timeout_s:g} s (tcp-passive)")

    def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._spawn(self._write_loop(writer))
        self._spawn(self._read_loop(reader))
        self._ready()

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        """Whatever the platform sends (RTCP over the same connection) is read and dropped; EOF ends it."""
        try:
            while await reader.read(65536):
                pass
        except OSError:
            pass
        self._fail("the platform closed the TCP connection")

    async def _write_loop(self, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                while not self._queue:
                    self._queued.clear()
                    await self._queued.wait()
                writer.write(self._queue.popleft())
                async with asyncio.timeout(self.stall_s):  # a receiver that stopped reading
                    await writer.drain()
        except TimeoutError:
            self._fail(f"the platform took no data for {self.stall_s:g} s (receiver stalled)")
        except OSError as exc:
            self._fail(f"the TCP connection failed: {exc}")

    # --- frames -------------------------------------------------------------------------------
    def push(self, frame: PsFrame) -> None:
        """Queue (TCP) or send (UDP) one frame; never blocks."""
        if self.closed:
            return
        if self._need_key and not frame.keyframe:
            self.frames_dropped += 1
            return
        self._need_key = False
        packets = self.rtp.packets(frame.data, frame.pts)
        if self.first_packet_at is None:
            self.first_packet_at = time.monotonic()
        self.frames_sent += 1
        if self._udp is not None:
            for packet in packets:
                try:
                    self._udp.sendto(packet, self.dest)
                except BlockingIOError:
                    self.frames_dropped += 1  # the kernel's buffer is full: UDP drops, as the network would
                    break
                except OSError as exc:
                    if exc.errno not in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH):
                        self._fail(f"UDP send to {self.dest[0]}:{self.dest[1]} failed: {exc}")
                    break  # ICMP unreachable: the platform's port is not open (yet); keep sending
            return
        if len(self._queue) >= self.queue_frames:  # the receiver is behind: skip to the next keyframe
            self.frames_dropped += len(self._queue)
            self._queue.clear()
            if not frame.keyframe:
                self._need_key = True
                self.frames_dropped += 1
                return
        self._queue.append(b"".join(frame_tcp(p) for p in packets))
        self._queued.set()

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        if self._udp is not None:
            self._udp.close()
        if self._server is not None:
            self._server.close()
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await self._writer.wait_closed()
