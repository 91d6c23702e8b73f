"""The ``vision:`` section of an alarm pole's config: detector, zones, masks, tamper, time zone.

Every field has a description and bounds (Frigate's habit), unknown fields are refused, and
rules that span fields (a polygon's points, a schedule's format, a unique zone name) are
checked here so a typo fails at start with its YAML line, not at 3 a.m. in a zone test.

Polygon coordinates are either pixels of the camera frame or fractions of its width and
height: a polygon whose coordinates all lie within 0..1 is read as fractions, so the same
zones survive a change of resolution.
"""

from __future__ import annotations

import re
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Point = tuple[float, float]
ZoneClass = Literal["person", "vehicle"]
_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]|24):([0-5]\d)$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_polygon(points: list[Point]) -> list[Point]:
    if len(points) < 3:
        raise ValueError(f"a polygon needs at least 3 points, got {len(points)}")
    if any(x < 0 or y < 0 for x, y in points):
        raise ValueError("polygon coordinates must not be negative (pixels or 0..1 fractions)")
    return points


class ZoneSettings(_Section):
    name: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$",
                      description="Zone name, reported as data.zone (letters, digits, _ . -)")
    points: list[Point] = Field(description="Polygon corners [x, y]: frame pixels, or 0..1 fractions of "
                                            "the frame when every coordinate is within 0..1")
    classes: list[ZoneClass] = Field(default_factory=lambda: ["person"], min_length=1,
                                     description="What is reported in this zone: person and/or vehicle")
    schedule: list[str] = Field(default_factory=list,
                                description="Active windows 'HH:MM-HH:MM' in the node's time zone; a window "
                                            "whose end is not after its start crosses midnight "
                                            "(22:00-06:00); empty = always active")
    loiter_s: float | None = Field(default=None, gt=0, le=86400,
                                   description="A person staying longer than this (seconds) raises "
                                               "detection.loitering once; none = no loitering alarm")

    _points = field_validator("points")(_check_polygon)

    @field_validator("schedule")
    @classmethod
    def _windows(cls, value: list[str]) -> list[str]:
        for window in value:
            if not _WINDOW.match(window.strip()):
                raise ValueError(f"schedule window {window!r} is not 'HH:MM-HH:MM' (24-hour, e.g. 22:00-06:00)")
        return [w.strip() for w in value]


class MaskSettings(_Section):
    points: list[Point] = Field(description="Polygon blanked (filled black) in every frame before any "
                                            "consumer sees it: pixels or 0..1 fractions, as for zones")
    name: str = Field(default="", max_length=40, description="What the mask hides (a window, a garden)")

    _points = field_validator("points")(_check_polygon)


class TamperSettings(_Section):
    enabled: bool = Field(default=True, description="Report a covered, turned, defocused or lost camera")
    check_every_s: float = Field(default=0.5, ge=0.05, le=60,
                                 description="Seconds between tamper checks (each costs about a millisecond)")
    hold_s: float = Field(default=5.0, ge=0, le=600,
                          description="A covered, turned or defocused view must last this long to be reported")
    covered_std: float = Field(default=6.0, ge=0, le=64,
                               description="Grey-level standard deviation below which the view is blank "
                                           "(lens covered or sprayed)")
    turned_similarity: float = Field(default=0.35, ge=-1, le=1,
                                     description="Correlation with the learned reference view below which the "
                                                 "camera is taken as turned away (1 = same view)")
    defocus_ratio: float = Field(default=0.25, gt=0, lt=1,
                                 description="Sharpness (contrast-normalised Laplacian variance) as a fraction "
                                             "of the reference's below which the view is defocused")
    feed_lost_s: float = Field(default=5.0, ge=0, le=600,
                               description="No frame for this long reports feed_lost")
    learn_s: float = Field(default=2.0, ge=0, le=600,
                           description="Seconds of frames averaged into the reference view at start")


class TrackerSettings(_Section):
    iou: float = Field(default=0.3, gt=0, lt=1, description="Least box overlap (IoU) to continue a track")
    max_age_s: float = Field(default=2.0, gt=0, le=60,
                             description="A track unseen this long is dropped (its object left)")
    confirm_frames: int = Field(default=2, ge=1, le=30,
                                description="Detections needed before a track may raise events")
    predict: bool = Field(default=True,
                          description="Match detections to where each object should be now (a "
                                      "constant-velocity Kalman filter per track), so a person hidden "
                                      "for a moment keeps their id; false = to where it was last seen")


