"""On-device detection: a cheap motion gate, then an ONNX detector on the frames that moved.

Frames arrive from the camera seam already masked for privacy (the pipeline masks them again,
so its snapshots are masked however it is wired); everything here works on BGR numpy frames
and reports boxes in those frames' pixels. ``VisionPipeline`` chains motion gate, detector,
tracker, zones, loitering and tamper checks; ``FrameRing`` keeps a pre-alarm burst. Models are built once by
``models/build_models.py`` into ``$PINGAN_MODEL_DIR`` (see ``edge.vision.models``).
"""

import importlib
from typing import Any

# Exports load on first use: importing edge.vision.config (the node config does) must not pull in
# OpenCV, numpy and onnxruntime on a door node that has no camera.
_EXPORTS = {
    "MaskSettings": "config", "RegionSettings": "config",
    "TamperSettings": "config", "TrackerSettings": "config", "VisionSettings": "config",
    "ZoneSettings": "config", "COCO_CLASSES": "detector", "DEFAULT_CLASSES": "detector",
    "VEHICLE_CLASSES": "detector", "Detection": "detector", "Detector": "detector", "available": "detector",
    "create": "detector", "register": "detector", "ModelError": "models", "model_dir": "models",
    "model_path": "models", "MotionGate": "motion", "MotionResult": "motion", "VisionEvent": "pipeline",
    "VisionPipeline": "pipeline", "FrameRing": "ring",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"edge.vision.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'edge.vision' has no attribute {name!r}")


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
    "RegionSettings",
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
