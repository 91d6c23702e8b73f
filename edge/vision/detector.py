"""The detector seam: one ABC, one result type and a registry keyed by name.

A node config names its detector (``ssdlite_person``, ``centernet_coco``, ``yolo``) and the
pipeline asks ``create(name, ...)`` for it, so a new backend is a new class with
``@register("name")`` and nothing else changes (Frigate's detector plugins work the same way).
Every backend takes a BGR frame as the camera seam hands it over and returns boxes in that
frame's pixels, so zones, the tracker and snapshots never see a model's input size.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np

from edge.vision.models import ModelError

# The 80 COCO classes in the order COCO-trained detectors number them (0-based).
COCO_CLASSES: tuple[str, ...] = tuple(
    (
        "person,bicycle,car,motorcycle,airplane,bus,train,truck,boat,traffic light,fire hydrant,"
        "stop sign,parking meter,bench,bird,cat,dog,horse,sheep,cow,elephant,bear,zebra,giraffe,"
        "backpack,umbrella,handbag,tie,suitcase,frisbee,skis,snowboard,sports ball,kite,baseball bat,"
        "baseball glove,skateboard,surfboard,tennis racket,bottle,wine glass,cup,fork,knife,spoon,"
        "bowl,banana,apple,sandwich,orange,broccoli,carrot,hot dog,pizza,donut,cake,chair,couch,"
        "potted plant,bed,dining table,toilet,tv,laptop,mouse,remote,keyboard,cell phone,microwave,"
        "oven,toaster,sink,refrigerator,book,clock,vase,scissors,teddy bear,hair drier,toothbrush"
    ).split(",")
)
VEHICLE_CLASSES: frozenset[str] = frozenset({"car", "bus", "truck", "motorcycle", "bicycle"})
# What a pole reports by default: people and vehicles (events detection.person / .vehicle).
DEFAULT_CLASSES: frozenset[str] = frozenset({"person"}) | VEHICLE_CLASSES

Box = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class Detection:
    """One object: class name, confidence 0..1 and box x1, y1, x2, y2 in frame pixels."""

    label: str
    score: float
    box: Box

    @property
    def category(self) -> str:
        """``person``, ``vehicle`` or the class itself: what the event kind is named after."""
        return "vehicle" if self.label in VEHICLE_CLASSES else self.label

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape ``pingan-edge detect`` prints: ``{"class", "score", "box"}``."""
        return {"class": self.label, "score": round(self.score, 3), "box": [round(v, 1) for v in self.box]}


class Detector(ABC):
    """Finds objects in a BGR frame. Backends are made with ``create(name, **options)``."""

    name: ClassVar[str] = ""

    def __init__(self, *, threshold: float, classes: Iterable[str] | None = DEFAULT_CLASSES) -> None:
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
        self.threshold = float(threshold)
        self.classes: frozenset[str] | None = None if classes is None else frozenset(classes)

    @abstractmethod
    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        """Objects at or above the threshold, best first, boxes clipped to the frame."""

    def wants(self, label: str) -> bool:
        return self.classes is None or label in self.classes

    def __repr__(self) -> str:
        classes = "all" if self.classes is None else ",".join(sorted(self.classes))
        return f"<{type(self).__name__} {self.name!r} threshold={self.threshold} classes={classes}>"


D = TypeVar("D", bound=type[Detector])
_REGISTRY: dict[str, type[Detector]] = {}


def register(name: str) -> Callable[[D], D]:
    """Class decorator: make a backend available to ``create`` under ``name``."""

    def deco(cls: D) -> D:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"detector {name!r} is already registered by {_REGISTRY[name].__name__}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def available() -> list[str]:
    """Names ``create`` accepts."""
    _load_backends()
    return sorted(_REGISTRY)


def create(name: str, **options: Any) -> Detector:
    """Build the detector registered as ``name``; unknown names get a ``ModelError`` listing the rest."""
    _load_backends()
    try:
        cls = _REGISTRY[name]
    except KeyError:
        raise ModelError(f"unknown detector {name!r}: choose one of {', '.join(sorted(_REGISTRY))}") from None
    return cls(**options)


def _load_backends() -> None:
    # Imported here, not at the top, because the backends import this module to register.
    from edge.vision import backends  # noqa: F401


def as_bgr(frame: np.ndarray) -> np.ndarray:
    """Accept HxWx3 BGR (the camera seam's format) or HxW grey; refuse anything else clearly."""
    if frame.dtype != np.uint8:
        raise ValueError(f"frame must be uint8, got {frame.dtype}")
    if frame.ndim == 2:
        return np.repeat(frame[:, :, None], 3, axis=2)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame must be HxWx3 BGR or HxW grey, got shape {frame.shape}")
    return frame


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best score first (boxes are x1,y1,x2,y2)."""
    order = np.argsort(-scores, kind="stable")
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = np.clip(
            np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]), 0, None
        )
        h = np.clip(
            np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]), 0, None
        )
        inter = w * h
        union = areas[i] + areas[rest] - inter
        overlap = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        order = rest[overlap <= iou]
    return np.asarray(keep, dtype=np.int64)


def nms_per_class(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, iou: float) -> np.ndarray:
    """NMS within each class, so a rider's box does not suppress the motorcycle under it."""
    keep = [
        np.flatnonzero(labels == c)[nms(boxes[labels == c], scores[labels == c], iou)]
        for c in np.unique(labels)
    ]
    if not keep:
        return np.zeros(0, dtype=np.int64)
    merged = np.concatenate(keep)
    return merged[np.argsort(-scores[merged], kind="stable")]


def to_detections(
    boxes: np.ndarray, scores: np.ndarray, labels: Iterable[str], width: int, height: int
) -> list[Detection]:
    """Clip frame-pixel boxes to the frame and wrap them, dropping boxes clipped to nothing."""
    out: list[Detection] = []
    for (x1, y1, x2, y2), score, label in zip(boxes.tolist(), scores.tolist(), labels, strict=True):
        x1, x2 = float(min(max(x1, 0.0), width)), float(min(max(x2, 0.0), width))
        y1, y2 = float(min(max(y1, 0.0), height)), float(min(max(y2, 0.0), height))
        if x2 > x1 and y2 > y1:
            out.append(Detection(label, float(score), (x1, y1, x2, y2)))
    out.sort(key=lambda d: -d.score)
    return out
