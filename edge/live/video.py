"""One H.264 encoder per camera, fanned out to every live viewer ("the node encodes once").

aiortc normally encodes per peer connection. Here a track hands aiortc ``av.Packet``s that are
already H.264 (Annex B): ``RTCRtpSender`` then only packetises them (``H264Encoder.pack``), so
ten viewers cost one encoder. Off the Pi the encoder is PyAV's libx264 (ultrafast, zerolatency,
constrained baseline, which every browser decodes); on a Pi with the ``picamera2`` source its
hardware encoder would sit at the same seam (see docs/live-view.md).

Frames come from the camera thread (``CameraWorker.add_listener``), already privacy-masked by
the camera seam. When the node runs detection, the pipeline's latest boxes are drawn on a copy of
the frame before encoding. A new viewer asks for a keyframe and is fed from the next one, so it
never starts on a picture it cannot decode. The encoder thread starts with the first viewer and
stops with the last one: no viewer, no encoding and no fast camera reads.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import av
import cv2
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

log = logging.getLogger(__name__)
VIDEO_CLOCK = 90_000
TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK)
QUEUE_PACKETS = 30  # about 2 s at 15 fps; a viewer further behind than that skips to the next keyframe


class EncoderStats:
    """Counts kept for tests and the bench: how many encoders were ever started, frames encoded."""

    started = 0


class SharedVideoEncoder:
    """Encodes one camera's frames once and gives the packets to every subscribed track."""

    def __init__(self, worker: Any, *, width: int, height: int, fps: float = 15, bitrate_kbps: int = 800,
                 keyframe_s: float = 2.0, overlay: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        self.worker = worker
        self.width, self.height = width - width % 2, height - height % 2
        self.fps = fps
        self.bitrate = bitrate_kbps * 1000
        self.keyframe_s = keyframe_s
        self.overlay = overlay
        self._subscribers: list[EncodedVideoTrack] = []
        self._lock = threading.Lock()
        self._frame_ready = threading.Condition()
        self._pending: np.ndarray | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._force_key = False
        self.frames_encoded = 0
        self.encode_seconds = 0.0

    # --- viewers --------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def viewers(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def track(self) -> EncodedVideoTrack:
        """A new track for one peer connection (subscribed at once; it stops on ``track.stop()``)."""
        track = EncodedVideoTrack(self)
        with self._lock:
            self._subscribers.append(track)
            first = len(self._subscribers) == 1
            self._force_key = True
        if first:
            self._start()
        return track

    def _unsubscribe(self, track: EncodedVideoTrack) -> None:
        with self._lock:
            if track in self._subscribers:
                self._subscribers.remove(track)
            last = not self._subscribers
        if last:
            self._halt()

    # --- the encoder thread ---------------------------------------------------------------------
    def _start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="live-encoder", daemon=True)
        EncoderStats.started += 1
        self._thread.start()
        self.worker.add_listener(self._on_frame, self.fps)
        log.info("live encoder started (%dx%d @ %.0f fps, %d kbit/s)", self.width, self.height, self.fps,
                 self.bitrate // 1000)

    def _halt(self) -> None:
        self.worker.remove_listener(self._on_frame)
        self._stop.set()
        with self._frame_ready:
            self._frame_ready.notify_all()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        log.info("live encoder stopped (no viewers)")

    def _on_frame(self, frame: np.ndarray) -> None:
        """Camera thread: keep only the newest frame (a slow encoder drops frames, never lags)."""
        with self._frame_ready:
            self._pending = frame
            self._frame_ready.notify()

    def _codec(self) -> av.CodecContext:
        codec = av.CodecContext.create("libx264", "w")
        codec.width, codec.height = self.width, self.height
        codec.pix_fmt = "yuv420p"
        codec.framerate = fractions.Fraction(round(self.fps * 1000), 1000)
        codec.time_base = TIME_BASE
        codec.bit_rate = self.bitrate
        codec.gop_size = max(1, round(self.keyframe_s * self.fps))
        codec.options = {"preset": "ultrafast", "tune": "zerolatency", "profile": "baseline", "level": "31",
                         "bframes": "0", "repeat-headers": "1", "threads": "1",
                         "x264-params": f"keyint={codec.gop_size}:min-keyint={codec.gop_size}:scenecut=0"}
        return codec

    def _run(self) -> None:
        codec = self._codec()
        started = time.monotonic()
        last_pts = -1
        try:
            while not self._stop.is_set():
                with self._frame_ready:
                    if self._pending is None:
                        self._frame_ready.wait(timeout=0.5)
                    frame, self._pending = self._pending, None
                if frame is None:
                    continue
                t0 = time.monotonic()
                packets = self._encode(codec, frame, started)
                self.encode_seconds += time.monotonic() - t0
                for packet in packets:
                    if packet.pts is not None and packet.pts <= last_pts:
                        continue
                    last_pts = packet.pts if packet.pts is not None else last_pts
                    self._fan_out(packet)
        except Exception:  # noqa: BLE001 - end the viewers' tracks rather than hang them
            log.exception("live encoder failed")
            with self._lock:
                subscribers = list(self._subscribers)
            for track in subscribers:
                track._deliver(None)

    def _encode(self, codec: av.CodecContext, frame: np.ndarray, started: float) -> list[av.Packet]:
        if frame.shape[1] != self.width or frame.shape[0] != self.height:
            frame = cv2.resize(frame, (self.width, self.height), interpolation=cv2.INTER_AREA)
        if self.overlay is not None:
            frame = self.overlay(frame)
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="bgr24").reformat(format="yuv420p")
        vf.pts = int((time.monotonic() - started) * VIDEO_CLOCK)
        vf.time_base = TIME_BASE
        with self._lock:
            force, self._force_key = self._force_key, False
        if force:
            vf.pict_type = av.video.frame.PictureType.I
        packets = codec.encode(vf)
        self.frames_encoded += 1
        for p in packets:
            p.time_base = TIME_BASE
        return packets

    def _fan_out(self, packet: av.Packet) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for track in subscribers:
            track._deliver(packet)

    def request_keyframe(self) -> None:
        with self._lock:
            self._force_key = True

    def __repr__(self) -> str:
        return (f"<SharedVideoEncoder {self.width}x{self.height}@{self.fps:g} viewers={self.viewers} "
                f"running={self.running} frames={self.frames_encoded}>")


