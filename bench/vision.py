#!/usr/bin/env python3
"""The vision pipeline on one thread at 640x480: what the motion gate saves, what the detector
costs, how it compares with OpenCV's HOG people detector, and a node's peak RSS with it loaded.

1. A quiet scene (a drawn street with sensor noise, nothing moving) through ``VisionPipeline``
   with the motion gate, and with the detector on every frame (``all_frames``): frames/s and
   CPU seconds per frame (process CPU time, all threads). Targets: >= 25 fps gated, gated CPU
   per frame <= 0.2x ungated.
2. The default detector's own inference time (pre/post included), median of 50 frames.
3. The detector and HOG (``cv2.HOGDescriptor_getDefaultPeopleDetector``) side by side on the
   scikit-image photos (two with a person, two without) and the composited street scene:
   median time and what each finds.
4. Peak RSS of a child process that loads the pipeline with the detector and runs it on 50
   frames (target <= 150 MB).

One thread everywhere: onnxruntime ``threads=1`` and ``cv2.setNumThreads(1)``.
Usage: python bench/vision.py [--detector ssdlite_person]   (about a minute)
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

W, H = 640, 480


def _street() -> np.ndarray:
    g = np.linspace(60, 140, H, dtype=np.uint8)[:, None]
    f = np.repeat(np.repeat(g, W, axis=1)[:, :, None], 3, axis=2).copy()
    cv2.rectangle(f, (0, 380), (W, H), (70, 70, 70), -1)
    cv2.rectangle(f, (420, 100), (620, 380), (90, 110, 130), -1)
    for i in range(5):
        cv2.rectangle(f, (430 + i * 37, 130), (455 + i * 37, 170), (200, 220, 230), -1)
    return f


def _quiet_frames(n: int = 8, noise: int = 4) -> list[np.ndarray]:
    """The street with fresh sensor noise (uniform +-``noise``) in each frame, made up front
    in uint8 (no wide temporaries) so that making them does not raise the peak RSS measured."""
    cv2.setRNGSeed(0)
    base = _street()
    offset = np.full_like(base, noise)
    frames = []
    for _ in range(n):
        grain = np.empty_like(base)
        cv2.randu(grain, (0, 0, 0), (2 * noise + 1,) * 3)
        frames.append(cv2.subtract(cv2.add(base, grain), offset))  # saturating, like a sensor
    return frames


def _hwm_mb() -> float:
    """This process's peak RSS (VmHWM). Not ``ru_maxrss``: a child started by a big parent
    inherits the parent's high-water mark in it across fork and exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _photos() -> dict[str, np.ndarray]:
    from skimage import data

    def bgr(rgb: np.ndarray) -> np.ndarray:
        return cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), (W, H), interpolation=cv2.INTER_AREA)

    person = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)[20:512, 130:360]
    person = cv2.resize(person, (round(person.shape[1] * 300 / person.shape[0]), 300))
    street = _street()
    street[140:440, 240:240 + person.shape[1]] = person
    return {
        "astronaut (person)": bgr(data.astronaut()),
        "camera (person)": bgr(cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2RGB)),
        "street+astronaut (person)": street,
        "coffee (nobody)": bgr(data.coffee()),
        "cat (nobody)": bgr(data.cat()),
    }


def _settings(detector: str, all_frames: bool) -> object:
    from edge.vision.config import VisionSettings

    return VisionSettings(detector=detector, threads=1, all_frames=all_frames)


def _run_pipeline(detector: str, all_frames: bool, n: int) -> tuple[float, float, int]:
    """(frames/s, CPU s per frame, detector runs) over ``n`` quiet frames."""
    from edge.clock import FakeClock
    from edge.vision.pipeline import VisionPipeline

    clock = FakeClock()
    pipe = VisionPipeline(_settings(detector, all_frames), clock)  # type: ignore[arg-type]
    frames = _quiet_frames()
    now = clock.now()
    for f in frames[:3]:  # warm-up: the gate learns, onnxruntime allocates
        pipe.process(f, now)
        clock.advance(1 / 15)
    runs = 0
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        pipe.process(frames[i % len(frames)], now)
        runs += pipe.last.ran_detector
        clock.advance(1 / 15)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return n / wall, cpu / n, runs


