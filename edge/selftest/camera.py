"""The camera check: a fresh frame that is not blank or covered and is in focus.

It uses tamper detection's own measures (edge/vision/tamper.py ``frame_measures``): grey-level spread
for blank/covered, contrast-normalised sharpness against the learned view's for focus. Without a learned
view (no detection pipeline on this pole) focus cannot be judged against anything, and the check says so.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from edge.protocol import SelftestCheck


async def camera_check(read: Callable[[], Any], *, reference_sharpness: Callable[[], float | None] = lambda: None,
                       covered_std: float = 6.0, defocus_ratio: float = 0.25) -> SelftestCheck:
    from edge.vision.tamper import frame_measures  # OpenCV only where a camera is checked

    started = time.monotonic()
    frame = await asyncio.to_thread(read)
    if frame is None:
        return SelftestCheck(name="camera", status="fail", detail="no frame from the camera")
    std, sharp = await asyncio.to_thread(frame_measures, frame)
    age = round(time.monotonic() - started, 3)
    if std < covered_std:
        return SelftestCheck(name="camera", status="fail", value=round(std, 1), limit=covered_std, unit="grey std",
                             detail="blank or covered: the picture has almost no contrast")
    ref = reference_sharpness()
    if ref is None:
        return SelftestCheck(name="camera", status="pass", value=round(std, 1), limit=covered_std, unit="grey std",
                             detail=f"fresh frame in {age} s; focus not judged (no learned view on this pole)")
    ratio = sharp / max(ref, 1e-6)
    if ratio < defocus_ratio:
        return SelftestCheck(name="camera", status="fail", value=round(ratio, 3), limit=defocus_ratio,
                             unit="sharpness ratio", detail="out of focus compared with the learned view")
    return SelftestCheck(name="camera", status="pass", value=round(ratio, 3), limit=defocus_ratio,
                         unit="sharpness ratio", detail=f"fresh frame in {age} s, in focus")
