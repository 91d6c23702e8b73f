"""On-device detection: a cheap motion gate, then an ONNX detector on the frames that moved.

Frames arrive from the camera seam already masked for privacy (the pipeline masks them again,
so its snapshots are masked however it is wired); everything here works on BGR numpy frames
and reports boxes in those frames' pixels. ``VisionPipeline`` chains motion gate, detector,
tracker, zones, loitering and tamper checks; ``FrameRing`` keeps a pre-alarm burst. Models are built once by
``models/build_models.py`` into ``$PINGAN_MODEL_DIR`` (see ``edge.vision.models``).
"""

from edge.vision.config import MaskSettings, TamperSettings, TrackerSettings, VisionSettings, ZoneSettings
from edge.vision.detector import (
    COCO_CLASSES,
    DEFAULT_CLASSES,
    VEHICLE_CLASSES,
    Detection,
    Detector,
    available,
    create,
    register,
)
from edge.vision.models import ModelError, model_dir, model_path
from edge.vision.motion import MotionGate, MotionResult
from edge.vision.pipeline import VisionEvent, VisionPipeline
from edge.vision.ring import FrameRing

__all__ = [
    "COCO_CLASSES",
    "DEFAULT_CLASSES",
    "VEHICLE_CLASSES",
    "Detection",
    "Detector",
    "FrameRing",
    "MaskSettings",
    "ModelError",
    "MotionGate",
    "MotionResult",
    "TamperSettings",
    "TrackerSettings",
    "VisionEvent",
    "VisionPipeline",
    "VisionSettings",
    "ZoneSettings",
    "available",
    "create",
    "model_dir",
    "model_path",
    "register",
]
