#!/usr/bin/env python3
"""How many of the people (and vehicles) on real camera footage the node finds, and at what cost.

Hand-labelled frames (``bench/labels/*.json``, how they were made: ``bench/labels/README.md``)
of real footage fetched from registry packages (``models/footage.py``). For each labelled
frame of a video, the motion gate first runs over the ``WARM`` frames before it, as on a
pole, so the regions are the ones the node would have had. Three ways to spend the detector:

* ``full``    — the whole frame, squeezed into the model's input (what the node did before);
* ``tiles``   — overlapping model-sized tiles plus the whole frame (the low-rate full pass);
* ``regions`` — model-sized squares around where motion is (Frigate's regions); on a frame
  where the gate re-learned its background, and on footage that is not from a fixed camera
  (``"fixed_camera": false``: a film clip, a photo) there is no motion to go by, and the node
  does a full pass instead, so that is what is scored.

Scored per class group (person; vehicle = car, bus, truck; two-wheeler = bicycle,
motorcycle) at IoU 0.5, greedy by score. Boxes marked ``difficult`` (mostly hidden, cut by the
frame edge, far away) count neither as a miss nor, when found, as a false hit (PASCAL VOC's
rule). AP is VOC's all-point interpolated average precision. Timings are per frame on this
machine: wall ms and process CPU ms (all threads; motion gate included for regions).

Usage:
  python bench/detect_eval.py [--detector ssdlite_person|centernet_coco|all] [--threads 2]
                              [--calibrate] [--sweep 200,240,300] [--no-pipeline]
                              [--scenes vtest,vtest_holdout,bikes,bus]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from edge.vision.config import RegionSettings  # noqa: E402
from edge.vision.detector import Detection, Detector, create  # noqa: E402
from edge.vision.motion import MotionGate  # noqa: E402
from edge.vision.regions import (  # noqa: E402
    CALIBRATED,
    REGION_SIDE,
    detect_in_regions,
    full_pass,
    plan_within,
)
from edge.vision.tracker import iou_matrix  # noqa: E402

LABELS = ROOT / "bench" / "labels"
WARM = 100  # frames of motion history before a labelled frame (10 s of vtest; a pole runs all day)
IOU = 0.5
LOW = 0.15  # detectors run this low; thresholds are applied when scoring
GROUPS = {"person": "person", "car": "vehicle", "bus": "vehicle", "truck": "vehicle",
          "bicycle": "two-wheeler", "motorcycle": "two-wheeler"}
MODES = ("full", "tiles", "regions")
MAX_REGIONS = RegionSettings().max_regions  # the node's default


@dataclass
class Frame:
    scene: str
    index: int
    image: np.ndarray
    motion: list[tuple[int, int, int, int]]  # the gate's boxes at this frame
    reset: bool  # the gate (re-)learned its background on this frame: no motion to go by
    truth: list[dict[str, Any]]


@dataclass
class Run:
    """One mode's detections on every frame, with its cost."""

    mode: str
    dets: dict[tuple[str, int], list[Detection]] = field(default_factory=dict)
    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)


def load_frames(scenes: Sequence[str], footage: Callable[[str], Path]) -> list[Frame]:
    """The labelled frames, each with the motion gate's view of it."""
    out: list[Frame] = []
    for scene in scenes:
        spec = json.loads((LABELS / f"{scene}.json").read_text())
        path = footage(spec["clip"])
        labelled = {int(k): v for k, v in spec["frames"].items()}
        if path.suffix.lower() in (".jpg", ".png") or not spec.get("fixed_camera", True):
            if path.suffix.lower() in (".jpg", ".png"):
                images = {k: cv2.imread(str(path), cv2.IMREAD_COLOR) for k in labelled}
            else:
                images = dict(_read(path, sorted(labelled)))
            out += [Frame(scene, k, images[k], [], True, v) for k, v in labelled.items()]
            continue
        cap = cv2.VideoCapture(str(path))
        try:
            for k in sorted(labelled):
                gate = MotionGate()
                start = max(0, k - WARM)
                cap.set(cv2.CAP_PROP_POS_FRAMES, start)
                result = None
                for _ in range(start, k + 1):
                    ok, image = cap.read()
                    if not ok:
                        raise RuntimeError(f"{path} ends before frame {k}")
                    result = gate.update(image)
                assert result is not None
                out.append(Frame(scene, k, image, list(result.boxes), result.reset, labelled[k]))
        finally:
            cap.release()
    return out