class EncodedVideoTrack(MediaStreamTrack):
    """One viewer's video track: pre-encoded H.264 packets from the shared encoder."""

    kind = "video"

    def __init__(self, encoder: SharedVideoEncoder) -> None:
        super().__init__()
        self.encoder = encoder
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[av.Packet | None] = asyncio.Queue()
        self._synced = False  # waiting for a keyframe

    def _deliver(self, packet: av.Packet | None) -> None:
        """Encoder thread → this track's loop."""
        try:
            self._loop.call_soon_threadsafe(self._put, packet)
        except RuntimeError:  # the loop is closed: nobody is watching any more
            pass

    def _put(self, packet: av.Packet | None) -> None:
        if packet is not None and not self._synced:
            if not packet.is_keyframe:
                return
            self._synced = True
        if self._queue.qsize() >= QUEUE_PACKETS:  # the viewer fell behind: drop and resync at a keyframe
            while not self._queue.empty():
                self._queue.get_nowait()
            self._synced = bool(packet is not None and packet.is_keyframe)
            if not self._synced:
                self.encoder.request_keyframe()
                return
        self._queue.put_nowait(packet)

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        packet = await self._queue.get()
        if packet is None:
            self.stop()
            raise MediaStreamError
        return packet

    def stop(self) -> None:
        if self.readyState == "live":
            self.encoder._unsubscribe(self)
        super().stop()


def box_overlay(pipeline: Any) -> Callable[[np.ndarray], np.ndarray]:
    """Draw the pipeline's latest detections (class and score) on a copy of the frame."""

    def draw(frame: np.ndarray) -> np.ndarray:
        last = getattr(pipeline, "last", None)
        detections = list(getattr(last, "detections", None) or [])
        if not detections:
            return frame
        out = frame.copy()
        for d in detections:
            x1, y1, x2, y2 = (int(v) for v in d.box)
            cv2.rectangle(out, (x1, y1), (x2, y2), (0, 200, 255), 2)
            cv2.putText(out, f"{d.label} {d.score:.2f}", (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                        (0, 200, 255), 1, cv2.LINE_AA)
        return out

    return draw
