"""A WebRTC viewer in Python (aiortc): what the hub's MJPEG fallback, the tests and the bench use
where the console uses the browser's own WebRTC.

``offer()`` makes a recv-only video offer (plus a two-way audio line with ``talk``) with its ICE
candidates; ``accept(answer)`` completes it. Decoded frames are counted and the newest kept;
audio from the pole goes to an analyser so its frequency can be measured.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import av
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcconfiguration import RTCIceTransportPolicy

from edge.shared.aio import wait_event
from edge.shared.audio import AnalyserSpeaker, ToneTrack

log = logging.getLogger(__name__)


class Viewer:
    def __init__(self, *, talk: bool = False, tone_hz: float = 660.0, ice_servers: list[dict[str, Any]] | None = None,
                 on_frame: Callable[[av.VideoFrame], None] | None = None, relay_only: bool = False) -> None:
        servers = [RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
                   for s in ice_servers or []]
        policy = RTCIceTransportPolicy.RELAY if relay_only else RTCIceTransportPolicy.ALL  # relay: TURN only
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=servers, iceTransportPolicy=policy))
        self.talk = talk
        self.tone = ToneTrack(tone_hz) if talk else None
        self.heard = AnalyserSpeaker()
        self.frames = 0
        self.latest: av.VideoFrame | None = None
        self.first_frame_at: float | None = None
        self.on_frame = on_frame
        self._got_frame = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._tasks.append(asyncio.create_task(self._consume(track)))

    async def _consume(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                if track.kind == "video":
                    self.latest = frame
                    self.frames += 1
                    if self.first_frame_at is None:
                        self.first_frame_at = time.monotonic()
                    self._got_frame.set()
                    if self.on_frame is not None:
                        self.on_frame(frame)
                else:
                    self.heard.play(frame)
        except MediaStreamError:
            pass

    async def offer(self) -> str:
        self.pc.addTransceiver("video", direction="recvonly")
        if self.tone is not None:
            self.pc.addTrack(self.tone)  # sendrecv audio: our tone out, the pole's microphone in
        await self.pc.setLocalDescription(await self.pc.createOffer())  # waits for ICE gathering
        return self.pc.localDescription.sdp

    async def accept(self, answer_sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))

    async def wait_frames(self, n: int = 1, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.frames < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.frames} of {n} video frames within {timeout} s")
            self._got_frame.clear()
            await wait_event(self._got_frame, left)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.tone is not None:
            self.tone.stop()
        await self.pc.close()
