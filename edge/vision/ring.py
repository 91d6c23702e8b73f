"""The last few seconds of frames, kept as small JPEGs, for an alarm's pre-press burst.

When someone presses the alarm the console wants to see what happened *before* the press,
not only the snapshot after it. Keeping raw 640x480 frames for 5 s at 15 fps would be 69 MB
on a Pi; a downscaled JPEG at a few frames a second is ~10 KB each, and encoding only the
frames the ring keeps (``fps``) costs about a millisecond apiece. Frames come from the camera
seam, so they are already masked.
"""

from __future__ import annotations

import threading
from collections import deque

import cv2
import numpy as np

from edge.clock import Clock, SystemClock
from edge.hw.camera import encode_jpeg


class FrameRing:
    """``add(frame)`` for every frame read (cheap when skipped); ``burst()`` at a press."""

    def __init__(
        self,
        seconds: float = 5.0,
        *,
        fps: float = 2.0,
        width: int = 320,
        quality: int = 70,
        max_bytes: int = 2 * 1024 * 1024,
        clock: Clock | None = None,
    ) -> None:
        if seconds <= 0 or fps <= 0:
            raise ValueError(f"seconds and fps must be positive, got {seconds} and {fps}")
        self.seconds, self.fps, self.width, self.quality = seconds, fps, width, quality
        self.max_bytes = max_bytes
        self.clock = clock or SystemClock()
        self._frames: deque[tuple[float, bytes]] = deque()
        self._bytes = 0
        self._last: float | None = None
        self._lock = threading.Lock()  # the camera thread adds, the loop reads a burst

    def add(self, frame: np.ndarray | None) -> bool:
        """Keep this frame if one is due (``fps``); returns whether it was kept."""
        if frame is None:
            return False
        now = self.clock.monotonic()
        if self._last is not None and now - self._last < 1.0 / self.fps:
            return False
        h, w = frame.shape[:2]
        if w > self.width:
            frame = cv2.resize(frame, (self.width, max(1, round(h * self.width / w))), interpolation=cv2.INTER_AREA)
        jpeg = encode_jpeg(frame, self.quality)
        with self._lock:
            self._last = now
            self._frames.append((now, jpeg))
            self._bytes += len(jpeg)
            self._prune(now)
        return True

    def burst(self) -> list[bytes]:
        """JPEGs of the last ``seconds``, oldest first (empty when the camera gave nothing lately)."""
        with self._lock:
            self._prune(self.clock.monotonic())
            return [jpeg for _, jpeg in self._frames]

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()
            self._bytes = 0
            self._last = None

    def _prune(self, now: float) -> None:
        while self._frames and (now - self._frames[0][0] > self.seconds or self._bytes > self.max_bytes):
            _, old = self._frames.popleft()
            self._bytes -= len(old)

    def __len__(self) -> int:
        return len(self._frames)

    def __repr__(self) -> str:
        return f"<FrameRing {len(self._frames)} frames {self._bytes} B over {self.seconds} s at {self.fps} fps>"
