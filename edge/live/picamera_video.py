"""The live view's encoder on a Pi: picamera2's own ``H264Encoder`` on the running camera.

On a Pi 4 (and earlier: picamera2's "VC4" platform) ``picamera2.encoders.H264Encoder`` is the
SoC's hardware H.264 encoder (V4L2 ``/dev/video11``), so the live picture costs the CPU almost
nothing; on a Pi 5, which has no H.264 hardware, picamera2 gives the same name to its libx264
``LibavH264Encoder`` (software, in picamera2's encoder thread, same arguments). Either way
picamera2 feeds it every request of the camera's ``main`` stream after ``pre_callback`` has
blanked the privacy masks, so the encoder never sees a masked pixel. ``main``, not ``lores``:
the masks are applied to ``main`` only.

The encoder writes Annex B H.264 to an ``Output``; ours (``PacketOutput``) turns each
``outputframe(frame, keyframe, timestamp)`` into an ``av.Packet`` on the 90 kHz clock and fans it
out to the viewers exactly like the software path (``SharedVideoEncoder``, whose viewer
bookkeeping this class reuses). SPS/PPS repeat before every keyframe (``repeat=True``), a keyframe
comes every ``live.keyframe_s`` (``iperiod``) and at once for a new viewer (``force_key_frame``),
so a late joiner starts on a picture it can decode. The encoder is started with the first viewer
and stopped with the last (``start_encoder``/``stop_encoder``); the camera keeps running for
detection and snapshots, and the camera worker is not asked to read faster.

Detection boxes are not drawn here: the only way would be to draw into the shared buffer in
``pre_callback``, which detection and snapshots read too. ``live.encoder: software`` keeps the
boxes at the cost of a software encoder (see docs/live-view.md).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import av

from edge.errors import HardwareError
from edge.live.video import TIME_BASE, VIDEO_CLOCK, EncodedVideoTrack, SharedVideoEncoder

log = logging.getLogger(__name__)


class Picamera2EncoderStats:
    """How many picamera2 encoders were ever started (tests, bench)."""

    started = 0


def make_output(on_packet: Any) -> Any:
    """A ``picamera2.outputs.Output`` that hands each encoded frame to ``on_packet(av.Packet)``.

    Built on demand because picamera2 exists only on a Pi (and the class must derive from its
    ``Output``, which picamera2's encoders call as ``outputframe(frame, keyframe, timestamp,
    packet, audio)`` from their own thread).
    """
    from picamera2.outputs import Output  # type: ignore[import-not-found]

    class PacketOutput(Output):  # type: ignore[misc]
        """Annex B bytes + keyframe flag + microseconds → ``av.Packet`` (pts on the 90 kHz clock)."""

        def __init__(self) -> None:
            super().__init__()
            self.frames = 0
            self._last_pts = -1

        def outputframe(self, frame: Any, keyframe: bool = True, timestamp: int | None = None, packet: Any = None,
                        audio: bool = False) -> None:
            if audio or frame is None or not self.recording:
                return
            pts = (timestamp or 0) * VIDEO_CLOCK // 1_000_000
            if pts <= self._last_pts:  # aiortc needs rising timestamps; a repeat would confuse the browser
                pts = self._last_pts + 1
            self._last_pts = pts
            out = av.Packet(bytes(frame))
            out.pts = out.dts = pts
            out.time_base = TIME_BASE
            out.is_keyframe = bool(keyframe)
            self.frames += 1
            on_packet(out)

    return PacketOutput()


class Picamera2VideoEncoder(SharedVideoEncoder):
    """One picamera2 ``H264Encoder`` per camera, its packets fanned out to every viewer's track."""

    kind = "picamera2"

    def __init__(self, camera: Any, *, fps: float = 15, bitrate_kbps: int = 800, keyframe_s: float = 2.0) -> None:
        super().__init__(None, width=camera.width, height=camera.height, fps=fps, bitrate_kbps=bitrate_kbps,
                         keyframe_s=keyframe_s)
        self.camera = camera
        self._h264: Any | None = None
        self._output: Any | None = None
        self._run_lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._h264 is not None

    def track(self) -> EncodedVideoTrack:
        """A new viewer's track; the first starts the encoder, a later one asks it for a keyframe now."""
        track = EncodedVideoTrack(self)
        with self._lock:
            self._subscribers.append(track)
            first = len(self._subscribers) == 1
        if not first:
            self.request_keyframe()  # SPS/PPS and an IDR for the late joiner now, not at the next period
            return track
        try:
            self._start()
        except Exception:
            with self._lock:
                self._subscribers.remove(track)
            raise
        return track

    def _start(self) -> None:
        from picamera2.encoders import H264Encoder  # type: ignore[import-not-found]

        with self._run_lock:
            if self._h264 is not None:
                return
            camera_fps = self.camera.frame_rate
            skip = max(1, round(camera_fps / self.fps))  # the camera runs at ~30 fps; the live view at live.fps
            fps = camera_fps / skip
            encoder = H264Encoder(bitrate=self.bitrate, repeat=True, iperiod=max(1, round(self.keyframe_s * fps)),
                                  framerate=fps, profile="baseline")
            encoder.frame_skip_count = skip
            output = make_output(self._on_packet)
            try:
                self.camera.start_encoder(encoder, output)
            except Exception as exc:  # noqa: BLE001 - V4L2/libcamera errors are untyped
                raise HardwareError(f"picamera2 could not start its H.264 encoder: {exc}; "
                                    "set live.encoder: software to encode on the CPU instead") from exc
            self._h264, self._output = encoder, output
            Picamera2EncoderStats.started += 1
        log.info("live encoder started: picamera2 %s on main (%dx%d, %.0f of %.0f fps, %d kbit/s)",
                 type(encoder).__name__, self.width, self.height, fps, camera_fps, self.bitrate // 1000)

    def _halt(self) -> None:
        with self._run_lock:
            encoder, self._h264 = self._h264, None
            if encoder is None:
                return
            try:
                self.camera.stop_encoder(encoder)
            except Exception:  # noqa: BLE001 - the camera keeps running for detection whatever the encoder did
                log.exception("picamera2 encoder did not stop cleanly")
        log.info("live encoder stopped (no viewers); the camera keeps running")

    def _on_packet(self, packet: av.Packet) -> None:
        """picamera2's encoder thread: count and fan out (tracks hand it to their own loop)."""
        self.frames_encoded += 1
        self._fan_out(packet)

    def request_keyframe(self) -> None:
        encoder = self._h264
        if encoder is not None:
            encoder.force_key_frame()

    def __repr__(self) -> str:
        return (f"<Picamera2VideoEncoder {self.width}x{self.height}@{self.fps:g} viewers={self.viewers} "
                f"running={self.running} frames={self.frames_encoded}>")
