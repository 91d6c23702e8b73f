"""Camera tamper: a covered or sprayed lens, a camera turned away or knocked out of focus, a lost feed.

Each check is built to ignore light. Dusk, night dimming, a street lamp or auto-exposure
change the image roughly by a gain and an offset, ``g * x + b``; so

* **covered**: the grey level's standard deviation collapses (a hand, tape, paint or a thick
  spray leaves an almost uniform image) *and* the reference scene's structure is gone. A very
  dim night scene also has a small deviation, but it still correlates with the reference.
* **turned**: the zero-mean, unit-variance correlation between a small blurred copy of the
  frame and the learned reference view. Correlation is unchanged by ``g * x + b``; a different
  view correlates near zero. People passing lower it for a moment; it must stay low ``hold_s``.
* **defocused**: Laplacian variance divided by grey variance (sharpness per unit of contrast,
  again independent of the gain) falls far below the reference's. Defocus also lowers the
  correlation only a little, since the small copy is blurred anyway, so the two stay apart.
* **feed_lost**: no frame (``None``) for ``feed_lost_s``.

The reference is averaged over the first ``learn_s`` seconds and then follows the scene
slowly while the view matches it (shadows move over a day), never while a fault is
suspected. Each fault is reported once per episode and re-armed when the view is normal again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from edge.vision.config import TamperSettings

REASONS = ("covered", "turned", "defocused", "feed_lost")
_SMALL = (64, 48)  # correlation size
_SHARP_W = 320  # sharpness measured at this width
_COVERED_SIMILARITY = 0.5  # below this a low-contrast view no longer shows the reference scene


@dataclass(frozen=True, slots=True)
class TamperEvent:
    reason: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TamperMeasures:
    std: float
    similarity: float | None  # None until a reference exists
    sharpness_ratio: float | None


def _features(frame: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(normalised small grey, grey std, sharpness) of a BGR or grey frame."""
    grey = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    h, w = grey.shape
    mid = cv2.resize(grey, (_SHARP_W, max(1, round(h * _SHARP_W / w))), interpolation=cv2.INTER_AREA)
    mid_f = mid.astype(np.float32)
    std = float(mid_f.std())
    lap = cv2.Laplacian(mid_f, cv2.CV_32F, ksize=3)
    sharpness = float(lap.var()) / max(std * std, 1.0)
    small = cv2.resize(mid_f, _SMALL, interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (5, 5), 0)
    small = (small - small.mean()) / max(float(small.std()), 1e-3)
    return small, std, sharpness


def frame_measures(frame: np.ndarray) -> tuple[float, float]:
    """(grey std, contrast-normalised sharpness) of one frame: the self-test's camera check uses the same
    measures as tamper detection (edge/selftest/camera.py)."""
    _, std, sharp = _features(frame)
    return std, sharp


class TamperDetector:
    """Feed it every frame (or None) with the injected clock's monotonic time."""

    def __init__(self, settings: TamperSettings | None = None) -> None:
        self.s = settings or TamperSettings()
        self._ref: np.ndarray | None = None
        self._ref_sharp = 0.0
        self._learn_start: float | None = None
        self._learn_n = 0
        self._last_check: float | None = None
        self._last_frame: float | None = None
        self._since: dict[str, float] = {}  # reason -> when the condition started
        self._fired: set[str] = set()
        self.measures: TamperMeasures | None = None

    @property
    def learning(self) -> bool:
        return self._ref is None or (
            self._learn_start is not None and self._last_check is not None
            and self._last_check - self._learn_start < self.s.learn_s
        )

    @property
    def reference_sharpness(self) -> float | None:
        """The learned view's sharpness (None before one is learned)."""
        return None if self._ref is None else self._ref_sharp

    def reset(self) -> None:
        """Forget the reference view (after an installer re-aimed the camera on purpose)."""
        self._ref, self._learn_start, self._learn_n = None, None, 0
        self._since.clear()
        self._fired.clear()

    def update(self, frame: np.ndarray | None, now: float) -> list[TamperEvent]:
        if not self.s.enabled:
            return []
        if frame is None:
            if self._last_frame is None:
                self._last_frame = now  # lost from the start: count from the first call
            lost = now - self._last_frame
            if lost >= self.s.feed_lost_s and "feed_lost" not in self._fired:
                self._fired.add("feed_lost")
                return [TamperEvent("feed_lost", {"reason": "feed_lost", "lost_s": round(lost, 1)})]
            return []
        self._last_frame = now
        self._fired.discard("feed_lost")
        if self._last_check is not None and now - self._last_check < self.s.check_every_s:
            return []
        self._last_check = now
        small, std, sharp = _features(frame)
        similarity = ratio = None
        if self._ref is not None:
            similarity = float((small * self._ref).mean())
            ratio = sharp / max(self._ref_sharp, 1e-6)
        # Blank *and* the scene's structure gone: a very dark night keeps its structure.
        blank = std < self.s.covered_std and (similarity is None or similarity < _COVERED_SIMILARITY)
        conditions = {"covered": blank}
        if ratio is not None and similarity is not None and not blank:
            conditions["defocused"] = ratio < self.s.defocus_ratio
            conditions["turned"] = similarity < self.s.turned_similarity and not conditions["defocused"]
        self.measures = TamperMeasures(std, similarity, ratio)
        if not any(conditions.values()) and std >= self.s.covered_std:
            self._learn(small, sharp, now, similarity)
        events: list[TamperEvent] = []
        for reason in ("covered", "turned", "defocused"):
            if not conditions.get(reason, False):
                self._since.pop(reason, None)
                if reason in self._fired and not any(conditions.values()):
                    self._fired.discard(reason)  # normal again: re-arm
                continue
            start = self._since.setdefault(reason, now)
            if now - start >= self.s.hold_s and reason not in self._fired:
                self._fired.add(reason)
                data: dict[str, Any] = {"reason": reason, "duration_s": round(now - start, 1),
                                        "std": round(std, 1)}
                if similarity is not None:
                    data["similarity"] = round(similarity, 3)
                if ratio is not None:
                    data["sharpness_ratio"] = round(ratio, 3)
                events.append(TamperEvent(reason, data))
        return events

    def _learn(self, small: np.ndarray, sharp: float, now: float, similarity: float | None) -> None:
        if self._ref is None:
            self._ref, self._ref_sharp, self._learn_start, self._learn_n = small.copy(), sharp, now, 1
            return
        assert self._learn_start is not None
        if now - self._learn_start < self.s.learn_s:  # start: a plain average
            self._learn_n += 1
            w = 1.0 / self._learn_n
        elif similarity is not None and similarity > 0.8:  # then follow a matching scene slowly
            w = 0.02
        else:
            return
        ref = (1 - w) * self._ref + w * small
        self._ref = (ref - ref.mean()) / max(float(ref.std()), 1e-3)
        self._ref_sharp = (1 - w) * self._ref_sharp + w * sharp
