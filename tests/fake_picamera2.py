"""A stand-in for picamera2 (tests only): the camera is the hardware we fake, nothing else.

picamera2 runs only on a Pi (it needs libcamera), so the live view's hardware path is tested
against this subset of its API, with the real signatures of picamera2 0.3.38:
``Picamera2`` (create_video_configuration / configure / start / stop / close / capture_array,
``pre_callback``, ``start_encoder(encoder, output, pts, quality, name)`` / ``stop_encoder``,
``camera_config``), ``MappedArray(request, stream)``, ``encoders.H264Encoder(bitrate, repeat,
iperiod, framerate, enable_sps_framerate, qp, profile)`` with ``frame_skip_count`` and
``force_key_frame()``, and ``outputs.Output`` (``outputframe(frame, keyframe, timestamp, packet,
audio)``). Like picamera2, its camera thread runs ``pre_callback`` on each request's buffer in
place, then hands the request to every running encoder; the encoder makes REAL H.264 (PyAV's
libx264, as picamera2's own ``LibavH264Encoder`` does on a Pi 5) and calls
``output.outputframe(bytes, keyframe, timestamp_us)`` from that thread. ``install(monkeypatch)``
puts it in ``sys.modules`` for one test.
"""

from __future__ import annotations

import sys
import threading
import time
import types
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import av
import numpy as np


class Output:
    """picamera2.outputs.Output: ``recording`` between start() and stop(); outputframe() does nothing."""

    def __init__(self, pts: Any = None) -> None:
        self.recording = False
        self.ptsoutput = pts
        self.needs_pacing = False
        self.needs_add_stream = False

    def start(self) -> None:
        self.recording = True

    def stop(self) -> None:
        self.recording = False

    def outputframe(self, frame: Any, keyframe: bool = True, timestamp: int | None = None, packet: Any = None,
                    audio: bool = False) -> None:
        pass

    def _add_stream(self, encoder_stream: Any, *args: Any, **kwargs: Any) -> None:
        pass


class _Request:
    """A completed request: the ``main`` buffer (written in place by pre_callback) and its sensor time."""

    def __init__(self, picam2: Picamera2, buffer: np.ndarray, timestamp_ns: int) -> None:
        self.picam2 = picam2
        self.config = picam2.camera_config
        self.buffers = {"main": buffer}
        self.timestamp_ns = timestamp_ns


class MappedArray:
    """picamera2.MappedArray(request, stream, reshape=True, write=True): the stream's buffer, no copy."""

    def __init__(self, request: _Request, stream: str, reshape: bool = True, write: bool = True) -> None:
        self._request, self._stream, self._write = request, stream, write
        self.array: np.ndarray | None = None

    def __enter__(self) -> MappedArray:
        self.array = self._request.buffers[self._stream]
        if not self._write:
            self.array = self.array.view()
            self.array.flags.writeable = False
        return self

    def __exit__(self, *exc: Any) -> None:
        self.array = None


class Encoder:
    """picamera2.encoders.Encoder: outputs, frame skipping, start()/stop() that refuse twice."""

    def __init__(self) -> None:
        self._output: list[Output] = []
        self.name = "main"
        self.width = self.height = self.stride = 0
        self.format = "RGB888"
        self.framerate: float | None = None
        self.frame_skip_count = 1
        self._skip_count = 0
        self.frames_encoded = 0
        self.firsttimestamp: int | None = None
        self._running = False
        self._lock = threading.Lock()
        self._key_frames_requested = self._key_frames_generated = 0

    @property
    def running(self) -> bool:
        return self._running

    @property
    def output(self) -> Any:
        return self._output[0] if len(self._output) == 1 else self._output

    @output.setter
    def output(self, value: Any) -> None:
        self._output = list(value) if isinstance(value, list) else [value]

    def encode(self, stream: str, request: _Request) -> None:
        if self._skip_count == 0:
            with self._lock:
                if not self._running:
                    return
                self._encode(stream, request)
        self._skip_count = (self._skip_count + 1) % self.frame_skip_count
        self.frames_encoded += 1

    def start(self, quality: Any = None) -> None:
        with self._lock:
            if self._running:
                raise RuntimeError("Encoder already running")
            self.frames_encoded = 0
            self._running = True
            self.firsttimestamp = None
            for out in self._output:
                out.start()
            self._start()

    def stop(self) -> None:
        with self._lock:
            if not self._running:
                raise RuntimeError("Encoder already stopped")
            self._running = False
            self._stop()
            for out in self._output:
                out.stop()

    def outputframe(self, frame: Any, keyframe: bool = True, timestamp: int | None = None, packet: Any = None,
                    audio: bool = False) -> None:
        for out in self._output:
            out.outputframe(frame, keyframe, timestamp, packet, audio)

    def _timestamp(self, request: _Request) -> int:
        ts = request.timestamp_ns // 1000
        if self.firsttimestamp is None:
            self.firsttimestamp = ts
        return ts - self.firsttimestamp

    def _start(self) -> None: ...

    def _stop(self) -> None: ...

    def _encode(self, stream: str, request: _Request) -> None: ...


