"""On-device detection: a cheap motion gate, then an ONNX detector on the frames that moved.

Frames arrive from the camera seam already masked for privacy; everything here works on
BGR numpy frames and reports boxes in those frames' pixels. Models are built once by
``models/build_models.py`` into ``$PINGAN_MODEL_DIR`` (see ``edge.vision.models``).
"""

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

__all__ = [
    "COCO_CLASSES",
    "DEFAULT_CLASSES",
    "VEHICLE_CLASSES",
    "Detection",
    "Detector",
    "ModelError",
    "MotionGate",
    "MotionResult",
    "available",
    "create",
    "model_dir",
    "model_path",
    "register",
]
