"""Detect where motion is, at the model's own resolution (Frigate's regions).

A detector squeezes whatever it is given into its input (300x300 for ``ssdlite_person``,
512x512 for ``centernet_coco``). Given a whole 768x576 street, a person 60 pixels tall
becomes 30 and is missed. Given a 300-pixel square cut around where something moved, the
same person stays 60 pixels tall. So:

1. the motion gate's boxes (and the boxes of objects already tracked, which may stand still)
   are grouped into square **regions** at least the model's input size, padded so the
   object is not cut at the edge, and clamped inside the frame;
2. the detector runs on each region's crop, and boxes are mapped back to frame pixels;
3. boxes from all regions are merged by class-wise NMS (a person seen in two overlapping
   regions is one person; a rider does not suppress the bicycle);
4. a **full pass** at a low rate (``full_every_s``) looks at the whole frame — as
   overlapping model-sized **tiles** plus the whole frame for objects bigger than a tile —
   for people who stand still and so make no motion;
5. each class has its own score threshold, calibrated on hand-labelled real footage
   (``bench/detect_eval.py``), not guessed.

A detection cut by a tile's inner edge (within a few pixels of a border that is not the
frame's) is dropped: the tiles overlap, so the neighbouring tile or the whole-frame pass
sees that object whole.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from edge.vision.detector import Box, Detection, Detector, nms_per_class

Region = tuple[int, int, int, int]  # x1, y1, x2, y2 in frame pixels

# Per-class thresholds calibrated on the labelled footage in bench/labels (bench/detect_eval.py
# --calibrate): the least score that keeps precision on the set, per backend and class.
CALIBRATED: dict[str, dict[str, float]] = {
    "ssdlite_person": {"person": 0.4},
    "centernet_coco": {"person": 0.4, "bicycle": 0.3, "car": 0.35, "motorcycle": 0.3, "bus": 0.35, "truck": 0.35},
}
# Region side per backend, in frame pixels, measured by bench/detect_eval.py --sweep. Frigate
# makes regions at least the model's input; here somewhat less measured better: SSDLite
# (300 input, trained on VOC's large people) finds CCTV-sized people best when a 240-px crop
# is enlarged 1.25x, CenterNet (512 input) with 384-px crops.
REGION_SIDE: dict[str, int] = {"ssdlite_person": 240, "centernet_coco": 384, "yolo": 640}
EDGE_PX = 3  # a box this close to an inner crop border is taken as cut


@dataclass(frozen=True, slots=True)
class RegionPlan:
    """What one detector call covers: the crops, and whether it was a full pass."""

    regions: list[Region]
    full: bool


def plan_regions(
    boxes: Sequence[Sequence[float]],
    width: int,
    height: int,
    *,
    side: int,
    pad: float = 0.2,
    overlap: float = 0.3,
) -> list[Region]:
    """Group ``boxes`` (motion, tracks) into square regions of ``side`` pixels, padded.

    Largest box first; a box joins a group when the group, padded, still fits in ``side``.
    A group too big for one region (people spread over a motion blob) is covered by
    overlapping ``side`` tiles, plus the whole padded group squeezed into one call when it is
    much bigger than ``side`` (a person close to the camera, taller than a tile).
    """
    groups: list[list[float]] = []  # union boxes of the content
    order = sorted(boxes, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))
    for b in order:
        x1, y1, x2, y2 = (float(v) for v in b[:4])
        if x2 <= x1 or y2 <= y1:
            continue
        for g in groups:
            u = [min(g[0], x1), min(g[1], y1), max(g[2], x2), max(g[3], y2)]
            if _need(u, pad) <= side:
                g[:] = u
                break
        else:
            groups.append([x1, y1, x2, y2])
    regions: list[Region] = []
    for g in groups:
        if _need(g, pad) <= side:
            regions.append(_square(g, width, height, side))
            continue
        px, py = (g[2] - g[0]) * pad, (g[3] - g[1]) * pad
        x1, y1 = max(0, int(g[0] - px)), max(0, int(g[1] - py))
        x2, y2 = min(width, int(np.ceil(g[2] + px))), min(height, int(np.ceil(g[3] + py)))
        if max(x2 - x1, y2 - y1) > 1.5 * side:
            regions.append((x1, y1, x2, y2))
        regions += tile_regions(width, height, side=side, overlap=overlap, within=(x1, y1, x2, y2))
    # A region inside another region of the same scale is redundant.
    regions = list(dict.fromkeys(regions))
    return [r for r in regions if not any(_inside(r, o) and _size(o) <= side for o in regions)]


def plan_within(
    boxes: Sequence[Sequence[float]], width: int, height: int, *, side: int, max_regions: int
) -> list[Region]:
    """``plan_regions`` at ``side``, or, when that needs more than ``max_regions`` detector
    calls (a crowd spread over the view), at coarser sides (x1.25 each step) until it fits:
    the detector's cost per frame stays bounded, and small people lose resolution only when
    the scene is busy. Falls back to the whole frame squeezed into one call."""
    s = float(side)
    while s < max(width, height):
        regions = plan_regions(boxes, width, height, side=int(s))
        if len(regions) <= max_regions:
            return regions
        s *= 1.25
    return [(0, 0, width, height)]


def full_pass(width: int, height: int, *, side: int, max_regions: int) -> list[Region]:
    """The low-rate look at everything: the whole frame, plus tiles of about ``side`` (coarser
    when more than ``max_regions`` would be needed) for the small people it would miss."""
    s = float(side)
    while s < max(width, height):
        tiles = tile_regions(width, height, side=int(s))
        if len(tiles) <= max_regions:
            return [(0, 0, width, height), *tiles]
        s *= 1.25
    return [(0, 0, width, height)]


def _size(r: Region) -> int:
    return max(r[2] - r[0], r[3] - r[1])


def tile_regions(
    width: int, height: int, *, side: int, overlap: float = 0.3, within: Region | None = None
) -> list[Region]:
    """About ``side``-sized tiles covering the frame (or ``within``), neighbours overlapping by
    ``overlap`` of a tile: as many tiles as ``side`` fits, each stretched (up to ~1.3x, which the
    model's resize squeezes back) rather than one more tile for a sliver."""
    x0, y0, x1, y1 = within or (0, 0, width, height)

    def spans(a: int, b: int, limit: int) -> list[tuple[int, int]]:
        n = b - a
        count = max(1, round(n / side))
        if count == 1:  # one tile at least ``side`` long, centred, inside the frame
            t = min(max(n, side), limit)
            s = min(max(0, a + n // 2 - t // 2), limit - t)
            return [(s, s + t)]
        t = min(limit, max(side, int(np.ceil(n / count * (1 + overlap)))))
        step = (n - t) / (count - 1)
        return [(a + round(i * step), a + round(i * step) + t) for i in range(count)]

    return [(xa, ya, xb, yb) for ya, yb in spans(y0, y1, height) for xa, xb in spans(x0, x1, width)]


def _need(box: Sequence[float], pad: float) -> float:
    return max(box[2] - box[0], box[3] - box[1]) * (1.0 + 2.0 * pad)


def _square(box: Sequence[float], width: int, height: int, side: float) -> Region:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    sw, sh = min(int(round(side)), width), min(int(round(side)), height)
    x1 = int(round(min(max(cx - sw / 2, 0), width - sw)))
    y1 = int(round(min(max(cy - sh / 2, 0), height - sh)))
    return (x1, y1, x1 + sw, y1 + sh)


def _inside(a: Region, b: Region) -> bool:
    return a != b and b[0] <= a[0] and b[1] <= a[1] and a[2] <= b[2] and a[3] <= b[3]


def detect_in_regions(
    detector: Detector,
    frame: np.ndarray,
    regions: Sequence[Region],
    *,
    thresholds: Mapping[str, float] | None = None,
    iou: float = 0.45,
    drop_cut: bool = True,
) -> list[Detection]:
    """Run ``detector`` on each region's crop, map boxes back, merge with class-wise NMS.

    ``thresholds``: least score per class (others keep the detector's own threshold).
    ``drop_cut``: drop boxes touching a crop border that is not the frame's border.
    """
    h, w = frame.shape[:2]
    found: list[Detection] = []
    for x1, y1, x2, y2 in regions:
        full = (x1, y1, x2, y2) == (0, 0, w, h)
        crop = frame if full else frame[y1:y2, x1:x2]
        for d in detector.detect(crop):
            bx1, by1, bx2, by2 = d.box
            if drop_cut and not full and _cut(d.box, x2 - x1, y2 - y1, x1 > 0, y1 > 0, x2 < w, y2 < h):
                continue
            found.append(Detection(d.label, d.score, (bx1 + x1, by1 + y1, bx2 + x1, by2 + y1)))
    if thresholds:
        found = [d for d in found if d.score >= thresholds.get(d.label, detector.threshold)]
    return merge(found, iou)


def _cut(box: Box, cw: int, ch: int, left: bool, top: bool, right: bool, bottom: bool) -> bool:
    x1, y1, x2, y2 = box
    return (
        (left and x1 <= EDGE_PX)
        or (top and y1 <= EDGE_PX)
        or (right and x2 >= cw - EDGE_PX)
        or (bottom and y2 >= ch - EDGE_PX)
    )


# Classes one object is often given at once (a van is "car" and "truck"): NMS treats them as one.
SAME_OBJECT: dict[str, str] = {"car": "motor vehicle", "truck": "motor vehicle", "bus": "motor vehicle"}


def merge(found: Sequence[Detection], iou: float = 0.45) -> list[Detection]:
    """Class-wise NMS across regions, best first; a box mostly inside a better box of the same
    class (a torso found in a tile, the whole person in the frame) goes too. Car, truck and
    bus count as one class here (``SAME_OBJECT``); a rider never suppresses the bicycle."""
    if not found:
        return []
    boxes = np.array([d.box for d in found], dtype=np.float64)
    scores = np.array([d.score for d in found], dtype=np.float64)
    labels = np.array([SAME_OBJECT.get(d.label, d.label) for d in found])
    keep = list(nms_per_class(boxes, scores, labels, iou))
    kept: list[int] = []
    for i in keep:
        if not any(labels[j] == labels[i] and _covered(boxes[i], boxes[j]) for j in kept):
            kept.append(int(i))
    return [found[i] for i in kept]


def _covered(inner: np.ndarray, outer: np.ndarray, frac: float = 0.8) -> bool:
    w = max(0.0, min(inner[2], outer[2]) - max(inner[0], outer[0]))
    h = max(0.0, min(inner[3], outer[3]) - max(inner[1], outer[1]))
    area = max(1e-9, (inner[2] - inner[0]) * (inner[3] - inner[1]))
    return bool(w * h / area >= frac)