class RegionSettings(_Section):
    enabled: bool = Field(default=True,
                          description="Run the detector on model-sized squares around motion and tracked "
                                      "objects (Frigate's regions), not on the whole frame squeezed into the "
                                      "model: small people stay big enough to be found (bench/detect_eval.py)")
    side: int | None = Field(default=None, ge=96, le=1280,
                             description="Region side in frame pixels; default: per backend, measured on "
                                         "labelled footage (240 ssdlite_person, 384 centernet_coco, 640 yolo)")
    full_every_s: float = Field(default=2.0, gt=0, le=600,
                                description="Seconds between full passes (whole frame plus overlapping "
                                            "tiles) that find people standing still, who make no motion")
    max_detect_fps: float = Field(default=5.0, gt=0, le=60,
                                  description="Most detector runs per second with the motion gate on; frames "
                                              "in between go through the gate and tamper checks only (a walker "
                                              "moves a fraction of their width in 0.2 s)")
    max_regions: int = Field(default=8, ge=1, le=64,
                             description="Most detector calls per frame: a busier frame gets fewer, coarser "
                                         "regions (sides x1.25 until they fit), so the cost stays bounded")


class VisionSettings(_Section):
    detector: str = Field(default="ssdlite_person",
                          description="Detector backend: ssdlite_person (people), centernet_coco (people "
                                      "and vehicles) or yolo (your own export, give model)")
    model: str | None = Field(default=None,
                              description="Model file (.onnx) or a built model's name; default: the "
                                          "backend's own built model")
    threshold: float | None = Field(default=None, gt=0, lt=1,
                                    description="Least detection score; default: the backend's own "
                                                "(0.5 ssdlite_person, 0.3 centernet_coco, 0.35 yolo)")
    thresholds: dict[str, float] = Field(default_factory=dict,
                                         description="Least score per class (person, car, bicycle, ...), "
                                                     "overriding the calibrated defaults in "
                                                     "edge/vision/regions.py; threshold sets every class")
    regions: RegionSettings = Field(default_factory=RegionSettings)
    threads: int = Field(default=2, ge=1, le=8, description="onnxruntime threads (a Pi 4 has four cores)")
    all_frames: bool = Field(default=False,
                             description="Run the detector on every frame (no motion gate): for comparisons")
    zones: list[ZoneSettings] = Field(default_factory=list,
                                      description="Where detections are reported; none = the whole frame, "
                                                  "people and vehicles, always")
    masks: list[MaskSettings] = Field(default_factory=list, description="Privacy masks")
    tamper: TamperSettings = Field(default_factory=TamperSettings)
    tracker: TrackerSettings = Field(default_factory=TrackerSettings)
    timezone: str = Field(default="Asia/Shanghai", description="IANA time zone the schedules are written in")
    snapshot_quality: int = Field(default=80, ge=10, le=100, description="JPEG quality of event snapshots")

    @field_validator("thresholds")
    @classmethod
    def _class_thresholds(cls, value: dict[str, float]) -> dict[str, float]:
        bad = sorted(k for k, v in value.items() if not 0.0 < v < 1.0)
        if bad:
            raise ValueError(f"thresholds must be between 0 and 1 (exclusive): {', '.join(bad)}")
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}: use an IANA name such as Asia/Shanghai") from None
        return value

    @model_validator(mode="after")
    def _unique_zones(self) -> VisionSettings:
        names = [z.name for z in self.zones]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"zone names must be unique: {', '.join(dupes)} repeated")
        if self.detector == "yolo" and not self.model:
            raise ValueError("detector 'yolo' needs model: the path to your .onnx export")
        if self.detector == "ssdlite_person":
            vehicles = [z.name for z in self.zones if "vehicle" in z.classes]
            if vehicles:
                raise ValueError(f"zones {', '.join(vehicles)} want vehicles but ssdlite_person finds only "
                                 "people: use detector: centernet_coco")
        return self


class VisionFile(_Section):
    """A YAML file with a top-level ``vision:`` section (``pingan-edge detect --config``)."""

    model_config = ConfigDict(extra="ignore")  # the rest of a node config may be there too
    vision: VisionSettings = Field(description="The vision section")
