"""One pole's video for the city: ONE live session with the pole, shared by every city session of that pole.

The same shape as the console's MJPEG relay (hub/live/video/mjpeg.py): the hub is a viewer of the pole over its
own WebRTC live path (signed ``live.start``, audited in ``live_sessions`` as kind ``gb28181``), so the node
still encodes once whoever watches. Unlike the relay it does not decode: the node's H.264 access units are
tapped as they arrive (tap.py), muxed into MPEG-PS once per pole (ps.py), and every city session only numbers
them into its own RTP packets.

The last GOP (from the newest IDR on) is kept, so a second city session starts at once with a picture it can
decode instead of waiting up to a keyframe interval (what media servers call a GOP cache). The source ends when
the pole's live session ends (the node said it is gone, max session time, node silent), when no video came for
``stall_s``, or when its last city session stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hub.gb28181.media.ps import PsMuxer
from hub.gb28181.media.tap import nal_types, split_nals, tap_encoded_video
from hub.live.video.service import LiveService, NodeUnavailable

if TYPE_CHECKING:
    from hub.live.video.viewer import Viewer

log = logging.getLogger(__name__)
USERNAME = "gb28181"  # who the pole's live session is audited as (live_sessions.username)
KIND = "gb28181"
GOP_MAX_FRAMES = 300  # a keyframe interval of up to 20 s at 15 fps
GOP_MAX_BYTES = 8 << 20  # past this the cache waits for the next IDR (a new session then waits for it too)
KEEPALIVE_EVERY_S = 1.0


@dataclass(frozen=True)
class PsFrame:
    pts: int  # 90 kHz
    data: bytes  # one PS pack
    keyframe: bool


FrameSink = Callable[[PsFrame], None]


class PoleSource:
    def __init__(self, live: LiveService, node: str, *, stall_s: float = 10.0,
                 on_end: Callable[[PoleSource, str], None] | None = None) -> None:
        self.live, self.node, self.stall_s, self.on_end = live, node, stall_s, on_end
        self.muxer = PsMuxer()
        self.session: str | None = None
        self.subscribers: dict[object, FrameSink] = {}
        self.gop: list[PsFrame] = []
        self._gop_bytes = 0
        self._gop_open = False  # the cache holds a run from an IDR on
        self._param_sets: list[bytes] = []  # the newest SPS and PPS, for an IDR that comes without them
        self.frames = 0
        self.last_frame_at = 0.0
        self._last_keepalive = 0.0
        self.closed = False
        self.end_reason = ""
        self._watch: asyncio.Task[None] | None = None
        self.viewer: Viewer | None = None

    async def start(self) -> None:
        """Open the pole's live session (raises NotFound / NodeUnavailable as LiveService does)."""
        from hub.live.video.viewer import Viewer  # aiortc: loaded on the first city INVITE, not at hub start

        viewer = Viewer()
        self.viewer = viewer
        try:
            offer = await viewer.offer()
            tap_encoded_video(viewer.pc, self._on_encoded)
            answer = await self.live.start(self.node, USERNAME, offer, kind=KIND)
            self.session = answer["session"]
            await viewer.accept(answer["sdp"])
        except BaseException:
            await self.close("start failed")
            raise
        self.last_frame_at = time.monotonic()
        self._watch = asyncio.create_task(self._watchdog(), name=f"gb28181-source-{self.node}")

    # --- frames (on the event loop: the receiver's RTP handler calls the tap) -------------------
    def _on_encoded(self, codec: str, access_unit: bytes, ts: int) -> None:
        if self.closed:
            return
        if codec.upper() != "H264":
            self._end(f"the pole sends {codec}, not H.264")
            return
        types = nal_types(access_unit)
        keyframe = 5 in types
        if 7 in types and 8 in types:
            self._param_sets = [n for n in split_nals(access_unit) if n[0] & 0x1F in (7, 8)]
        elif keyframe and self._param_sets:  # an IDR without SPS/PPS: a platform joining here needs them
            access_unit = b"".join(b"\x00\x00\x00\x01" + n for n in self._param_sets) + access_unit
        frame = PsFrame(ts, self.muxer.frame(access_unit, ts, keyframe), keyframe)
        self.frames += 1
        now = self.last_frame_at = time.monotonic()
        self._cache(frame)
        if now - self._last_keepalive >= KEEPALIVE_EVERY_S:  # our frames are this session's keep-alive
            self._last_keepalive = now
            session = self.live.open.get(self.session or "")
            if session is not None:
                session.last_seen = now
        for sink in list(self.subscribers.values()):
            try:
                sink(frame)
            except Exception:  # noqa: BLE001 - one city session's failure never stops the others
                log.exception("GB/T 28181 sink for %s failed", self.node)

    def _cache(self, frame: PsFrame) -> None:
        if frame.keyframe:
            self.gop, self._gop_bytes, self._gop_open = [], 0, True
        if not self._gop_open:
            return
        if len(self.gop) >= GOP_MAX_FRAMES or self._gop_bytes + len(frame.data) > GOP_MAX_BYTES:
            self.gop, self._gop_bytes, self._gop_open = [], 0, False
            return
        self.gop.append(frame)
        self._gop_bytes += len(frame.data)

    def subscribe(self, key: object, sink: FrameSink) -> None:
        """Feed ``sink`` from now on, starting with the cached GOP (so it begins at a keyframe)."""
        for frame in list(self.gop):
            sink(frame)
        self.subscribers[key] = sink

    def unsubscribe(self, key: object) -> None:
        self.subscribers.pop(key, None)

    # --- the end ------------------------------------------------------------------------------
    async def _watchdog(self) -> None:
        while not self.closed:
            await asyncio.sleep(0.5)
            if self.session is not None and self.session not in self.live.open:
                reason = await asyncio.to_thread(self.live._end_reason, self.session)
                self._end(f"the pole's live session ended ({reason or 'unknown'})")
            elif time.monotonic() - self.last_frame_at > self.stall_s:
                self._end(f"no video from the pole for {self.stall_s:g} s")

    def _end(self, reason: str) -> None:
        """The source cannot go on: tell the owner (it stops the city sessions, then closes us)."""
        if self.closed or self.end_reason:
            return
        self.end_reason = reason
        log.info("GB/T 28181 source for %s ends: %s", self.node, reason)
        if self.on_end is not None:
            self.on_end(self, reason)

    async def close(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.subscribers.clear()
        if self._watch is not None and self._watch is not asyncio.current_task():
            self._watch.cancel()
        viewer, self.viewer = self.viewer, None
        if viewer is not None:
            await viewer.close()
        if self.session is not None and self.session in self.live.open:
            with contextlib.suppress(Exception):
                await self.live.stop(self.session, USERNAME, "admin", reason=reason)


__all__ = ["NodeUnavailable", "PoleSource", "PsFrame"]
