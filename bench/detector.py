#!/usr/bin/env python3
"""Per-model detector latency (p50/p99, pre- and post-processing included) on 640x480 frames,
and each model's peak RSS — the two figures that decide what a Pi 4 can run beside the agent.

Each model runs in its own child process so its peak RSS is its own. The motion gate is
measured the same way, for scale. Models come from ``$PINGAN_MODEL_DIR`` (build them with
``python models/build_models.py``).

Usage: python bench/detector.py [--threads 2] [--frames 200] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SUBJECTS = ("ssdlite_person", "centernet_coco", "motion_gate")


def _frames(n: int) -> Iterator[np.ndarray]:
    """Real photos at 640x480, each shifted a little per frame so no two inputs are equal.

    Made one at a time: a list of 200 frames would be 180 MB of the peak RSS we measure."""
    import cv2
    from skimage import data

    photos = [data.astronaut(), cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2RGB), data.coffee()]
    photos.append(data.stereo_motorcycle()[0])
    base = [cv2.resize(cv2.cvtColor(p, cv2.COLOR_RGB2BGR), (640, 480)) for p in photos]
    for i in range(n):
        yield np.roll(base[i % len(base)], shift=i % 7, axis=1)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(subject: str, threads: int, n: int, warmup: int) -> dict[str, float]:
    frames = _frames(n + warmup)
    first = next(frames)  # photos loaded and libraries imported before the baseline
    base_rss = _peak_rss_mb()
    t0 = time.perf_counter()
    if subject == "motion_gate":
        from edge.vision import MotionGate

        run = MotionGate().update
    else:
        from edge.vision import create

        run = create(subject, threads=threads).detect
    load_s = time.perf_counter() - t0
    times = []
    for i, frame in enumerate(itertools.chain([first], frames)):
        t = time.perf_counter()
        run(frame)
        if i >= warmup:
            times.append((time.perf_counter() - t) * 1000)
    ms = np.array(times)
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "load_s": load_s,
        "peak_rss_mb": _peak_rss_mb(),
        "rss_before_load_mb": base_rss,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads (default 2)")
    parser.add_argument("--frames", type=int, default=200, help="timed frames per model (default 200)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--only", nargs="*", choices=SUBJECTS, default=list(SUBJECTS))
    parser.add_argument("--child", choices=SUBJECTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        from edge.vision import ModelError

        try:
            print(json.dumps(child(args.child, args.threads, args.frames, args.warmup)))
        except ModelError as exc:
            print(f"bench: {exc}", file=sys.stderr)
            return 1
        return 0

    import platform

    print(
        f"# {platform.machine()} {platform.python_version()}, 640x480 BGR frames, "
        f"{args.frames} timed after {args.warmup} warm-up, threads={args.threads}"
    )
    head = ("subject", "p50 ms", "p99 ms", "mean ms", "load s", "RSS before MB", "peak RSS MB")
    print(f"{head[0]:<16} {head[1]:>8} {head[2]:>8} {head[3]:>8} {head[4]:>7} {head[5]:>14} {head[6]:>12}")
    failed = 0
    for subject in args.only:
        cmd = [
            sys.executable,
            __file__,
            "--child",
            subject,
            "--threads",
            str(args.threads),
            "--frames",
            str(args.frames),
            "--warmup",
            str(args.warmup),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            failed += 1
            why = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
            print(f"{subject:<16} failed: {why}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(
            f"{subject:<16} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['mean_ms']:8.2f} {r['load_s']:7.2f} "
            f"{r['rss_before_load_mb']:14.0f} {r['peak_rss_mb']:12.0f}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
