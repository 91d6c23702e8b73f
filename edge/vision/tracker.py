"""IoU tracking: the same person on consecutive frames keeps one track id.

A pole reports one ``detection.person`` per person entering a zone, not one per frame, and
loitering is a track's dwell time; both need identity across frames. At a few detector runs a
second, people move a fraction of their own width between runs, so greedy matching by box
overlap (highest IoU first, same category only) is enough — SORT without the Kalman filter.

Time is the injected clock's ``monotonic()`` (a Pi without an RTC may step its wall clock at
NTP sync; a dwell time must not jump with it).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from edge.vision.detector import Box, Detection


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

    @property
    def category(self) -> str:
        return Detection(self.label, self.score, self.box).category

    def dwell(self, zone: str, now: float) -> float:
        start = self.entered.get(zone)
        return 0.0 if start is None else max(0.0, now - start)


class Tracker:
    """Greedy IoU tracker; ``update`` once per detector run with that run's detections."""

    def __init__(self, *, iou: float = 0.3, max_age_s: float = 2.0, confirm_frames: int = 2) -> None:
        if not 0.0 < iou < 1.0:
            raise ValueError(f"iou must be between 0 and 1, got {iou}")
        self.iou, self.max_age_s, self.confirm_frames = iou, max_age_s, confirm_frames
        self.tracks: list[Track] = []
        self._ids = itertools.count(1)

    def update(self, detections: list[Detection], now: float) -> list[Track]:
        """Match detections to tracks, start new tracks, drop stale ones; returns the tracks
        updated by this call (matched or new)."""
        self.expire(now)
        dets = list(detections)
        updated: list[Track] = []
        if self.tracks and dets:
            ious = iou_matrix(
                np.array([t.box for t in self.tracks], dtype=np.float64),
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
                track, det = self.tracks[ti], dets[di]
                track.box, track.score, track.label = det.box, det.score, det.label
                track.best_score = max(track.best_score, det.score)
                track.last_seen = now
                track.hits += 1
                updated.append(track)
            dets = [d for i, d in enumerate(dets) if i not in used_d]
        for det in dets:
            track = Track(next(self._ids), det.label, det.score, det.box, now, now, best_score=det.score)
            self.tracks.append(track)
            updated.append(track)
        return updated

    def expire(self, now: float) -> list[Track]:
        """Drop tracks unseen for ``max_age_s``; returns the dropped ones."""
        gone = [t for t in self.tracks if now - t.last_seen > self.max_age_s]
        if gone:
            self.tracks = [t for t in self.tracks if now - t.last_seen <= self.max_age_s]
        return gone

    def confirmed(self, track: Track) -> bool:
        return track.hits >= self.confirm_frames

    @property
    def active(self) -> bool:
        """Whether anything is being followed (the detector keeps running while it is)."""
        return bool(self.tracks)

    def __repr__(self) -> str:
        return f"<Tracker tracks={[t.track_id for t in self.tracks]} iou={self.iou} max_age_s={self.max_age_s}>"
