"""onnxruntime backends: the two models ``models/build_models.py`` builds, and a user's YOLO.

onnxruntime is imported when a session is opened, not at import time, so a door node (no
camera) runs without it. Each backend checks the model's inputs and outputs when it loads,
so a wrong or truncated file fails at start with its path in the message, not mid-shift.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.vision.detector import (
    COCO_CLASSES,
    DEFAULT_CLASSES,
    Detection,
    Detector,
    as_bgr,
    register,
    to_detections,
)
from edge.vision.models import BUILD_COMMAND, BUILT_MODELS, ModelError, model_path
from edge.vision.yolo import Decoded, decode_xyxy_score_class, decode_yolo, letterbox


def open_session(path: Path, threads: int) -> Any:
    """An onnxruntime CPU session with ``threads`` intra-op threads (a Pi 4 has four cores)."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ModelError(
            f"onnxruntime is not installed ({exc}); install it with `pip install onnxruntime`"
        ) from None
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3  # onnxruntime's warnings about unused initializers are noise here
    # No arena and no memory-pattern planning: ~20 MB less peak RSS on a 1-4 GB Pi for no
    # measurable latency (bench/vision.py), since each run's tensors are small.
    opts.enable_cpu_mem_arena = False
    opts.enable_mem_pattern = False
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors (InvalidProtobuf, Fail, ...)
        built = path.name in BUILT_MODELS.values()
        hint = f"rebuild it with `{BUILD_COMMAND} --force`" if built else "check that it is a whole ONNX file"
        raise ModelError(f"cannot load detector model {path}: {str(exc).strip()}; {hint}") from None


class OnnxDetector(Detector):
    """Opens the session and remembers the file, for the backends below."""

    default_model: str = ""

    def __init__(
        self,
        *,
        model: str | Path | None = None,
        threads: int = 2,
        threshold: float,
        classes: Iterable[str] | None = DEFAULT_CLASSES,
    ) -> None:
        super().__init__(threshold=threshold, classes=classes)
        if model is None and not self.default_model:
            raise ModelError(f"detector {self.name!r} needs a model: give the path to its .onnx file")
        self.path = model_path(str(model or self.default_model))
        self.session = open_session(self.path, threads)
        self.inputs = {i.name: i for i in self.session.get_inputs()}
        self.outputs = {o.name: o for o in self.session.get_outputs()}

    def _require(self, inputs: Sequence[str], outputs: Sequence[str]) -> None:
        missing = [n for n in inputs if n not in self.inputs] + [n for n in outputs if n not in self.outputs]
        if missing:
            raise ModelError(
                f"{self.path} is not a {self.name} model: it lacks {', '.join(missing)} "
                f"(inputs {sorted(self.inputs)}, outputs {sorted(self.outputs)})"
            )


@register("ssdlite_person")
class SsdlitePerson(OnnxDetector):
    """SSDLite MobileNetV2 fine-tuned on VOC people: person only, NMS inside the graph.

    The graph resizes to 300x300 itself; we resize first because it is cheaper to hand
    onnxruntime 270 KB than a whole frame.
    """

    default_model = "ssdlite_person"
    SIZE = 300
    INPUT = "image_tensor:0"
    OUTPUTS = ("num_detections:0", "detection_boxes:0", "detection_scores:0", "detection_classes:0")

    def __init__(self, *, threshold: float = 0.5, **kw: Any) -> None:
        super().__init__(threshold=threshold, **kw)
        self._require([self.INPUT], self.OUTPUTS)

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        frame = as_bgr(frame_bgr)
        h, w = frame.shape[:2]
        small = cv2.resize(frame, (self.SIZE, self.SIZE), interpolation=cv2.INTER_LINEAR)
        rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)[None]
        num, boxes, scores, classes = self.session.run(list(self.OUTPUTS), {self.INPUT: rgb})
        n = int(num[0])
        keep = (scores[0, :n] >= self.threshold) & (classes[0, :n] == 1)
        if not keep.any() or not self.wants("person"):
            return []
        ymin, xmin, ymax, xmax = boxes[0, :n][keep].T
        px = np.stack([xmin * w, ymin * h, xmax * w, ymax * h], axis=1)
        return to_detections(px, scores[0, :n][keep], ["person"] * int(keep.sum()), w, h)


