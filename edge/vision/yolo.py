"""Decoding of raw detector outputs an installer's own ONNX model may produce.

No registry ships a ready COCO ONNX file, so an installer may bring one (an Ultralytics or
YOLOv5/v7 export). Those exports differ only in tensor layout, so one pure-numpy decoder
covers them and is tested on synthetic arrays:

* ``[1, 4+nc, N]`` — YOLOv8/v11: cx, cy, w, h, then one score per class (no objectness);
* ``[1, N, 5+nc]`` — YOLOv5/v7: cx, cy, w, h, objectness, class scores (score = obj * cls);
* ``[1, N, 4+nc]`` — a transposed YOLOv8 export;
* ``[1, N, 6]``    — end-to-end exports with NMS inside: x1, y1, x2, y2, score, class
  (also the layout of the CenterNet model's output).

The class count (the model's labels) tells the layouts apart; one case stays ambiguous: with
exactly two classes ``[1, N, 6]`` is read as the end-to-end layout. Boxes come out in the
model's input pixels; ``Letterbox`` maps them back to the frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge.vision.detector import nms_per_class
from edge.vision.models import ModelError


@dataclass(frozen=True, slots=True)
class Decoded:
    """Boxes x1,y1,x2,y2 (model input pixels), scores and integer class ids, best first."""

    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray

    @classmethod
    def empty(cls) -> Decoded:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))


@dataclass(frozen=True, slots=True)
class Letterbox:
    """How a frame was scaled and padded into the model input, to undo it on the boxes."""

    scale: float
    pad_x: float
    pad_y: float

    def to_frame(self, boxes: np.ndarray) -> np.ndarray:
        pad = np.array([self.pad_x, self.pad_y, self.pad_x, self.pad_y], dtype=np.float32)
        return (boxes - pad) / self.scale


def letterbox(frame: np.ndarray, width: int, height: int, fill: int = 114) -> tuple[np.ndarray, Letterbox]:
    """Scale ``frame`` to fit ``width`` x ``height`` keeping its aspect, pad the rest (YOLO's grey)."""
    h, w = frame.shape[:2]
    scale = min(width / w, height / h)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    resized = cv2.resize(frame, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    pad_x, pad_y = (width - new_w) // 2, (height - new_h) // 2
    out = np.full((height, width, frame.shape[2]), fill, dtype=frame.dtype)
    out[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
    return out, Letterbox(scale, float(pad_x), float(pad_y))


def decode_yolo(output: np.ndarray, *, num_classes: int, threshold: float, iou: float = 0.45) -> Decoded:
    """Decode one image's raw output (see the module doc for the layouts), then per-class NMS."""
    if output.ndim != 3 or output.shape[0] != 1:
        raise ModelError(f"expected a detector output of shape [1, ., .], got {list(output.shape)}")
    a = output[0].astype(np.float32, copy=False)
    nc = num_classes
    if a.shape[1] == 6 and nc != 1:
        return decode_xyxy_score_class(a, threshold=threshold, iou=iou, num_classes=nc)
    if a.shape[0] == 4 + nc:
        rows, obj = a.T, None
    elif a.shape[1] == 5 + nc:
        rows, obj = a, a[:, 4]
    elif a.shape[1] == 4 + nc:
        rows, obj = a, None
    else:
        raise ModelError(
            f"unrecognised YOLO output shape {list(output.shape)} for {nc} classes: expected "
            f"[1, {4 + nc}, N], [1, N, {5 + nc}], [1, N, {4 + nc}] or [1, N, 6]; check the model's labels"
        )
    cls_scores = rows[:, -nc:]
    class_ids = np.argmax(cls_scores, axis=1)
    scores = cls_scores[np.arange(len(rows)), class_ids]
    if obj is not None:
        scores = scores * obj
    keep = scores >= threshold
    if not keep.any():
        return Decoded.empty()
    cx, cy, w, h = (rows[keep, i] for i in range(4))
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    return _suppress(boxes, scores[keep], class_ids[keep], iou)


def decode_xyxy_score_class(rows: np.ndarray, *, threshold: float, iou: float, num_classes: int) -> Decoded:
    """Rows of x1, y1, x2, y2, score, class id; NaN or out-of-range classes are dropped."""
    cls = rows[:, 5]
    valid = np.isfinite(cls) & (cls >= 0) & (cls < num_classes) & (rows[:, 4] >= threshold)
    if not valid.any():
        return Decoded.empty()
    rows = rows[valid]
    return _suppress(rows[:, :4].copy(), rows[:, 4].copy(), rows[:, 5].astype(np.int64), iou)


def _suppress(boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou: float) -> Decoded:
    keep = nms_per_class(boxes, scores, class_ids, iou)
    return Decoded(boxes[keep], scores[keep], class_ids[keep])
