"""Tracking: the same person on consecutive detector runs keeps one track id.

A pole reports one ``detection.person`` per person entering a zone, not one per frame, and
loitering is a track's dwell time; both need identity across frames. Matching is greedy by
box overlap (highest IoU first, same category only). With ``predict`` (the default) each
track carries a constant-velocity Kalman filter on its box centre (SORT's idea), and
detections are matched to where each object *should be now*, not where it was last seen: a
person hidden for a second behind another or behind a sign comes out where the filter
expects them and keeps their id, and two people crossing are not swapped as easily. A
detection that overlaps no prediction may still join a track whose predicted centre is
within half its height and whose size is alike (boxes of small, fast people at 5 runs a
second may not overlap at all). ``bench/track_eval.py`` counts broken tracks on real CCTV
with and without the prediction.

Time is the injected clock's ``monotonic()`` (a Pi without an RTC may step its wall clock at
NTP sync; a dwell time must not jump with it).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from edge.vision.detector import Box, Detection


def _iou(a: Box, b: Box) -> float:
    return float(iou_matrix(np.array([a], np.float64), np.array([b], np.float64))[0, 0])


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes ``a`` [N, 4] and ``b`` [M, 4] (x1, y1, x2, y2)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float64)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


class CentreFilter:
    """Constant-velocity Kalman filter on a box's centre (x and y apart, each [position,
    velocity]); width and height follow the measurements, smoothed. Noise scales with the
    box height, so near and far people are treated alike."""

    def __init__(self, box: Box, t: float) -> None:
        cx, cy, w, h = _cxcywh(box)
        self.t = t
        self.x = np.array([[cx, 0.0], [cy, 0.0]])  # per axis: position, velocity (px/s)
        self.p = np.array([np.diag([(0.1 * h) ** 2, (1.0 * h) ** 2])] * 2)  # covariance per axis
        self.w, self.h = w, h

    def _predicted(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        dt = max(0.0, t - self.t)
        f = np.array([[1.0, dt], [0.0, 1.0]])
        qa = (0.5 * self.h) ** 2  # acceleration noise: half a body height per s^2
        q = qa * np.array([[dt**3 / 3, dt**2 / 2], [dt**2 / 2, dt]])
        x = self.x @ f.T
        p = np.array([f @ pi @ f.T + q for pi in self.p])
        return x, p

    def box(self, t: float) -> Box:
        x, _ = self._predicted(t)
        return _box(float(x[0, 0]), float(x[1, 0]), self.w, self.h)

    def update(self, box: Box, t: float) -> None:
        x, p = self._predicted(t)
        cx, cy, w, h = _cxcywh(box)
        r = (0.05 * h) ** 2 + 1.0  # measurement noise: a box edge wanders ~5 % of the height
        for i, z in enumerate((cx, cy)):
            s = p[i, 0, 0] + r
            k = p[i, :, 0] / s
            x[i] = x[i] + k * (z - x[i, 0])
            p[i] = p[i] - np.outer(k, p[i, 0, :])
        self.x, self.p, self.t = x, p, t
        self.w, self.h = 0.5 * self.w + 0.5 * w, 0.5 * self.h + 0.5 * h


def _cxcywh(b: Box) -> tuple[float, float, float, float]:
    return (b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2] - b[0], b[3] - b[1]


def _box(cx: float, cy: float, w: float, h: float) -> Box:
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


@dataclass(slots=True)
class Track:
    """One object followed across frames."""

    track_id: int
    label: str
    score: float
    box: Box
    first_seen: float
    last_seen: float
    hits: int = 1
    best_score: float = 0.0
    # zone name -> monotonic time the object entered it (continuous presence)
    entered: dict[str, float] = field(default_factory=dict)
    reported: set[str] = field(default_factory=set)  # zones whose entry was reported
    loitered: set[str] = field(default_factory=set)  # zones whose loitering was reported
    # where the object was when it last moved (box, time): a parked car or a person waiting
    # keeps its anchor; once still for ``still_s`` it is looked at by the full pass only
    anchor: Box | None = None
    anchor_t: float = 0.0
    motion: CentreFilter | None = None  # the Kalman filter, when the tracker predicts

    @property
    def category(self) -> str:
        return Detection(self.label, self.score, self.box).category

    def dwell(self, zone: str, now: float) -> float:
        start = self.entered.get(zone)
        return 0.0 if start is None else max(0.0, now - start)


class Tracker:
    """Greedy IoU tracker; ``update`` once per detector run with that run's detections."""

    def __init__(
        self,
        *,
        iou: float = 0.3,
        max_age_s: float = 2.0,
        confirm_frames: int = 2,
        still_s: float = 3.0,
        still_max_age_s: float | None = None,
        predict: bool = True,
    ) -> None:
        """``still_s``: a track whose box stayed put (IoU >= 0.8 with where it last moved) this
        long is *still*; ``still_max_age_s``: how long a still track lives unseen (the pipeline
        sets it past its full-pass interval, since only the full pass looks at still objects)."""
        if not 0.0 < iou < 1.0:
            raise ValueError(f"iou must be between 0 and 1, got {iou}")
        self.iou, self.max_age_s, self.confirm_frames = iou, max_age_s, confirm_frames
        self.still_s = still_s
        self.still_max_age_s = max(max_age_s, still_max_age_s or max_age_s)
        self.predict = predict
        self.tracks: list[Track] = []
        self._ids = itertools.count(1)

    def update(self, detections: list[Detection], now: float) -> list[Track]:
        """Match detections to tracks, start new tracks, drop stale ones; returns the tracks
        updated by this call (matched or new)."""
        self.expire(now)
        dets = list(detections)
        updated: list[Track] = []
        if self.tracks and dets:
            expected = [self.expected(t, now) for t in self.tracks]
            ious = iou_matrix(
                np.array(expected, dtype=np.float64),
                np.array([d.box for d in dets], dtype=np.float64),
            )
            for ti, track in enumerate(self.tracks):  # never match across categories
                for di, det in enumerate(dets):
                    if det.category != track.category:
                        ious[ti, di] = 0.0
            used_t: set[int] = set()
            used_d: set[int] = set()
            for flat in np.argsort(-ious, axis=None, kind="stable"):
                ti, di = divmod(int(flat), ious.shape[1])
                if ious[ti, di] < self.iou:
                    break
                if ti in used_t or di in used_d:
                    continue
                used_t.add(ti)
                used_d.add(di)
                self._follow(self.tracks[ti], dets[di], now)
                updated.append(self.tracks[ti])
            if self.predict:  # no overlap left: a near, alike box where the filter expects one
                for ti, di in self._near(expected, dets, used_t, used_d):
                    used_t.add(ti)
                    used_d.add(di)
                    self._follow(self.tracks[ti], dets[di], now)
                    updated.append(self.tracks[ti])
            dets = [d for i, d in enumerate(dets) if i not in used_d]
        for det in dets:
            track = Track(next(self._ids), det.label, det.score, det.box, now, now, best_score=det.score,
                          anchor=det.box, anchor_t=now,
                          motion=CentreFilter(det.box, now) if self.predict else None)
            self.tracks.append(track)
            updated.append(track)
        return updated

    def expected(self, track: Track, now: float) -> Box:
        """Where ``track``'s object should be at ``now``: the filter's prediction, or its last box."""
        return track.motion.box(now) if track.motion is not None else track.box

    def _follow(self, track: Track, det: Detection, now: float) -> None:
        track.box, track.score, track.label = det.box, det.score, det.label
        track.best_score = max(track.best_score, det.score)
        track.last_seen = now
        if track.anchor is None or _iou(track.anchor, det.box) < 0.8:
            track.anchor, track.anchor_t = det.box, now
        if track.motion is not None:
            track.motion.update(det.box, now)
        track.hits += 1

    def _near(
        self, expected: list[Box], dets: list[Detection], used_t: set[int], used_d: set[int]
    ) -> list[tuple[int, int]]:
        """Greedy pairs (track, detection), nearest first, of unmatched ones of one category
        whose centres are within half the track's height and whose heights are alike."""
        pairs: list[tuple[float, int, int]] = []
        for ti, (track, box) in enumerate(zip(self.tracks, expected, strict=True)):
            if ti in used_t:
                continue
            cx, cy, _, h = _cxcywh(box)
            for di, det in enumerate(dets):
                if di in used_d or det.category != track.category:
                    continue
                dx, dy, _, dh = _cxcywh(det.box)
                dist = float(np.hypot(dx - cx, dy - cy))
                if dist <= 0.5 * h and 0.7 <= dh / max(h, 1e-6) <= 1.4:
                    pairs.append((dist, ti, di))
        out: list[tuple[int, int]] = []
        for _, ti, di in sorted(pairs):
            if ti not in {t for t, _ in out} and di not in {d for _, d in out}:
                out.append((ti, di))
        return out

    def expire(self, now: float) -> list[Track]:
        """Drop tracks unseen for ``max_age_s``; returns the dropped ones."""
        gone = [t for t in self.tracks if now - t.last_seen > self._max_age(t)]
        if gone:
            self.tracks = [t for t in self.tracks if now - t.last_seen <= self._max_age(t)]
        return gone

    def still(self, track: Track) -> bool:
        """Whether the object has not moved for ``still_s`` (as of its last sighting)."""
        return track.last_seen - track.anchor_t >= self.still_s

    def _max_age(self, track: Track) -> float:
        return self.still_max_age_s if self.still(track) else self.max_age_s

    @property
    def moving(self) -> list[Track]:
        """Tracks that are not still: the detector follows these every run."""
        return [t for t in self.tracks if not self.still(t)]

    def confirmed(self, track: Track) -> bool:
        return track.hits >= self.confirm_frames

    @property
    def active(self) -> bool:
        """Whether anything is being followed (the detector keeps running while it is)."""
        return bool(self.tracks)

    def __repr__(self) -> str:
        return f"<Tracker tracks={[t.track_id for t in self.tracks]} iou={self.iou} max_age_s={self.max_age_s}>"
