"""One camera frame in, the node's vision events out.

    masks -> tamper checks -> motion gate -> detector (on motion, or while tracks are live)
          -> IoU tracker -> zones (schedule, classes) -> entry / loitering events

The detector looks at model-sized regions around the motion and the live tracks, and every
``regions.full_every_s`` at the whole frame plus overlapping tiles (``edge.vision.regions``);
``all_frames`` runs it on every whole frame instead, as before, for comparisons. Scores are
kept per class (``thresholds``, calibrated on labelled real footage).

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
from edge.vision.regions import CALIBRATED, REGION_SIDE, Region, detect_in_regions, full_pass, plan_within
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
    regions: list[Region] = field(default_factory=list)  # where the detector looked (empty: whole frame)


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
            predict=settings.tracker.predict,
            # still objects are seen by the full pass only: let them live past its interval
            still_max_age_s=2.5 * settings.regions.full_every_s if self._regions_on(settings) else None,
        )
        self.zones = [Zone(z, settings.timezone) for z in settings.zones] or [Zone.whole_frame(settings.timezone)]
        self.monitor = ZoneMonitor(self.zones)
        self.tamper = TamperDetector(settings.tamper)
        self.thresholds = class_thresholds(settings)
        self.side = settings.regions.side or REGION_SIDE.get(settings.detector, 320)
        self._last_full: float | None = None
        self._last_run: float | None = None
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
        following = self.tracker.moving if self._regions_on(self.settings) else self.tracker.tracks
        run = gate is None or gate.run_detector or bool(following) or self._full_due(mono)
        if run and gate is not None and self._last_run is not None and self.settings.regions.enabled:
            run = mono - self._last_run >= 1.0 / self.settings.regions.max_detect_fps - 1e-6
        if not run:
            self.tracker.expire(mono)
            self.last = FrameResult(index, False, [], gate)
            return events
        regions = self._regions(frame, gate, mono)
        self._last_run = mono
        if regions is None:  # the gate's hold with nothing to look at and no full pass due
            self.tracker.expire(mono)
            self.last = FrameResult(index, False, [], gate)
            return events
        if regions:
            detections = detect_in_regions(self.detector, frame, regions, thresholds=self.thresholds)
        else:
            detections = [d for d in self.detector.detect(frame)
                          if d.score >= self.thresholds.get(d.label, self.detector.threshold)]
        seen = self.tracker.update(detections, mono)
        h, w = frame.shape[:2]
        hits = self.monitor.update(
            self.tracker.tracks, seen, width=w, height=h, mono=mono, now=now, confirmed=self.tracker.confirmed
        )
        events += [VisionEvent(hit.kind, self._data(hit), self._snapshot(frame, hit)) for hit in hits]
        self.last = FrameResult(index, True, detections, gate, regions)
        return events

    @staticmethod
    def _regions_on(settings: VisionSettings) -> bool:
        return settings.regions.enabled and not settings.all_frames

    def _full_due(self, mono: float) -> bool:
        """Time for the low-rate full pass (region mode only)."""
        if not self._regions_on(self.settings):
            return False
        return self._last_full is None or mono - self._last_full >= self.settings.regions.full_every_s

    def _regions(self, frame: np.ndarray, gate: MotionResult | None, mono: float) -> list[Region] | None:
        """Where to run the detector: [] the whole frame, a list of crops, None nowhere."""
        if gate is None or not self.settings.regions.enabled:
            return []
        h, w = frame.shape[:2]
        boxes = [*gate.boxes, *(t.box for t in self.tracker.moving)]
        rs = self.settings.regions
        if not (gate.reset or self._full_due(mono)):
            if not boxes:
                return None
            return plan_within(boxes, w, h, side=self.side, max_regions=rs.max_regions)
        self._last_full = mono
        return full_pass(w, h, side=self.side, max_regions=rs.max_regions)

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


def class_thresholds(settings: VisionSettings) -> dict[str, float]:
    """Least score per class: ``threshold`` for all when set, else the backend's calibrated
    figures (``edge.vision.regions.CALIBRATED``) overridden by ``thresholds``."""
    if settings.threshold is not None:
        return {**{c: settings.threshold for c in CALIBRATED.get(settings.detector, {})}, **settings.thresholds}
    return {**CALIBRATED.get(settings.detector, {}), **settings.thresholds}


def detector_options(settings: VisionSettings) -> dict[str, Any]:
    """Keyword arguments for ``create(settings.detector, ...)``: only what the config sets. The
    backend's own threshold is the least of the per-class ones; each class is cut at its own."""
    opts: dict[str, Any] = {"threads": settings.threads}
    if settings.model:
        opts["model"] = settings.model
    per_class = class_thresholds(settings)
    if per_class:
        opts["threshold"] = min(per_class.values())
    elif settings.threshold is not None:
        opts["threshold"] = settings.threshold
    return opts