class H264Encoder(Encoder):
    """picamera2.encoders.H264Encoder's signature; real H.264 from libx264 (like LibavH264Encoder)."""

    instances: list[H264Encoder] = []

    def __init__(self, bitrate: int | None = None, repeat: bool = True, iperiod: int | None = None,
                 framerate: float | None = None, enable_sps_framerate: bool = False, qp: int | None = None,
                 profile: str | None = None) -> None:
        super().__init__()
        self.bitrate, self.repeat, self.iperiod, self.qp, self.profile = bitrate, repeat, iperiod, qp, profile
        self.framerate = framerate
        self.keyframes = 0
        self._codec: av.CodecContext | None = None
        H264Encoder.instances.append(self)

    def force_key_frame(self) -> None:
        self._key_frames_requested += 1

    def _start(self) -> None:
        if self.profile is not None and self.profile.lower() not in ("baseline", "constrained baseline", "main",
                                                                     "high"):
            raise RuntimeError("Profile " + self.profile + " not recognised")
        codec = av.CodecContext.create("libx264", "w")
        codec.width, codec.height, codec.pix_fmt = self.width, self.height, "yuv420p"
        codec.time_base = Fraction(1, 1_000_000)
        codec.framerate = Fraction(round((self.framerate or 30) * 1000), 1000)
        if self.bitrate:
            codec.bit_rate = self.bitrate
        codec.gop_size = self.iperiod or (1 << 31) - 1
        if not self.repeat:  # as LibavH264Encoder: global headers means SPS/PPS only once, at the start
            codec.flags |= av.codec.context.Flags.GLOBAL_HEADER
        codec.options = {"preset": "ultrafast", "tune": "zerolatency", "threads": "1",
                         "profile": (self.profile or "high").split()[-1]}
        self._codec = codec

    def _encode(self, stream: str, request: _Request) -> None:
        assert self._codec is not None
        timestamp_us = self._timestamp(request)
        with MappedArray(request, stream, write=False) as m:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(m.array), format="bgr24")  # RGB888 is BGR
        frame = frame.reformat(format="yuv420p")
        frame.pts = timestamp_us
        if self._key_frames_requested > self._key_frames_generated:
            self._key_frames_generated += 1
            frame.pict_type = av.video.frame.PictureType.I
        for packet in self._codec.encode(frame):
            self.keyframes += bool(packet.is_keyframe)
            self.outputframe(bytes(packet), packet.is_keyframe, timestamp=packet.pts)

    def _stop(self) -> None:
        assert self._codec is not None
        for packet in self._codec.encode(None):
            self.outputframe(bytes(packet), packet.is_keyframe, timestamp=packet.pts)
        self._codec = None


