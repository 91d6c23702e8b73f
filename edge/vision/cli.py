"""``pingan-edge detect SOURCE``: the node's vision pipeline on a file or a camera, as JSON lines.

An installer tries zones, masks and thresholds on recorded footage before mounting the
camera. One JSON object per line on stdout:

* per frame the detector ran on: ``{"frame": N, "detections": [{"class", "score", "box"}]}``
  (with the motion gate on, quiet frames are skipped and print nothing; ``--all-frames``
  runs the detector on every frame);
* per event, as the node would send it: ``{"frame": N, "kind": ..., "data": {...}}``.

A video file runs on its own time (frame N is at N / fps seconds), so dwell and loitering
on a recording are as they would have been live, however fast this machine is. A still
image is processed ``max_frames`` times (default: enough frames to confirm a track), a
camera or stream until ``max_frames`` or Ctrl-C.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import cv2
import numpy as np

from edge.clock import Clock, SystemClock
from edge.errors import HardwareError
from edge.hw.camera import open_camera
from edge.shared.yamlconfig import load_yaml_model
from edge.vision.config import VisionFile, VisionSettings
from edge.vision.models import ModelError
from edge.vision.pipeline import VisionPipeline

_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm"}


class MediaClock:
    """Time of a recording: ``monotonic()`` is the current frame's offset, ``now()`` the
    wall-clock start plus that offset."""

    def __init__(self, start: datetime | None = None) -> None:
        self.start = start or datetime.now(UTC)
        self.t = 0.0

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.t)


def load_settings(config: Path | None, all_frames: bool) -> VisionSettings:
    """The ``vision:`` section of ``config`` (ConfigError with the YAML line when invalid)."""
    settings = load_yaml_model(config, VisionFile).vision if config is not None else VisionSettings()
    return settings.model_copy(update={"all_frames": True}) if all_frames else settings


def _frames(source: str, settings: VisionSettings, max_frames: int | None) -> Iterator[tuple[np.ndarray | None, Clock]]:
    """(frame, clock positioned at that frame) from an image, a video file or a live camera."""
    path = Path(source)
    if path.suffix.lower() in _IMAGE_SUFFIXES and path.is_file():
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise HardwareError(f"cannot read image {path}: not a format OpenCV reads")
        clock = MediaClock()
        for i in range(max_frames or settings.tracker.confirm_frames):
            clock.t = i * 0.2
            yield image.copy(), clock
        return
    if path.is_file():
        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            raise HardwareError(f"cannot open video {path}: not a format OpenCV reads")
        fps = cap.get(cv2.CAP_PROP_FPS)
        fps = fps if 1.0 <= fps <= 240.0 else 25.0
        clock = MediaClock()
        try:
            i = 0
            while max_frames is None or i < max_frames:
                ok, frame = cap.read()
                if not ok:
                    return
                clock.t = i / fps
                yield frame, clock
                i += 1
        finally:
            cap.release()
        return
    camera = open_camera(source, 640, 480, "detect")
    system = SystemClock()
    try:
        i = 0
        while max_frames is None or i < max_frames:
            frame = camera.read()
            yield frame, system
            if frame is None:  # a stream that is down answers at once: do not spin on it
                time.sleep(0.2)
            i += 1
    finally:
        camera.close()


def run_detect(
    source: str,
    config: Path | None,
    all_frames: bool,
    max_frames: int | None,
    *,
    out: TextIO | None = None,
    pipeline: VisionPipeline | None = None,
) -> int:
    """Run the pipeline on ``source`` and print JSON lines; 0 when done, 1 on a camera or model
    error (message on stderr). A bad config raises ``ConfigError`` (the CLI exits 2)."""
    out = out or sys.stdout
    settings = pipeline.settings if pipeline is not None else load_settings(config, all_frames)
    try:
        frames = _frames(source, settings, max_frames)
        for frame, clock in frames:
            if pipeline is None:  # built on the first frame's clock, after the source opened
                pipeline = VisionPipeline(settings, clock)
            pipeline.clock = clock
            events = pipeline.process(frame, clock.now())
            result = pipeline.last
            if result.ran_detector:
                _emit(out, {"frame": result.index, "detections": [d.to_dict() for d in result.detections]})
            for event in events:
                _emit(out, {"frame": result.index, "kind": event.kind, "data": event.data})
    except (HardwareError, ModelError) as exc:
        print(f"pingan-edge detect: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


def _emit(out: TextIO, obj: dict[str, Any]) -> None:
    out.write(json.dumps(obj, separators=(",", ":")) + "\n")
    out.flush()
