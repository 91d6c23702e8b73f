"""MJPEG fallback: for clients without WebRTC the hub itself watches the pole over WebRTC (it sits on
the district network with the nodes) and re-serves the decoded frames as multipart/x-mixed-replace.

One hub session per pole, shared by all its MJPEG clients, so the node still encodes once and the
hub decodes once; it ends when the last client disconnects. Frames are re-encoded as JPEG at most
``fps`` times a second, only while someone is reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from hub.live.video.service import LiveService, NodeUnavailable

if TYPE_CHECKING:
    import av

log = logging.getLogger(__name__)
STALL_S = 10.0  # no frame this long: the stream ends (the client may reconnect)
_closing: set[asyncio.Task[None]] = set()


class MjpegRelay:
    def __init__(self, live: LiveService, node: str, fps: float) -> None:
        from hub.live.video.viewer import Viewer  # aiortc: imported when a client first asks, not at hub start

        self.live, self.node, self.fps = live, node, fps
        self.viewer = Viewer(on_frame=self._on_frame)
        self.session: str | None = None
        self.jpeg = b""
        self.seq = 0
        self.clients = 0
        self.closed = False
        self._last = 0.0
        self._changed = asyncio.Condition()

    async def start(self, username: str) -> None:
        try:
            answer = await self.live.start(self.node, username, await self.viewer.offer(), kind="mjpeg")
            self.session = answer["session"]
            await self.viewer.accept(answer["sdp"])
        except BaseException:
            await self.close()
            raise

    def _on_frame(self, frame: av.VideoFrame) -> None:
        now = time.monotonic()
        if now - self._last < 1.0 / self.fps or not self.clients:
            return
        self._last = now
        import cv2  # on the first MJPEG client: OpenCV and numpy cost a hub that never serves MJPEG ~30 MB

        ok, buf = cv2.imencode(".jpg", frame.to_ndarray(format="bgr24"), [cv2.IMWRITE_JPEG_QUALITY, 75])
        if not ok:
            return
        self.jpeg, self.seq = buf.tobytes(), self.seq + 1
        if self.session in self.live.open:  # while clients read, the hub's own session stays alive
            self.live.open[self.session].last_seen = now
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def stream(self) -> AsyncIterator[bytes]:
        seen = 0
        try:
            while not self.closed:
                async with self._changed:
                    try:
                        async with asyncio.timeout(STALL_S):  # not wait_for: it can drop a cancel (edge/shared/aio.py)
                            await self._changed.wait_for(lambda s=seen: self.seq != s or self.closed)
                    except TimeoutError:
                        log.warning("MJPEG relay for %s: no frame for %.0f s", self.node, STALL_S)
                        return
                if self.closed:
                    return
                seen, jpeg = self.seq, self.jpeg
                yield (b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: " + str(len(jpeg)).encode()
                       + b"\r\n\r\n" + jpeg + b"\r\n")
        finally:
            self.clients -= 1
            if self.clients <= 0:  # a new task: this one is being cancelled (the client went away)
                task = asyncio.get_running_loop().create_task(self.close())
                _closing.add(task)
                task.add_done_callback(_closing.discard)

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        await self._notify()
        await self.viewer.close()
        if self.session is not None and self.session in self.live.open:
            session = self.live.open[self.session]
            with contextlib.suppress(Exception):
                await self.live.stop(self.session, session.username, "admin", reason="mjpeg clients gone")


class MjpegRelays:
    """One relay per pole, made on the first client and dropped after the last."""

    def __init__(self, live: LiveService, fps: float = 5.0) -> None:
        self.live, self.fps = live, fps
        self.relays: dict[str, MjpegRelay] = {}
        self._lock = asyncio.Lock()

    async def open(self, node: str, username: str) -> AsyncIterator[bytes]:
        async with self._lock:
            relay = self.relays.get(node)
            if relay is None or relay.closed:
                relay = MjpegRelay(self.live, node, self.fps)
                await relay.start(username)
                self.relays[node] = relay
            relay.clients += 1
        return relay.stream()

    async def close(self) -> None:
        for relay in list(self.relays.values()):
            await relay.close()


__all__ = ["MjpegRelays", "NodeUnavailable"]
