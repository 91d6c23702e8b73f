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

Identity switches proper (CLEAR MOT's IDSW) are counted on ``bench/labels/vtest_identities.json``:
frames 640-760 of the same clip, every 10th, with each person's identity labelled by hand (8
people, seven crossings). At each labelled frame the confirmed tracks are matched to the labelled
people (IoU >= 0.5, best pairs first); a person whose matched track differs from the track last
matched to them is one switch. Also printed: how many labelled people had a track (coverage) and
how many tracks a person went through (fragments). Hand-written rather than py-motmetrics: the
count is twenty lines, and motmetrics would bring pandas into the dev install for it.

Usage: python bench/track_eval.py [--detector ssdlite_person] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "models"))

from edge.clock import FakeClock  # noqa: E402
from edge.vision.cli import MediaClock  # noqa: E402
from edge.vision.config import VisionSettings  # noqa: E402
from edge.vision.pipeline import VisionPipeline  # noqa: E402
from edge.vision.tracker import iou_matrix  # noqa: E402

IDENTITIES = ROOT / "bench" / "labels" / "vtest_identities.json"
WARM_S = 10.0  # seconds of the clip the node sees before the first labelled frame (motion history)
MATCH_IOU = 0.5


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


@dataclass
class IdentityScore:
    switches: int  # CLEAR MOT IDSW
    matched: int  # labelled (not difficult) people with a track at their frame
    labelled: int
    fragments: int  # distinct tracks per person, minus one, summed
    people: int
    where: list[str]  # each switch: "frame: person track a -> b"

    def line(self) -> str:
        return (f"identity switches {self.switches:2d}  people tracked {self.matched}/{self.labelled} labelled boxes "
                f"({self.matched / max(1, self.labelled):.0%})  extra tracks per person {self.fragments}/{self.people}"
                + (f"\n{'':34}at frame: person old->new: {', '.join(self.where)}" if len(self.where) <= 8 else ""))


def identity_switches(path: Path, detector: str, threads: int, predict: bool, regions: bool = True,
                      labels: Path = IDENTITIES) -> IdentityScore:
    """Run the node chain from ``WARM_S`` before the first labelled frame to the last; score the confirmed
    tracks against the hand-labelled identities (see the module docstring)."""
    spec = json.loads(labels.read_text())
    truth = {int(k): v for k, v in spec["frames"].items()}
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or 10.0
    start = max(0, min(truth) - int(WARM_S * fps))
    cap.set(cv2.CAP_PROP_POS_FRAMES, start)
    clock = MediaClock()
    settings = VisionSettings(detector=detector, threads=threads, tamper={"enabled": False},
                              tracker={"predict": predict}, regions={"enabled": regions})
    p = VisionPipeline(settings, FakeClock())
    last_track: dict[str, int] = {}
    tracks_of: dict[str, set[int]] = {}
    switches = matched = labelled = 0
    where: list[str] = []
    for i in range(start, max(truth) + 1):
        ok, frame = cap.read()
        if not ok:
            raise RuntimeError(f"{path} ends before frame {i}")
        clock.t = i / fps
        p.clock = clock
        p.process(frame, clock.now())
        if i not in truth:
            continue
        people = [r for r in truth[i] if not r.get("difficult")]
        labelled += len(people)
        now = p.clock.monotonic()
        shown = [t for t in p.tracker.tracks
                 if t.category == "person" and p.tracker.confirmed(t) and now - t.last_seen <= 0.5]
        if not people or not shown:
            continue
        ious = iou_matrix(np.array([r["box"] for r in people], float), np.array([t.box for t in shown], float))
        pairs = sorted(((float(ious[a, b]), a, b) for a in range(len(people)) for b in range(len(shown))),
                       reverse=True)
        used_a: set[int] = set()
        used_b: set[int] = set()
        for iou, a, b in pairs:
            if iou < MATCH_IOU or a in used_a or b in used_b:
                continue
            used_a.add(a)
            used_b.add(b)
            who, track = people[a]["id"], shown[b].track_id
            matched += 1
            if who in last_track and last_track[who] != track:
                switches += 1
                where.append(f"{i}: {who} {last_track[who]}->{track}")
            last_track[who] = track
            tracks_of.setdefault(who, set()).add(track)
    cap.release()
    return IdentityScore(switches, matched, labelled, sum(len(t) - 1 for t in tracks_of.values()), len(tracks_of),
                         where)


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
    print(f"== identity switches on {IDENTITIES.name} (hand-labelled identities, frames 640-760 every 10th)")
    for name, predict, regions in (("before: whole frame, IoU only", False, False),
                                   ("regions, IoU only", False, True),
                                   ("regions, Kalman", True, True)):
        print(f"  {name:<30} {identity_switches(path, args.detector, args.threads, predict, regions).line()}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