@register("centernet_coco")
class CenternetCoco(OnnxDetector):
    """MobileNetV3 CenterNet on the 80 COCO classes; reported: people and vehicles by default.

    Its output is 100 candidates without suppression, so per-class NMS at IoU 0.4 is ours.
    Its scores run low (0.45-0.6 for clear objects), hence the 0.3 default threshold.
    """

    default_model = "centernet_coco"
    SIZE = 512

    def __init__(self, *, threshold: float = 0.3, iou: float = 0.4, **kw: Any) -> None:
        super().__init__(threshold=threshold, **kw)
        self.iou = iou
        self.input_name = next(iter(self.inputs))
        six = [name for name, o in self.outputs.items() if o.shape and o.shape[-1] == 6]
        if len(self.inputs) != 1 or not six:
            raise ModelError(f"{self.path} is not a centernet_coco model: no [1, 100, 6] detections output")
        self.output_name = six[0]

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        frame = as_bgr(frame_bgr)
        h, w = frame.shape[:2]
        small = cv2.resize(frame, (self.SIZE, self.SIZE), interpolation=cv2.INTER_LINEAR)
        rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB).astype(np.float32)[None]
        (out,) = self.session.run([self.output_name], {self.input_name: rgb})
        dec = decode_xyxy_score_class(
            out[0], threshold=self.threshold, iou=self.iou, num_classes=len(COCO_CLASSES)
        )
        sx, sy = w / self.SIZE, h / self.SIZE
        return _labelled(dec, COCO_CLASSES, self, lambda b: b * np.array([sx, sy, sx, sy], np.float32), w, h)


@register("yolo")
class YoloOnnx(OnnxDetector):
    """An installer's own YOLO export: NCHW float RGB 0..1, letterboxed; layouts in ``yolo.py``."""

    def __init__(
        self,
        *,
        threshold: float = 0.35,
        iou: float = 0.45,
        labels: Sequence[str] = COCO_CLASSES,
        **kw: Any,
    ) -> None:
        super().__init__(threshold=threshold, **kw)
        self.iou, self.labels = iou, tuple(labels)
        if len(self.inputs) != 1 or len(self.outputs) < 1:
            raise ModelError(f"{self.path}: a YOLO model has one image input, got {sorted(self.inputs)}")
        inp = next(iter(self.inputs.values()))
        self.input_name, self.output_name = inp.name, next(iter(self.outputs))
        shape = list(inp.shape)
        if len(shape) != 4 or shape[1] != 3:
            raise ModelError(f"{self.path}: expected an NCHW input [1, 3, H, W], got {shape}")
        # Dynamic axes come back as strings or None; 640 is the usual export size.
        self.height = shape[2] if isinstance(shape[2], int) else 640
        self.width = shape[3] if isinstance(shape[3], int) else 640
        self.float16 = "float16" in inp.type

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        frame = as_bgr(frame_bgr)
        h, w = frame.shape[:2]
        boxed, lb = letterbox(frame, self.width, self.height)
        blob = cv2.dnn.blobFromImage(boxed, 1 / 255.0, swapRB=True)  # NCHW float32 RGB 0..1
        if self.float16:
            blob = blob.astype(np.float16)
        (out,) = self.session.run([self.output_name], {self.input_name: blob})
        dec = decode_yolo(
            np.asarray(out), num_classes=len(self.labels), threshold=self.threshold, iou=self.iou
        )
        return _labelled(dec, self.labels, self, lb.to_frame, w, h)


def _labelled(
    dec: Decoded,
    labels: Sequence[str],
    det: Detector,
    to_frame: Callable[[np.ndarray], np.ndarray],
    w: int,
    h: int,
) -> list[Detection]:
    """Name the decoded classes, keep the ones the node reports, map boxes to the frame."""
    names = [labels[int(i)] for i in dec.class_ids]
    wanted = np.array([det.wants(n) for n in names], dtype=bool)
    if not wanted.any():
        return []
    boxes = to_frame(dec.boxes[wanted])
    return to_detections(
        boxes, dec.scores[wanted], [n for n, ok in zip(names, wanted, strict=True) if ok], w, h
    )
