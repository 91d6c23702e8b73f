"""The one thread that owns a pole's camera (design.md: one process owns the camera and shares
frames with detection, snapshots and live view).

It reads frames at a steady rate, keeps the newest for alarm snapshots, feeds the pre-press
burst ring and the vision pipeline, and hands pipeline events to the node's asyncio loop. A dead
camera is not a crash: ``read()`` returns None, the pipeline turns a lasting gap into
``tamper.camera`` (feed lost), and alarms go out without a picture.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from edge.clock import Clock

log = logging.getLogger(__name__)


class CameraWorker:
    def __init__(self, camera: Any, clock: Clock, *, fps: float = 5.0, pipeline: Any | None = None,
                 ring: Any | None = None, on_events: Callable[[list[Any]], None] = lambda events: None) -> None:
        self.camera = camera
        self.clock = clock
        self.period = 1.0 / fps
        self.pipeline = pipeline
        self.ring = ring
        self.on_events = on_events
        self._latest: np.ndarray | None = None
        self._latest_at = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="camera", daemon=True)
        self.frames = 0
        self.last_progress = time.monotonic()
        # live view (edge/live): called in this thread with every new frame; while any is registered the
        # camera is read at ``live_fps`` but the pipeline still runs at ``fps`` (its CPU does not grow)
        self._listeners: list[Callable[[np.ndarray], None]] = []
        self.live_fps: float | None = None
        self._pipeline_due = 0.0

    def add_listener(self, fn: Callable[[np.ndarray], None], fps: float) -> None:
        """Hand every new frame to ``fn`` (camera thread; it must not modify or keep blocking on it)."""
        with self._lock:
            self._listeners.append(fn)
            self.live_fps = max(fps, self.live_fps or 0.0)

    def remove_listener(self, fn: Callable[[np.ndarray], None]) -> None:
        with self._lock:
            if fn in self._listeners:
                self._listeners.remove(fn)
            if not self._listeners:
                self.live_fps = None

    def start(self) -> CameraWorker:
        self._thread.start()
        return self

    def read(self) -> np.ndarray | None:
        """The newest frame, if it is fresh (a stale frame would misrepresent the scene)."""
        with self._lock:
            if self._latest is None or time.monotonic() - self._latest_at > max(2.0, 5 * self.period):
                return None
            return self._latest.copy()

    @property
    def fps(self) -> float:
        return 1.0 / self.period

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                frame = self.camera.read()
            except Exception as exc:  # noqa: BLE001 - a camera driver error must not end the thread
                log.error("camera read failed: %s", exc)
                frame = None
            if frame is not None:
                with self._lock:
                    self._latest, self._latest_at = frame, time.monotonic()
                self.frames += 1
                if self.ring is not None:
                    self.ring.add(frame)
                with self._lock:
                    listeners = list(self._listeners)
                for fn in listeners:
                    try:
                        fn(frame)
                    except Exception:  # noqa: BLE001 - a live viewer's trouble never stops the camera
                        log.exception("live frame listener failed")
            due = started >= self._pipeline_due
            if due:
                self._pipeline_due = started + self.period * 0.95
            if self.pipeline is not None and due:
                try:
                    events = self.pipeline.process(frame, self.clock.now())
                except Exception:  # noqa: BLE001 - keep watching; the log says what broke
                    log.exception("vision pipeline failed on a frame")
                    events = []
                if events:
                    self.on_events(events)
            self.last_progress = time.monotonic()
            period = min(self.period, 1.0 / self.live_fps) if self.live_fps else self.period
            self._stop.wait(max(0.0, period - (time.monotonic() - started)) if frame is not None else 0.2)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.camera.close()
