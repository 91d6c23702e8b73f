"""A cheap motion gate in front of the detector.

A Pi 4 runs the person detector at a few frames a second with two cores, and a street is
empty most of the night. Comparing a ~100-px-high grey copy of each frame with a running
background costs a millisecond or two (``bench/detector.py`` measures it), against tens to
hundreds for the detector, so the detector runs only when something moved.

What it must not mistake for motion:

* gradual light (dusk, clouds): the background follows the scene at rate ``alpha``;
* a small light step (auto-exposure settling): each frame is compared with the background
  mapped through a gain and offset fitted to both images' quantiles, so it cancels out;
* a big light step (a street lamp switching on, the IR filter flipping) or a change over
  most of the view: the background is re-learned from that frame, and the detector runs on
  it once to look (as on the first frame) — one detector run, not minutes of false motion;
* night grain: the threshold is ``noise_k`` times the noise measured in the difference
  (a running median-absolute-deviation estimate), never below ``min_threshold``, after an
  area-averaging resize and a blur that already average most grain away.

The gate only decides when to *start* looking; the tracker keeps detection running on
objects that stop moving, which fade into the background after a while.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

MotionBox = tuple[int, int, int, int]
_GROUPS = 8  # brightness groups for the light fit


@dataclass(frozen=True, slots=True)
class MotionResult:
    """Whether to run the detector on this frame, and where things moved (frame pixels)."""

    run_detector: bool
    boxes: list[MotionBox] = field(default_factory=list)
    changed: float = 0.0  # fraction of the view that differs from the background
    reset: bool = False  # the background was (re-)learned from this frame

    @property
    def motion(self) -> bool:
        return bool(self.boxes)


class MotionGate:
    """Background subtraction on a downscaled grey frame; call ``update`` once per frame."""

    def __init__(
        self,
        *,
        height: int = 100,
        alpha: float = 0.05,
        min_threshold: float = 10.0,
        noise_k: float = 4.0,
        min_area: float = 0.0005,
        light_jump: float = 12.0,
        reset_fraction: float = 0.6,
        hold_frames: int = 2,
    ) -> None:
        """``alpha``: background learning rate per frame; ``min_area``: smallest motion as a
        fraction of the view; ``light_jump``: a global level change (grey levels) that makes
        the gate re-learn instead of compensating; ``hold_frames``: frames the detector keeps
        running after motion stops."""
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.height = height
        self.alpha = alpha
        self.min_threshold = min_threshold
        self.noise_k = noise_k
        self.min_area = min_area
        self.light_jump = light_jump
        self.reset_fraction = reset_fraction
        self.hold_frames = hold_frames
        self._bg: np.ndarray | None = None
        self._noise: float | None = None
        self._hold = 0
        self._factor = 1  # frame pixels per small pixel
        self._kernel = np.ones((3, 3), np.uint8)

    def reset(self) -> None:
        """Forget the background (after the camera moved or the masks changed)."""
        self._bg, self._noise, self._hold = None, None, 0

    def update(self, frame_bgr: np.ndarray) -> MotionResult:
        grey = self._small_grey(frame_bgr)
        if self._bg is None or self._bg.shape != grey.shape:
            return self._relearn(grey, 0.0)
        bg = self._bg
        matched, light_shift = _match_light(bg, grey)
        diff = np.abs(grey - matched)
        sigma = 1.4826 * float(np.median(diff))
        # A changed view inflates this frame's estimate; allow the noise to double, not more.
        noise = sigma if self._noise is None else min(sigma, 2.0 * self._noise)
        mask = (diff > max(self.min_threshold, self.noise_k * noise)).astype(np.uint8)
        changed = float(mask.mean())
        if light_shift > self.light_jump or changed > self.reset_fraction:
            return self._relearn(grey, changed)
        self._noise = noise if self._noise is None else 0.8 * self._noise + 0.2 * noise
        # Still parts are learned at ``alpha``, moving parts four times slower.
        cv2.accumulateWeighted(grey, bg, self.alpha, mask=1 - mask)
        cv2.accumulateWeighted(grey, bg, self.alpha / 4, mask=mask)
        boxes = self._boxes(cv2.dilate(mask, self._kernel), frame_bgr.shape[1], frame_bgr.shape[0])
        if boxes:
            self._hold = self.hold_frames
            return MotionResult(run_detector=True, boxes=boxes, changed=changed)
        run = self._hold > 0
        self._hold = max(0, self._hold - 1)
        return MotionResult(run_detector=run, changed=changed)

    def _relearn(self, grey: np.ndarray, changed: float) -> MotionResult:
        self._bg, self._hold = grey.copy(), 0
        return MotionResult(run_detector=True, changed=changed, reset=True)

    def _small_grey(self, frame: np.ndarray) -> np.ndarray:
        """Grey, shrunk by a whole factor to about ``height`` rows (INTER_AREA is ~5x faster for
        whole factors), and blurred: each small pixel averages a block, which is most of the
        grain gone before any threshold."""
        if frame.ndim == 3:
            frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        h, w = frame.shape
        f = self._factor = max(1, round(h / self.height))
        if f > 1:
            frame = cv2.resize(
                frame[: h - h % f, : w - w % f], (w // f, h // f), interpolation=cv2.INTER_AREA
            )
        return cv2.GaussianBlur(frame.astype(np.float32), (5, 5), 0)

    def _boxes(self, mask: np.ndarray, fw: int, fh: int) -> list[MotionBox]:
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        min_px = self.min_area * mask.size
        small = [(x, y, x + w, y + h) for x, y, w, h, area in stats[1:n].tolist() if area >= min_px]
        f = self._factor
        boxes = [
            (x1 * f, y1 * f, min(fw, x2 * f), min(fh, y2 * f)) for x1, y1, x2, y2 in _merge(small, margin=2)
        ]
        boxes.sort(key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))
        return boxes


def _match_light(bg: np.ndarray, grey: np.ndarray) -> tuple[np.ndarray, float]:
    """The background under this frame's light (``gain * bg + offset``, clipped like a sensor)
    and how far that light moved the typical grey level.

    The line is fitted through medians of pixel *pairs* grouped by background brightness: a
    moving object changes its own pixels only, so each group's median holds until half of
    that group changed. Groups near black or white are left out, because clipped highlights
    and crushed shadows do not follow a line. A sample of every third pixel is plenty.
    """
    b, g = bg.ravel()[::3], grey.ravel()[::3]
    k = b.size // _GROUPS
    order = np.argsort(b)[: k * _GROUPS]
    xb = np.median(b[order].reshape(_GROUPS, k), axis=1)
    yg = np.median(g[order].reshape(_GROUPS, k), axis=1)
    ok = (yg > 3.0) & (yg < 252.0)
    gain, offset = 1.0, float(np.median(yg - xb))
    if ok.sum() >= 3 and float(np.ptp(xb[ok])) > 8.0:
        x, y = xb[ok], yg[ok]
        gain = float(((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum())
        offset = float(y.mean() - gain * x.mean())
        if not 0.5 <= gain <= 2.0:  # not a change of light: leave it to the motion mask
            gain, offset = 1.0, float(np.median(yg - xb))
    shift = float(np.median(np.abs((gain - 1.0) * xb + offset)))
    return np.clip(gain * bg + offset, 0.0, 255.0), shift


def _merge(boxes: list[MotionBox], margin: int) -> list[MotionBox]:
    """Union boxes closer than ``margin``: one object whose grey matches the background in
    places (a shirt the colour of the wall) is otherwise reported in pieces."""
    out = list(boxes)
    merged = True
    while merged:
        merged = False
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                a, b = out[i], out[j]
                if (
                    a[0] - margin <= b[2]
                    and b[0] - margin <= a[2]
                    and a[1] - margin <= b[3]
                    and b[1] - margin <= a[3]
                ):
                    out[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    del out[j]
                    merged = True
                    break
            if merged:
                break
    return out
