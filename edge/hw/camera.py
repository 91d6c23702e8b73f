"""The camera seam: every consumer (snapshots, detection, live view) reads frames through it.

picamera2 runs only on a Pi and has no mock, so the node talks to a small ``Camera`` protocol;
off the Pi a synthetic or file camera stands in. Privacy masks (the vision issue) belong here,
before any consumer sees a frame: ``MaskedCamera`` wraps any camera and blanks its mask
polygons in ``read()``; ``Picamera2Camera`` blanks them in picamera2's ``pre_callback``, so its
encoders never see the masked pixels either.

Sources (``open_camera``): ``synthetic``, an image or video file, ``/dev/videoN`` or a device
index, an ``rtsp://`` / ``http://`` URL (``OpenCVCamera``, which reconnects with backoff and
returns None while the stream is down) and ``picamera2``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from edge.errors import HardwareError
from edge.protocol import MAX_SNAPSHOT_BYTES

_VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".mjpeg", ".mjpg"}
_URL_SCHEMES = ("rtsp", "rtsps", "http", "https")
log = logging.getLogger(__name__)
Polygon = Sequence[tuple[float, float]]


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


def polygon_to_pixels(points: Polygon, width: int, height: int) -> np.ndarray:
    """A polygon as int32 pixel corners [N, 2]; when every coordinate lies within 0..1 the
    points are fractions of the frame's width and height (zones and masks share this rule)."""
    arr = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if arr.size and float(arr.max()) <= 1.0:
        arr = arr * np.array([width, height], dtype=np.float64)
    return np.round(arr).astype(np.int32)


class PrivacyMask:
    """Polygons filled black in place; the pixel polygons are cached per frame size."""

    def __init__(self, polygons: Sequence[Polygon]) -> None:
        self.polygons = [list(p) for p in polygons]
        self._size: tuple[int, int] = (0, 0)
        self._pixels: list[np.ndarray] = []

    def __bool__(self) -> bool:
        return bool(self.polygons)

    def apply(self, frame: np.ndarray) -> np.ndarray:
        """Blank the polygons in ``frame`` (modified in place and returned)."""
        if not self.polygons:
            return frame
        h, w = frame.shape[:2]
        if self._size != (w, h):
            self._pixels = [polygon_to_pixels(p, w, h).reshape(-1, 1, 2) for p in self.polygons]
            self._size = (w, h)
        cv2.fillPoly(frame, self._pixels, (0,) * (1 if frame.ndim == 2 else frame.shape[2]))
        return frame


def _mask_points(mask: Any) -> Polygon:
    """Accept a polygon or anything with ``.points`` (``MaskSettings``)."""
    return list(getattr(mask, "points", mask))


class MaskedCamera:
    """Any camera with privacy masks blanked in every frame before ``read()`` returns it."""

    def __init__(self, camera: Camera, masks: Sequence[Any]) -> None:
        self.camera = camera
        self.mask = PrivacyMask([_mask_points(m) for m in masks])

    def read(self) -> np.ndarray | None:
        frame = self.camera.read()
        if frame is None:
            return None
        if not frame.flags.writeable or not frame.flags.c_contiguous:
            frame = np.ascontiguousarray(frame).copy()
        return self.mask.apply(frame)

    def close(self) -> None:
        self.camera.close()

    def __getattr__(self, name: str) -> Any:  # .broken, .attempts, ... of the wrapped camera
        return getattr(self.camera, name)

    def __repr__(self) -> str:
        return f"<MaskedCamera {len(self.mask.polygons)} mask(s) over {self.camera!r}>"