def _median_ms(fn: Callable[[], object], n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def child_rss(detector: str) -> dict[str, float]:
    """Peak RSS of a process running the pipeline (no scikit-image, no bench extras)."""
    cv2.setNumThreads(1)
    from edge.clock import FakeClock
    from edge.vision.pipeline import VisionPipeline

    frames = _quiet_frames(4)
    before = _hwm_mb()
    clock = FakeClock()
    pipe = VisionPipeline(_settings(detector, True), clock)  # type: ignore[arg-type]
    for i in range(50):
        pipe.process(frames[i % 4], clock.now())
        clock.advance(0.1)
    return {"before_mb": before, "peak_mb": _hwm_mb()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--detector", default="ssdlite_person", help="detector backend (default ssdlite_person)")
    parser.add_argument("--gated-frames", type=int, default=600)
    parser.add_argument("--ungated-frames", type=int, default=60)
    parser.add_argument("--child-rss", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_rss:
        print(json.dumps(child_rss(args.detector)))
        return 0

    cv2.setNumThreads(1)
    from edge.vision import ModelError, create

    started = time.perf_counter()
    print(f"# {platform.machine()} Python {platform.python_version()}, opencv {cv2.__version__}, "
          f"640x480, one thread, detector {args.detector}")
    try:
        gated = _run_pipeline(args.detector, False, args.gated_frames)
        ungated = _run_pipeline(args.detector, True, args.ungated_frames)
        det = create(args.detector, threads=1)
    except ModelError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1

    print("\n## Quiet scene through VisionPipeline (tamper checks included)")
    print(f"{'mode':<28} {'frames':>7} {'det runs':>9} {'frames/s':>9} {'CPU ms/frame':>13}")
    for name, n, (fps, cpu, runs) in (
        ("motion gate", args.gated_frames, gated),
        ("detector on every frame", args.ungated_frames, ungated),
    ):
        print(f"{name:<28} {n:>7} {runs:>9} {fps:9.1f} {cpu * 1000:13.2f}")
    ratio = gated[1] / ungated[1]
    print(f"gated >= 25 fps: {'yes' if gated[0] >= 25 else 'NO'} ({gated[0]:.0f}); "
          f"gated CPU/frame = {ratio:.3f} x ungated (target <= 0.2: {'yes' if ratio <= 0.2 else 'NO'})")

    frame = _photos()["street+astronaut (person)"]
    det.detect(frame)
    infer = _median_ms(lambda: det.detect(frame), 50)
    print(f"\n## {args.detector} inference, median of 50 (resize, colour and decoding included): {infer:.1f} ms")

    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def hog_detect(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return hog.detectMultiScale(img, winStride=(8, 8), padding=(8, 8), scale=1.05)

    print(f"\n## {args.detector} vs OpenCV HOG people detector (threshold {det.threshold}; HOG weight > 0.5)")
    print(f"{'photo':<28} {'det ms':>7} {'det hits (best)':>16} {'HOG ms':>7} {'HOG hits (best)':>16}")
    for name, img in _photos().items():
        found = det.detect(img)
        people = [d for d in found if d.label == "person"]
        d_ms = _median_ms(lambda img=img: det.detect(img), 5)
        rects, weights = hog_detect(img)
        w = np.asarray(weights, dtype=np.float64).ravel()
        hits = w[w > 0.5]
        h_ms = _median_ms(lambda img=img: hog_detect(img), 3)
        d_best = f"{len(people)} ({people[0].score:.2f})" if people else "0"
        h_best = f"{len(hits)} ({hits.max():.2f})" if hits.size else "0"
        print(f"{name:<28} {d_ms:7.1f} {d_best:>16} {h_ms:7.1f} {h_best:>16}")

    proc = subprocess.run([sys.executable, __file__, "--child-rss", "--detector", args.detector],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"\nRSS child failed: {proc.stderr.strip()[-500:]}")
        return 1
    rss = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"\n## Peak RSS, a process running the pipeline with {args.detector} loaded (50 frames)")
    print(f"before loading {rss['before_mb']:.0f} MB, peak {rss['peak_mb']:.0f} MB "
          f"(target <= 150 MB: {'yes' if rss['peak_mb'] <= 150 else 'NO'})")
    print(f"\n# done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
