"""One camera frame in, the node's vision events out.

    masks -> tamper checks -> motion gate -> detector (on motion, or while tracks are live)
          -> IoU tracker -> zones (schedule, classes) -> entry / loitering events

The agent calls ``process(frame, now)`` for each frame its camera thread reads (``None``
when the read failed, which feeds the feed-lost check) and publishes what comes back.
Durations (dwell, feed lost, tamper hold) use the injected clock's ``monotonic()``;
schedules use ``now``. Nothing here sleeps or starts threads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import cv2
import numpy as np

from edge.clock import Clock
from edge.hw.camera import PrivacyMask, encode_jpeg
from edge.protocol import MAX_SNAPSHOT_BYTES
from edge.vision.config import VisionSettings
from edge.vision.detector import Detection, Detector, create
from edge.vision.motion import MotionGate, MotionResult
from edge.vision.tamper import TamperDetector
from edge.vision.tracker import Tracker
from edge.vision.zones import Zone, ZoneHit, ZoneMonitor

log = logging.getLogger(__name__)


@dataclass(slots=True)
class VisionEvent:
    """An event for the outbox: ``kind`` (detection.person, detection.vehicle,
    detection.loitering, tamper.camera), its ``data`` and a JPEG snapshot (≤ 256 KB) or None."""

    kind: str
    data: dict[str, Any]
    snapshot: bytes | None = None


@dataclass(slots=True)
class FrameResult:
    """What ``process`` did with the last frame (for ``pingan-edge detect`` and tests)."""

    index: int
    ran_detector: bool = False
    detections: list[Detection] = field(default_factory=list)
    motion: MotionResult | None = None


class VisionPipeline:
    """The vision chain of one camera; see the module docstring."""

    def __init__(self, settings: VisionSettings, clock: Clock, *, detector: Detector | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.detector = detector or create(settings.detector, **detector_options(settings))
        self.mask = PrivacyMask([m.points for m in settings.masks])
        self.motion = MotionGate()
        self.tracker = Tracker(
            iou=settings.tracker.iou,
            max_age_s=settings.tracker.max_age_s,
            confirm_frames=settings.tracker.confirm_frames,
        )
        self.zones = [Zone(z, settings.timezone) for z in settings.zones] or [Zone.whole_frame(settings.timezone)]
        self.monitor = ZoneMonitor(self.zones)
        self.tamper = TamperDetector(settings.tamper)
        self.frames = 0
        self.last = FrameResult(index=-1)

    def process(self, frame: np.ndarray | None, now: datetime) -> list[VisionEvent]:
        """Run the chain on one frame (``None``: the camera gave nothing); returns the events."""
        mono = self.clock.monotonic()
        index = self.frames
        self.frames += 1
        if frame is None:
            self.last = FrameResult(index)
            return [VisionEvent("tamper.camera", t.data) for t in self.tamper.update(None, mono)]
        if self.mask:
            frame = self.mask.apply(frame.copy())  # the caller's frame is left alone
        events = [
            VisionEvent("tamper.camera", t.data, self._snapshot(frame, None))
            for t in self.tamper.update(frame, mono)
        ]
        gate = None if self.settings.all_frames else self.motion.update(frame)
        run = gate is None or gate.run_detector or self.tracker.active
        if not run:
            self.tracker.expire(mono)
            self.last = FrameResult(index, False, [], gate)
            return events
        detections = self.detector.detect(frame)
        seen = self.tracker.update(detections, mono)
        h, w = frame.shape[:2]
        hits = self.monitor.update(
            self.tracker.tracks, seen, width=w, height=h, mono=mono, now=now, confirmed=self.tracker.confirmed
        )
        events += [VisionEvent(hit.kind, self._data(hit), self._snapshot(frame, hit)) for hit in hits]
        self.last = FrameResult(index, True, detections, gate)
        return events

    @staticmethod
    def _data(hit: ZoneHit) -> dict[str, Any]:
        t = hit.track
        data: dict[str, Any] = {
            "track_id": t.track_id,
            "class": t.label,
            "score": round(t.score, 3),
            "zone": hit.zone.name,
            "dwell_s": round(hit.dwell_s, 1),
            "box": [round(v, 1) for v in t.box],
        }
        if hit.kind == "detection.loitering":
            data["limit_s"] = hit.zone.loiter_s
        return data

    def _snapshot(self, frame: np.ndarray, hit: ZoneHit | None) -> bytes:
        """The (masked) frame as a JPEG within the contract's limit, the object's box drawn."""
        img = frame.copy()
        if hit is not None:
            x1, y1, x2, y2 = (int(round(v)) for v in hit.track.box)
            colour = (0, 0, 255) if hit.kind == "detection.loitering" else (0, 200, 255)
            poly = hit.zone.polygon(img.shape[1], img.shape[0])
            cv2.polylines(img, [poly], True, (255, 200, 0), 1, cv2.LINE_AA)
            cv2.rectangle(img, (x1, y1), (x2, y2), colour, 2)
            text = f"#{hit.track.track_id} {hit.track.label} {hit.track.score:.2f} {hit.zone.name}"
            cv2.putText(img, text, (x1, max(12, y1 - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
        return encode_jpeg(img, self.settings.snapshot_quality, MAX_SNAPSHOT_BYTES)

    def __repr__(self) -> str:
        return (
            f"<VisionPipeline {self.detector!r} zones={[z.name for z in self.zones]} "
            f"masks={len(self.mask.polygons)} frames={self.frames} {self.tracker!r}>"
        )


def detector_options(settings: VisionSettings) -> dict[str, Any]:
    """Keyword arguments for ``create(settings.detector, ...)``: only what the config sets."""
    opts: dict[str, Any] = {"threads": settings.threads}
    if settings.model:
        opts["model"] = settings.model
    if settings.threshold is not None:
        opts["threshold"] = settings.threshold
    return opts