def redact_url(url: str) -> str:
    """The URL with its password replaced, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


class OpenCVCamera:
    """A V4L2 device, a video file or an RTSP/HTTP stream through OpenCV (FFmpeg).

    A live source that cannot be opened or stops delivering is not an exception: ``read()``
    returns None (the agent reports ``tamper.camera`` feed_lost) and the next ``read()`` after
    a backoff (1, 2, 4 ... ``max_backoff_s`` seconds, on the injected ``clock``) tries to
    reconnect. Only what can never work raises ``HardwareError`` at once: a malformed URL, an
    unsupported scheme, a file that does not exist or that OpenCV cannot decode. ``attempts``
    counts connection attempts, ``connected`` and ``last_error`` show the state.
    """

    def __init__(
        self,
        source: str | int,
        width: int | None = None,
        height: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        open_timeout_s: float = 10.0,
        read_timeout_s: float = 5.0,
    ) -> None:
        self.source, self.kind = self._parse(source)
        self.name = redact_url(self.source) if isinstance(self.source, str) else f"/dev/video{self.source}"
        self._size = (width, height) if width and height else None
        self._clock = clock
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
        self._timeouts = (int(open_timeout_s * 1000), int(read_timeout_s * 1000))
        self._lock = threading.Lock()
        self._cap: cv2.VideoCapture | None = None
        self._failures = 0
        self._next_try = 0.0
        self.attempts = 0
        self.last_error = ""
        if not self._connect() and self.kind == "file":
            raise HardwareError(f"cannot open video {self.name}: {self.last_error}")

    @staticmethod
    def _parse(source: str | int) -> tuple[str | int, str]:
        if isinstance(source, int):
            return source, "device"
        text = source.strip()
        if text.isdigit():
            return int(text), "device"
        if text.startswith("/dev/video"):
            suffix = text.removeprefix("/dev/video")
            if not suffix.isdigit():
                raise HardwareError(f"camera device {text!r} is not /dev/videoN")
            return int(suffix), "device"
        if "://" in text:
            try:
                parts = urlsplit(text)
                parts.port  # noqa: B018 - raises ValueError for a bad port
            except ValueError as exc:
                raise HardwareError(f"camera URL {redact_url(text)!r} is malformed: {exc}") from None
            if parts.scheme.lower() not in _URL_SCHEMES:
                raise HardwareError(
                    f"camera URL {redact_url(text)!r}: scheme {parts.scheme!r} is not supported; "
                    f"use {', '.join(s + '://' for s in _URL_SCHEMES)}"
                )
            if not parts.hostname:
                raise HardwareError(f"camera URL {redact_url(text)!r} has no host (e.g. rtsp://192.168.1.20/stream1)")
            return text, "url"
        if not Path(text).exists():
            raise HardwareError(f"camera file {text} does not exist")
        return text, "file"

    @property
    def connected(self) -> bool:
        return self._cap is not None

    def _connect(self) -> bool:
        self.attempts += 1
        open_ms, read_ms = self._timeouts
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, open_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, read_ms]
        cap: cv2.VideoCapture | None = None
        try:
            if self.kind == "url":
                cap = cv2.VideoCapture(self.source, cv2.CAP_FFMPEG, params)
            else:
                cap = cv2.VideoCapture(self.source, cv2.CAP_ANY, params)
            ok = cap.isOpened()
        except cv2.error as exc:
            ok, self.last_error = False, str(exc).strip()
        if not ok:
            if cap is not None:
                cap.release()
            self._fail(self.last_error or "OpenCV could not open it (wrong address, offline, or not a video)")
            return False
        self._cap = cap
        log.info("camera %s connected (attempt %d)", self.name, self.attempts)
        return True

    def _fail(self, why: str) -> None:
        self.last_error = why
        self._failures += 1
        delay = min(self.max_backoff_s, self.backoff_s * 2 ** (self._failures - 1))
        self._next_try = self._clock() + delay
        log.warning("camera %s: %s; retrying in %.0f s", self.name, why, delay)

    def read(self) -> np.ndarray | None:
        with self._lock:
            if self._cap is None:
                if self._clock() < self._next_try or not self._connect():
                    return None
            assert self._cap is not None
            try:
                ok, frame = self._cap.read()
            except cv2.error as exc:
                ok, frame = False, None
                self.last_error = str(exc).strip()
            if not ok or frame is None:
                self._cap.release()
                self._cap = None
                self._fail("the stream stopped delivering frames")
                return None
            self._failures = 0
            if self._size and (frame.shape[1], frame.shape[0]) != self._size:
                frame = cv2.resize(frame, self._size, interpolation=cv2.INTER_AREA)
            return frame

    def close(self) -> None:
        with self._lock:
            if self._cap is not None:
                self._cap.release()
                self._cap = None

    def __repr__(self) -> str:
        state = "connected" if self.connected else f"down ({self.last_error})"
        return f"<OpenCVCamera {self.name} {state} attempts={self.attempts}>"


PICAMERA2_HINT = (
    "picamera2 comes with Raspberry Pi OS, not from PyPI: run `sudo apt install python3-picamera2` "
    "and create the node's venv with `python3 -m venv --system-site-packages` so it can import it"
)


class Picamera2Camera:
    """A Pi's CSI camera through picamera2 (Pi only; imported when opened).

    Masks are blanked in picamera2's ``pre_callback``, i.e. in the request's buffer before
    any encoder or preview sees it, and frames come out as BGR (picamera2's ``RGB888``).
    """

    def __init__(self, width: int = 640, height: int = 480, masks: Sequence[Any] | None = None) -> None:
        try:
            from picamera2 import MappedArray, Picamera2  # type: ignore[import-not-found]
        except ImportError as exc:  # picamera2 itself, or libcamera under it
            raise HardwareError(f"cannot use the picamera2 camera ({exc}): {PICAMERA2_HINT}") from None
        self.mask = PrivacyMask([_mask_points(m) for m in masks or ()])
        self.width, self.height = width, height
        try:
            self._cam = Picamera2()
        except (IndexError, RuntimeError) as exc:
            raise HardwareError(
                f"no camera found by libcamera ({exc}): check the ribbon cable and `rpicam-hello --list-cameras`"
            ) from None
        config = self._cam.create_video_configuration(main={"size": (width, height), "format": "RGB888"})
        self._cam.configure(config)
        if self.mask:

            def blank(request: Any) -> None:
                with MappedArray(request, "main") as m:
                    self.mask.apply(m.array)

            self._cam.pre_callback = blank
        self._cam.start()

    def read(self) -> np.ndarray | None:
        try:
            return self._cam.capture_array("main")
        except Exception as exc:  # libcamera errors are untyped; a lost camera is feed_lost, not a crash
            log.warning("picamera2 read failed: %s", exc)
            return None

    @property
    def frame_rate(self) -> float:
        """The rate picamera2 delivers ``main`` at: its video configuration's frame duration, at most 30 fps
        (the peg picamera2's own ``start_encoder`` uses)."""
        limits = (self._cam.camera_config or {}).get("controls", {}).get("FrameDurationLimits")
        return 1_000_000 / max(limits[0], 33_333) if limits else 30.0

    def start_encoder(self, encoder: Any, output: Any) -> None:
        """Run one of picamera2's encoders on ``main`` (masked by ``pre_callback``) while the camera runs on."""
        self._cam.start_encoder(encoder, output, name="main")

    def stop_encoder(self, encoder: Any) -> None:
        self._cam.stop_encoder(encoder)

    def close(self) -> None:
        self._cam.stop()
        self._cam.close()


def open_camera(
    source: str | int,
    width: int,
    height: int,
    label: str,
    masks: Sequence[Sequence[tuple[float, float]]] | None = None,
) -> Camera:
    """The camera a config's ``source`` names, with privacy ``masks`` applied in ``read()``.

    ``synthetic``; ``picamera2`` (a Pi's CSI camera); ``/dev/videoN`` or an integer index (V4L2);
    ``rtsp://``, ``rtsps://``, ``http://``, ``https://`` URLs (IP cameras, reconnecting); any
    other string is an image or video file.
    """
    cam: Camera
    text = str(source).strip()
    if text == "synthetic":
        cam = SyntheticCamera(width, height, label)
    elif text == "picamera2":
        cam = Picamera2Camera(width, height, masks=masks)
        return cam  # masks applied in picamera2's pre_callback, before its encoders
    elif isinstance(source, int) or text.isdigit() or text.startswith("/dev/video") or "://" in text:
        cam = OpenCVCamera(source, width, height)
    else:
        cam = FileCamera(text, width, height)
    return MaskedCamera(cam, masks) if masks else cam


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