def _read(path: Path, indices: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
    cap = cv2.VideoCapture(str(path))
    try:
        for k in indices:
            cap.set(cv2.CAP_PROP_POS_FRAMES, k)
            ok, image = cap.read()
            if not ok:
                raise RuntimeError(f"{path} ends before frame {k}")
            yield k, image
    finally:
        cap.release()


def plan(mode: str, frame: Frame, side: int) -> list[tuple[int, int, int, int]]:
    h, w = frame.image.shape[:2]
    whole = (0, 0, w, h)
    if mode == "full":
        return [whole]
    if mode == "tiles" or frame.reset:
        return full_pass(w, h, side=side, max_regions=MAX_REGIONS)
    return plan_within(frame.motion, w, h, side=side, max_regions=MAX_REGIONS)


def run_mode(det: Detector, mode: str, frames: Sequence[Frame], side: int) -> Run:
    run = Run(mode)
    for f in frames:
        t0, c0 = time.perf_counter(), time.process_time()
        regions = plan(mode, f, side)
        found = detect_in_regions(det, f.image, regions) if regions else []
        run.wall_ms.append((time.perf_counter() - t0) * 1000)
        run.cpu_ms.append((time.process_time() - c0) * 1000)
        run.calls.append(len(regions))
        run.dets[(f.scene, f.index)] = found
    return run


def motion_cost(frames: Sequence[Frame], n: int = 50) -> float:
    """CPU ms per frame of the motion gate on these frames' size."""
    gate = MotionGate()
    imgs = [f.image for f in frames[:5]]
    c0 = time.process_time()
    for i in range(n):
        gate.update(imgs[i % len(imgs)])
    return (time.process_time() - c0) * 1000 / n


@dataclass
class Score:
    group: str
    truth: int  # boxes that count
    tp: int
    fp: int
    ap: float

    @property
    def recall(self) -> float:
        return self.tp / self.truth if self.truth else float("nan")

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else float("nan")


def _match(dets: list[Detection], truth: list[dict[str, Any]], group: str) -> list[tuple[float, int]]:
    """(score, 1 true hit / 0 false hit / -1 ignored) per detection of ``group``, best first."""
    gt = [t for t in truth if GROUPS.get(t["class"]) == group]
    ds = sorted((d for d in dets if GROUPS.get(d.label) == group), key=lambda d: -d.score)
    if not ds:
        return []
    used = [False] * len(gt)
    ious = iou_matrix(np.array([d.box for d in ds], float), np.array([t["box"] for t in gt], float).reshape(-1, 4))
    out: list[tuple[float, int]] = []
    for i, d in enumerate(ds):
        best, bj = IOU, -1
        for j in range(len(gt)):  # a free box first, then a difficult one
            if not used[j] and ious[i, j] >= best:
                if bj == -1 or gt[bj].get("difficult") and not gt[j].get("difficult") or ious[i, j] > ious[i, bj]:
                    best, bj = ious[i, j], j
        if bj >= 0:
            used[bj] = True
            out.append((d.score, -1 if gt[bj].get("difficult") else 1))
        else:
            out.append((d.score, 0))
    return out


def score(run: Run, frames: Sequence[Frame], group: str, threshold: float) -> Score:
    hits: list[tuple[float, int]] = []
    n = 0
    for f in frames:
        n += sum(1 for t in f.truth if GROUPS.get(t["class"]) == group and not t.get("difficult"))
        hits += _match(run.dets[(f.scene, f.index)], f.truth, group)
    hits = [h for h in hits if h[1] >= 0]
    kept = [h for h in hits if h[0] >= threshold]
    tp = sum(h[1] for h in kept)
    return Score(group, n, tp, len(kept) - tp, _ap(sorted(hits, key=lambda h: -h[0]), n))


def _ap(hits: list[tuple[float, int]], n: int) -> float:
    if not n:
        return float("nan")
    tp = np.cumsum([h[1] for h in hits]) if hits else np.zeros(0)
    fp = np.cumsum([1 - h[1] for h in hits]) if hits else np.zeros(0)
    rec = np.concatenate([[0.0], tp / n, [tp[-1] / n if len(tp) else 0.0]])
    prec = np.concatenate([[1.0], tp / np.maximum(tp + fp, 1e-9), [0.0]])
    for i in range(len(prec) - 2, -1, -1):
        prec[i] = max(prec[i], prec[i + 1])
    idx = np.flatnonzero(rec[1:] != rec[:-1]) + 1
    return float(np.sum((rec[idx] - rec[idx - 1]) * prec[idx]))


def thresholds_for(detector: str) -> dict[str, float]:
    """The calibrated per-class thresholds, by group (the least over a group's classes)."""
    out: dict[str, float] = {}
    for label, t in CALIBRATED[detector].items():
        g = GROUPS.get(label)
        if g:
            out[g] = min(t, out.get(g, 1.0))
    return out


def calibrate(run: Run, frames: Sequence[Frame], group: str, max_fp: int) -> float:
    """The least threshold (0.05 steps) with at most ``max_fp`` false hits on these frames."""
    for t in np.arange(0.15, 0.95, 0.05):
        if score(run, frames, group, float(t)).fp <= max_fp:
            return round(float(t), 2)
    return 0.95


def evaluate(
    detector: str,
    scenes: Sequence[str],
    footage: Callable[[str], Path],
    *,
    threads: int = 2,
    modes: Sequence[str] = MODES,
    frames: list[Frame] | None = None,
) -> tuple[list[Frame], dict[str, Run]]:
    det = create(detector, threshold=LOW, threads=threads)
    frames = frames if frames is not None else load_frames(scenes, footage)
    det.detect(frames[0].image)  # warm the session up
    return frames, {m: run_mode(det, m, frames, REGION_SIDE[detector]) for m in modes}


def _fmt(v: float) -> str:
    return "  -  " if v != v else f"{v:5.2f}"


def report(detector: str, frames: list[Frame], runs: dict[str, Run], scenes: Sequence[str],
           do_calibrate: bool) -> Iterator[str]:
    groups = ["person"] if detector == "ssdlite_person" else ["person", "vehicle", "two-wheeler"]
    th = thresholds_for(detector)
    yield f"== {detector}  (thresholds {th}; IoU {IOU}; difficult boxes ignored)"
    for scene in [*scenes, "all"]:
        sub = [f for f in frames if scene in ("all", f.scene)]
        if not sub:
            continue
        h, w = sub[0].image.shape[:2]
        for g in groups:
            n = sum(1 for f in sub for t in f.truth if GROUPS.get(t["class"]) == g and not t.get("difficult"))
            if not n:
                continue
            yield (f"  {scene:<13} {g:<11} {len(sub):2d} frames {n:3d} boxes  "
                   f"{'mode':<8} {'recall':>6} {'prec':>5} {'FP':>3} {'AP50':>5}  {'wall ms':>7} {'CPU ms':>6} calls")
            for m, run in runs.items():
                s = score(run, sub, g, th.get(g, 0.5))
                idx = [i for i, f in enumerate(frames) if f in sub]
                wall = float(np.mean([run.wall_ms[i] for i in idx]))
                cpu = float(np.mean([run.cpu_ms[i] for i in idx]))
                calls = float(np.mean([run.calls[i] for i in idx]))
                yield (f"  {'':<13} {'':<11} {'':>9} {'':>9}  {m:<8} {_fmt(s.recall):>6} {_fmt(s.precision):>5} "
                       f"{s.fp:3d} {_fmt(s.ap):>5}  {wall:7.1f} {cpu:6.1f} {calls:4.1f}")
                if do_calibrate and scene == "all":  # never on held-out frames
                    tune = [f for f in sub if not f.scene.endswith("_holdout")]
                    yield f"  {'':<28}   calibrated {g} threshold for {m} (<= 2 false hits, " \
                          f"held-out frames left out): {calibrate(run, tune, g, 2)}"
        if scene != "all":
            yield f"  ({scene}: {w}x{h})"


def sweep(detector: str, frames: list[Frame], sides: Sequence[int], threads: int) -> Iterator[str]:
    """Recall / false hits of regions and tiles by region side and threshold (people)."""
    det = create(detector, threshold=LOW, threads=threads)
    yield f"== {detector} sweep: region side x threshold -> person recall/false hits on {len(frames)} frames"
    for side in sides:
        for m in ("tiles", "regions"):
            run = run_mode(det, m, frames, side)
            cells = [f"{t:.2f}:{score(run, frames, 'person', t).recall:.2f}/{score(run, frames, 'person', t).fp}"
                     for t in (0.3, 0.35, 0.4, 0.45, 0.5, 0.6)]
            yield (f"  side {side:4d} {m:<8} AP50 {score(run, frames, 'person', 0.5).ap:.2f} calls "
                   f"{np.mean(run.calls):4.1f}  " + " ".join(cells))


def pipeline_fps(footage: Callable[[str], Path], detector: str, threads: int, n: int = 150) -> Iterator[str]:
    """The whole node chain (``VisionPipeline``: tamper, motion, regions, tracker, zones) at 640x480:
    a busy scene (vtest, people walking) and a quiet one (the same view emptied: the median of
    frames spread over the clip, so nobody is in it; fresh sensor noise on each frame)."""
    from edge.clock import FakeClock
    from edge.vision.config import VisionSettings
    from edge.vision.pipeline import VisionPipeline

    cap = cv2.VideoCapture(str(footage("vtest.avi")))
    busy = []
    for _ in range(n):
        ok, img = cap.read()
        if not ok:
            break
        busy.append(cv2.resize(img, (640, 480), interpolation=cv2.INTER_AREA))
    spread = []
    for k in range(0, 790, 40):
        cap.set(cv2.CAP_PROP_POS_FRAMES, k)
        ok, img = cap.read()
        if ok:
            spread.append(cv2.resize(img, (640, 480), interpolation=cv2.INTER_AREA))
    cap.release()
    rng = np.random.default_rng(0)
    still = np.median(np.stack(spread), axis=0).astype(np.uint8)
    quiet = [cv2.add(still, rng.integers(0, 5, still.shape, dtype=np.uint8)) for _ in range(n)]
    for name, frames in (("busy", busy), ("quiet", quiet)):
        for mode, extra in (("regions", {}), ("whole frame", {"regions": {"enabled": False}})):
            clock = FakeClock()
            p = VisionPipeline(VisionSettings(detector=detector, threads=threads, **extra), clock)
            p.process(frames[0], datetime.now(UTC))
            runs = calls = 0
            t0, c0 = time.perf_counter(), time.process_time()
            for f in frames[1:]:
                clock.advance(0.1)
                p.process(f, datetime.now(UTC))
                runs += p.last.ran_detector
                calls += (len(p.last.regions) or 1) if p.last.ran_detector else 0
            wall = (time.perf_counter() - t0) / (len(frames) - 1)
            cpu = (time.process_time() - c0) / (len(frames) - 1)
            yield (f"  {name:<5} 640x480 {mode:<11} {1 / wall:6.1f} fps  {wall * 1000:6.1f} wall ms  "
                   f"{cpu * 1000:6.1f} CPU ms/frame  detector on {runs}/{len(frames) - 1} frames, "
                   f"{calls / max(1, runs):.1f} calls each")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--detector", default="all", choices=["all", *CALIBRATED])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--scenes", default="vtest,vtest_holdout,bikes,bus")
    ap.add_argument("--calibrate", action="store_true", help="print the least threshold per class with <= 2 FP")
    ap.add_argument("--sweep", default="", help="region sides to sweep on vtest, e.g. 200,240,300")
    ap.add_argument("--no-pipeline", action="store_true", help="skip the node-chain fps measurement")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "models"))
    from footage import fetch  # type: ignore[import-not-found]

    cv2.setNumThreads(1)
    scenes = args.scenes.split(",")
    frames: list[Frame] | None = None
    for name in (CALIBRATED if args.detector == "all" else [args.detector]):
        frames, runs = evaluate(name, scenes, fetch, threads=args.threads, frames=frames)
        for line in report(name, frames, runs, scenes, args.calibrate):
            print(line, flush=True)
    assert frames is not None
    if args.sweep:
        vt = [f for f in frames if f.scene == "vtest"]
        for name in (CALIBRATED if args.detector == "all" else [args.detector]):
            for line in sweep(name, vt, [int(x) for x in args.sweep.split(",")], args.threads):
                print(line, flush=True)
    if not args.no_pipeline:
        print(f"== the node's chain (VisionPipeline, {args.threads} threads; target >= 10 fps busy, >= 25 quiet)")
        for name in (CALIBRATED if args.detector == "all" else [args.detector]):
            print(f" {name}")
            for line in pipeline_fps(fetch, name, args.threads):
                print(line, flush=True)
    print(f"motion gate: {motion_cost(frames):.1f} CPU ms per frame at {frames[0].image.shape[1]}x"
          f"{frames[0].image.shape[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
