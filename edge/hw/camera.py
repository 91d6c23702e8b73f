"""The camera seam: every consumer (snapshots, detection, live view) reads frames through it.

picamera2 runs only on a Pi and has no mock, so the node talks to a small ``Camera`` protocol;
off the Pi a synthetic or file camera stands in. Privacy masks (the vision issue) belong here,
before any consumer sees a frame.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from edge.errors import HardwareError
from edge.protocol import MAX_SNAPSHOT_BYTES

_VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".mjpeg", ".mjpg"}


class Camera(Protocol):
    def read(self) -> np.ndarray | None:
        """The newest frame (BGR, HxWx3 uint8), or None when the feed is lost."""

    def close(self) -> None: ...


class SyntheticCamera:
    """A street scene drawn in software: moving figure, the node's name and the time."""

    def __init__(self, width: int = 640, height: int = 480, label: str = "pingan") -> None:
        self.width, self.height, self.label = width, height, label
        gradient = np.linspace(40, 120, height, dtype=np.uint8)[:, None]
        self._background = np.repeat(np.repeat(gradient, width, axis=1)[:, :, None], 3, axis=2)
        self._frames = 0
        self.broken = False  # tests flip this to simulate a lost feed

    def read(self) -> np.ndarray | None:
        if self.broken:
            return None
        self._frames += 1
        frame = self._background.copy()
        x = int((time.monotonic() * 60) % max(1, self.width - 40))
        y = self.height // 2
        cv2.rectangle(frame, (x, y - 60), (x + 30, y + 60), (30, 30, 160), -1)
        cv2.circle(frame, (x + 15, y - 80), 18, (60, 80, 200), -1)
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        cv2.putText(frame, f"{self.label}  {stamp}", (10, self.height - 12),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
        return frame

    def close(self) -> None:
        pass


class FileCamera:
    """Frames from an image (repeated) or a video file (looped), for tests and rehearsals."""

    def __init__(self, path: str | Path, width: int | None = None, height: int | None = None) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise HardwareError(f"camera file {self.path} does not exist")
        self._size = (width, height) if width and height else None
        self._lock = threading.Lock()
        self._image: np.ndarray | None = None
        self._video: cv2.VideoCapture | None = None
        if self.path.suffix.lower() in _VIDEO_SUFFIXES:
            self._video = cv2.VideoCapture(str(self.path))
            if not self._video.isOpened():
                raise HardwareError(f"cannot open video {self.path}: not a format OpenCV reads")
        else:
            image = cv2.imread(str(self.path), cv2.IMREAD_COLOR)
            if image is None:
                raise HardwareError(f"cannot read image {self.path}: not a format OpenCV reads")
            self._image = image

    def _resize(self, frame: np.ndarray) -> np.ndarray:
        if self._size and (frame.shape[1], frame.shape[0]) != self._size:
            return cv2.resize(frame, self._size, interpolation=cv2.INTER_AREA)
        return frame

    def read(self) -> np.ndarray | None:
        with self._lock:
            if self._image is not None:
                return self._resize(self._image.copy())
            assert self._video is not None
            ok, frame = self._video.read()
            if not ok:  # loop the recording
                self._video.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, frame = self._video.read()
            return self._resize(frame) if ok else None

    def close(self) -> None:
        if self._video is not None:
            self._video.release()


def open_camera(source: str, width: int, height: int, label: str) -> Camera:
    if source == "synthetic":
        return SyntheticCamera(width, height, label)
    return FileCamera(source, width, height)


def encode_jpeg(frame: np.ndarray, quality: int = 80, limit: int = MAX_SNAPSHOT_BYTES) -> bytes:
    """JPEG-encode a frame, lowering quality (then size) until it fits the contract's limit."""
    q = quality
    img = frame
    while True:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])
        if not ok:
            raise HardwareError("JPEG encoding failed")
        if buf.nbytes <= limit:
            return buf.tobytes()
        if q > 30:
            q -= 15
        else:
            img = cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA)
