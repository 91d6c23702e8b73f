"""Zones: polygons in the camera's view, each with the classes it reports and when it is armed.

An object is *in* a zone when the bottom centre of its box (where its feet or wheels touch
the ground) lies inside the polygon: a person walking past in front of a zone on the far
pavement has a box overlapping it but is not in it. Schedules are wall-clock windows in the
node's time zone, evaluated on the ``now`` the caller passes (from the injected clock).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

import cv2
import numpy as np

from edge.hw.camera import polygon_to_pixels
from edge.vision.config import ZoneSettings
from edge.vision.detector import Box
from edge.vision.tracker import Track

to_pixels = polygon_to_pixels


@dataclass(frozen=True, slots=True)
class Window:
    """A daily window; ``end <= start`` means it crosses midnight (22:00-06:00)."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> Window:
        a, b = text.split("-")
        sh, sm = (int(v) for v in a.split(":"))
        eh, em = (int(v) for v in b.split(":"))
        end = time(23, 59, 59, 999999) if eh == 24 else time(eh, em)
        return cls(time(sh, sm), end)

    def contains(self, t: time) -> bool:
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end  # crosses midnight (or 24 h when start == end)


class Schedule:
    """Union of daily windows in one time zone; no windows = always active."""

    def __init__(self, windows: Sequence[str], tz: str | ZoneInfo) -> None:
        self.windows = [Window.parse(w) for w in windows]
        self.tz = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)

    def active(self, now: datetime) -> bool:
        if not self.windows:
            return True
        if now.tzinfo is None:
            raise ValueError("schedules need an aware datetime (the clock's now() is UTC-aware)")
        local = now.astimezone(self.tz).time()
        return any(w.contains(local) for w in self.windows)


class Zone:
    """A runtime zone: polygon resolved to a frame size, allowed categories, schedule, loiter limit."""

    def __init__(self, settings: ZoneSettings, tz: str | ZoneInfo) -> None:
        self.name = settings.name
        self.points = list(settings.points)
        self.categories = frozenset(settings.classes)
        self.schedule = Schedule(settings.schedule, tz)
        self.loiter_s = settings.loiter_s
        self._poly: np.ndarray | None = None
        self._size: tuple[int, int] = (0, 0)

    @classmethod
    def whole_frame(cls, tz: str | ZoneInfo, categories: Sequence[str] = ("person", "vehicle")) -> Zone:
        """The implicit zone of a node with none configured: everything, always."""
        return cls(
            ZoneSettings(name="frame", points=[(0, 0), (1, 0), (1, 1), (0, 1)], classes=list(categories)), tz
        )

    def polygon(self, width: int, height: int) -> np.ndarray:
        if self._poly is None or self._size != (width, height):
            self._poly = to_pixels(self.points, width, height).reshape(-1, 1, 2)
            self._size = (width, height)
        return self._poly

    def contains(self, box: Box, width: int, height: int) -> bool:
        """Whether the box's bottom centre (its ground point) lies inside or on the polygon."""
        x = (box[0] + box[2]) / 2.0
        y = min(box[3], height - 1.0)  # a box touching the frame's bottom edge still stands in it
        return cv2.pointPolygonTest(self.polygon(width, height), (float(x), float(y)), False) >= 0

    def wants(self, category: str) -> bool:
        return category in self.categories

    def active(self, now: datetime) -> bool:
        return self.schedule.active(now)

    def __repr__(self) -> str:
        return f"<Zone {self.name!r} classes={sorted(self.categories)} loiter_s={self.loiter_s}>"


@dataclass(frozen=True, slots=True)
class ZoneHit:
    """Something to report: ``kind`` is detection.person / detection.vehicle / detection.loitering."""

    kind: str
    track: Track
    zone: Zone
    dwell_s: float


class ZoneMonitor:
    """Turns tracks into zone events: one entry per (track, zone), one loitering per (track, zone).

    An entry counts only while the zone is armed (its schedule) and the track is confirmed; a
    person already standing in a zone when its schedule starts is reported then. Loitering is
    for people only, measured from the moment the track entered the zone (continuous presence:
    leaving the zone restarts it).
    """

    def __init__(self, zones: Sequence[Zone]) -> None:
        self.zones = list(zones)

    def update(
        self,
        tracks: Sequence[Track],
        seen: Sequence[Track],
        *,
        width: int,
        height: int,
        mono: float,
        now: datetime,
        confirmed: Callable[[Track], bool],
    ) -> list[ZoneHit]:
        """``tracks``: all live tracks; ``seen``: the ones this detector run updated (their
        positions are new, so only their zone membership is re-evaluated)."""
        seen_ids = {t.track_id for t in seen}
        hits: list[ZoneHit] = []
        armed = {z.name: z.active(now) for z in self.zones}
        for track in tracks:
            for zone in self.zones:
                if track.track_id in seen_ids:
                    inside = zone.wants(track.category) and zone.contains(track.box, width, height)
                    if inside:
                        track.entered.setdefault(zone.name, mono)
                    else:
                        track.entered.pop(zone.name, None)
                if zone.name not in track.entered or not armed[zone.name] or not confirmed(track):
                    continue
                dwell = track.dwell(zone.name, mono)
                if zone.name not in track.reported:
                    track.reported.add(zone.name)
                    hits.append(ZoneHit(f"detection.{track.category}", track, zone, dwell))
                if (
                    zone.loiter_s is not None
                    and track.category == "person"
                    and dwell > zone.loiter_s
                    and zone.name not in track.loitered
                ):
                    track.loitered.add(zone.name)
                    hits.append(ZoneHit("detection.loitering", track, zone, dwell))
        return hits
