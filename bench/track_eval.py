#!/usr/bin/env python3
"""How often the node's tracker breaks a person's track on real CCTV (a proxy, not ID switches).

Runs the whole node chain (``VisionPipeline``: motion gate, regions, detector at
``max_detect_fps``, tracker, a whole-frame zone) over ``vtest.avi`` (795 frames, 79.5 s of a
campus crossing, ~20 different people, groups crossing each other and passing behind a sign)
with the tracker's Kalman prediction on and off (and, for reference, the node as it was: the
whole frame on every frame with motion, no prediction), and counts:

* tracks started and confirmed — every confirmed track is one ``detection.person`` event, so a
  track broken by an occlusion is a repeated alarm for the same person;
* median confirmed-track life in seconds (longer = fewer breaks).

A track that jumps from one person to another (an identity switch proper) is not seen by
these counts: that needs identities labelled frame by frame, which ``bench/labels`` does not
have yet (docs/detection.md says why).

Usage: python bench/track_eval.py [--detector ssdlite_person] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "models"))

from edge.clock import FakeClock  # noqa: E402
from edge.vision.cli import MediaClock  # noqa: E402
from edge.vision.config import VisionSettings  # noqa: E402
from edge.vision.pipeline import VisionPipeline  # noqa: E402


def run(path: Path, detector: str, threads: int, predict: bool, regions: bool = True) -> dict[str, float]:
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    clock = MediaClock()
    settings = VisionSettings(detector=detector, threads=threads, tamper={"enabled": False},
                              tracker={"predict": predict}, regions={"enabled": regions})
    p = VisionPipeline(settings, FakeClock())
    events = 0
    life: dict[int, tuple[float, float]] = {}
    confirmed: set[int] = set()
    i = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        clock.t = i / fps
        p.clock = clock
        events += sum(e.kind == "detection.person" for e in p.process(frame, clock.now()))
        for t in p.tracker.tracks:
            life[t.track_id] = (t.first_seen, t.last_seen)
            if p.tracker.confirmed(t):
                confirmed.add(t.track_id)
        i += 1
    cap.release()
    spans = [life[t][1] - life[t][0] for t in confirmed]
    return {"tracks": len(life), "confirmed": len(confirmed), "events": events,
            "median_life_s": statistics.median(spans) if spans else 0.0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--detector", default="ssdlite_person")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    from footage import fetch  # type: ignore[import-not-found]

    path = fetch("vtest.avi")
    print(f"== {args.detector} on vtest.avi (795 frames at 10 fps), whole frame as one zone")
    for name, predict, regions in (("before: whole frame, IoU only", False, False),
                                   ("regions, IoU only", False, True),
                                   ("regions, Kalman", True, True)):
        r = run(path, args.detector, args.threads, predict, regions)
        print(f"  {name:<30} tracks {r['tracks']:4d}  confirmed {r['confirmed']:4d}  "
              f"detection.person events {r['events']:4d}  median confirmed life {r['median_life_s']:5.1f} s",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