class Picamera2:
    """One fake CSI camera: a thread makes a frame every FrameDurationLimits, pre_callback, then encoders."""

    scene: Callable[[int, int, int], np.ndarray] | None = None  # (index, width, height) -> BGR; set by tests
    instances: list[Picamera2] = []

    def __init__(self, camera_num: int = 0) -> None:
        self.camera_config: dict[str, Any] = {}
        self.pre_callback: Callable[[_Request], None] | None = None
        self.started = False
        self.closed = False
        self.frames = 0
        self.lock = threading.Lock()
        self._encoders: set[Encoder] = set()
        self._latest: np.ndarray | None = None
        self._new_frame = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        Picamera2.instances.append(self)

    def create_video_configuration(self, main: dict[str, Any] | None = None, lores: Any = None, raw: Any = None,
                                   transform: Any = None, colour_space: Any = None, buffer_count: int = 6,
                                   controls: dict[str, Any] | None = None, display: str = "main",
                                   encode: str = "main", **kwargs: Any) -> dict[str, Any]:
        main = {"format": "XBGR8888", "size": (1280, 720), **(main or {})}
        return {"use_case": "video", "main": main, "lores": lores, "encode": encode, "buffer_count": buffer_count,
                "controls": {"FrameDurationLimits": (33333, 33333), **(controls or {})}}

    def configure(self, camera_config: dict[str, Any]) -> None:
        cfg = dict(camera_config)
        width, height = cfg["main"]["size"]
        cfg["main"] = {**cfg["main"], "stride": width * 3, "framesize": width * height * 3}
        self.camera_config = cfg

    @property
    def encoders(self) -> set[Encoder]:
        return self._encoders

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="fake-libcamera", daemon=True)
        self._thread.start()
        self.started = True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.started = False

    def close(self) -> None:
        self.closed = True

    def _frame(self, index: int, width: int, height: int) -> np.ndarray:
        if Picamera2.scene is not None:
            return np.array(Picamera2.scene(index, width, height), dtype=np.uint8, copy=True)
        frame = np.zeros((height, width, 3), np.uint8)
        frame[:, :] = (index * 7) % 256
        return frame

    def _run(self) -> None:
        width, height = self.camera_config["main"]["size"]
        period = self.camera_config["controls"]["FrameDurationLimits"][0] / 1e6
        index = 0
        while not self._stop.is_set():
            started = time.monotonic()
            request = _Request(self, self._frame(index, width, height), time.monotonic_ns())
            if self.pre_callback is not None:
                self.pre_callback(request)
            with self.lock:
                encoders = list(self._encoders)
            for encoder in encoders:
                encoder.encode(encoder.name, request)
            with self._new_frame:
                self._latest = request.buffers["main"].copy()
                self.frames += 1
                self._new_frame.notify_all()
            index += 1
            self._stop.wait(max(0.0, period - (time.monotonic() - started)))

    def capture_array(self, name: str = "main", wait: Any = None) -> np.ndarray:
        with self._new_frame:
            seen = self.frames
            if not self._new_frame.wait_for(lambda: self.frames > seen or self._stop.is_set(), timeout=2):
                raise RuntimeError("camera frontend has timed out")
            if self._latest is None:
                raise RuntimeError("camera is not running")
            return self._latest.copy()

    def start_encoder(self, encoder: Encoder | None = None, output: Any = None, pts: Any = None, quality: Any = None,
                      name: str | None = None) -> None:
        if encoder is None:
            raise RuntimeError("No encoder specified")
        if output is not None:
            encoder.output = output
        if not self.camera_config:
            raise RuntimeError("Camera has not been configured")
        name = name or self.camera_config["encode"]
        if self.camera_config.get(name) is None:
            raise RuntimeError(f"Encode stream {name} was not defined")
        encoder.name = name
        encoder.width, encoder.height = self.camera_config[name]["size"]
        encoder.format = self.camera_config[name]["format"]
        encoder.stride = self.camera_config[name]["stride"]
        if encoder.framerate is None:
            encoder.framerate = 30.0
        encoder.start(quality=quality)
        with self.lock:
            self._encoders.add(encoder)

    def stop_encoder(self, encoders: Any = None) -> None:
        if encoders is None:
            remove = list(self._encoders)
        elif isinstance(encoders, Encoder):
            remove = [encoders]
        else:
            remove = list(encoders)
        for encoder in remove:
            encoder.stop()
        with self.lock:
            for encoder in remove:
                self._encoders.remove(encoder)


def install(monkeypatch: Any) -> types.ModuleType:
    """Put this fake in ``sys.modules`` as ``picamera2`` (with ``.encoders`` and ``.outputs``) for one test."""
    package = types.ModuleType("picamera2")
    encoders = types.ModuleType("picamera2.encoders")
    outputs = types.ModuleType("picamera2.outputs")
    package.Picamera2, package.MappedArray = Picamera2, MappedArray  # type: ignore[attr-defined]
    encoders.Encoder, encoders.H264Encoder = Encoder, H264Encoder  # type: ignore[attr-defined]
    outputs.Output = Output  # type: ignore[attr-defined]
    package.encoders, package.outputs = encoders, outputs  # type: ignore[attr-defined]
    package.__path__ = []  # a package, so `from picamera2.encoders import ...` resolves
    for name, module in (("picamera2", package), ("picamera2.encoders", encoders), ("picamera2.outputs", outputs)):
        monkeypatch.setitem(sys.modules, name, module)
    Picamera2.scene = None
    Picamera2.instances.clear()
    H264Encoder.instances.clear()
    return package
