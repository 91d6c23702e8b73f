"""The vision pipeline: tracker, zones, schedules, loitering, masks, tamper, frame ring, ``detect``.

Real detector runs use the built models (the ``built_models`` fixture of ``test_vision``);
scene frames are scikit-image photos composited on a drawn street. Time is a ``FakeClock``
or a recording's own clock: no sleeps, no timing asserts.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import ValidationError
from skimage import data

from edge.clock import FakeClock
from edge.errors import ConfigError
from edge.vision.cli import load_settings, run_detect
from edge.vision.config import TamperSettings, VisionSettings, ZoneSettings
from edge.vision.detector import Detection, Detector
from edge.vision.pipeline import VisionPipeline
from edge.vision.ring import FrameRing
from edge.vision.tamper import TamperDetector
from edge.vision.tracker import Tracker
from edge.vision.zones import Schedule, Zone
from tests.edge.test_vision import built_models  # noqa: F401 - the shared model-build fixture

W, H = 640, 480
# 2026-11-23 23:30 in Shanghai (UTC+8) is 15:30 UTC; 12:00 there is 04:00 UTC.
NIGHT = datetime(2026, 11, 23, 15, 30, tzinfo=UTC)
NOON = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)


# ---------------------------------------------------------------- scenes


def street(seed: int = 0) -> np.ndarray:
    """A drawn street: sky gradient, road, a house with windows."""
    g = np.linspace(60, 140, H, dtype=np.uint8)[:, None]
    f = np.repeat(np.repeat(g, W, axis=1)[:, :, None], 3, axis=2).copy()
    cv2.rectangle(f, (0, 380), (W, H), (70, 70, 70), -1)
    cv2.rectangle(f, (420, 100), (620, 380), (90, 110, 130), -1)
    for i in range(5):
        cv2.rectangle(f, (430 + i * 37, 130), (455 + i * 37, 170), (200, 220, 230), -1)
    return f


def person_crop(height: int = 300) -> np.ndarray:
    """The astronaut photo cropped to her, scaled to ``height`` pixels."""
    p = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)[20:512, 130:360]
    return cv2.resize(p, (round(p.shape[1] * height / p.shape[0]), height), interpolation=cv2.INTER_AREA)


def with_person(x: int, crop: np.ndarray, base: np.ndarray | None = None) -> np.ndarray:
    f = (street() if base is None else base).copy()
    h, w = crop.shape[:2]
    x = max(0, min(W - w, x))
    f[440 - h:440, x:x + w] = crop
    return f


def write_video(path: Path, frames: Iterator[np.ndarray], fps: float) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (W, H))
    assert writer.isOpened()
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def read_video(path: Path) -> Iterator[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            yield frame
    finally:
        cap.release()


def walk(crop: np.ndarray, n: int = 30) -> Iterator[np.ndarray]:
    """Frames of the person walking from the left edge to the right edge."""
    for i in range(n):
        yield with_person(round(i * (W - crop.shape[1]) / (n - 1)), crop)


MIDDLE = [(0.4, 0.0), (0.7, 0.0), (0.7, 1.0), (0.4, 1.0)]  # a vertical band, as fractions


# ---------------------------------------------------------------- a scripted detector


class Scripted(Detector):
    """Returns whatever the test put in ``boxes`` (person boxes), for exact tracker/zone tests."""

    name = "scripted"

    def __init__(self) -> None:
        super().__init__(threshold=0.5)
        self.boxes: list[tuple[float, float, float, float]] = []
        self.label = "person"
        self.calls = 0

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        self.calls += 1
        return [Detection(self.label, 0.9, b) for b in self.boxes]


def scripted_pipeline(clock: FakeClock, **settings: object) -> tuple[VisionPipeline, Scripted]:
    det = Scripted()
    cfg = VisionSettings.model_validate({"all_frames": True, "tamper": {"enabled": False}, **settings})
    return VisionPipeline(cfg, clock, detector=det), det


def person_at(cx: float, w: float = 60, h: float = 160, bottom: float = 400) -> tuple[float, float, float, float]:
    return (cx - w / 2, bottom - h, cx + w / 2, bottom)


# ---------------------------------------------------------------- schedules and zones


def test_a_night_schedule_crosses_midnight_in_the_nodes_time_zone() -> None:
    s = Schedule(["22:00-06:00"], "Asia/Shanghai")
    local = datetime(2026, 11, 23, tzinfo=UTC).astimezone(s.tz).tzinfo
    at = lambda hh, mm: datetime(2026, 11, 23, hh, mm, tzinfo=local)  # noqa: E731
    assert s.active(at(23, 30)) and s.active(at(0, 0)) and s.active(at(5, 59))
    assert not s.active(at(6, 0)) and not s.active(at(12, 0)) and not s.active(at(21, 59))
    assert s.active(at(22, 0))
    assert s.active(NIGHT) and not s.active(NOON)  # the same instants given in UTC
    assert Schedule([], "Asia/Shanghai").active(NOON)
    assert Schedule(["08:00-18:00", "20:00-21:00"], "UTC").active(datetime(2026, 1, 1, 20, 30, tzinfo=UTC))


def test_zone_uses_the_ground_point_and_both_coordinate_kinds() -> None:
    frac = Zone(ZoneSettings(name="band", points=MIDDLE), "UTC")
    px = Zone(ZoneSettings(name="band", points=[(256, 0), (448, 0), (448, 480), (256, 480)]), "UTC")
    for zone in (frac, px):
        assert zone.contains(person_at(350), W, H)
        assert not zone.contains(person_at(100), W, H)
    # A box overlapping the band whose feet are outside it is not in it.
    assert not frac.contains((200, 100, 300, 400), W, H)


def test_settings_refuse_bad_zones() -> None:
    with pytest.raises(ValidationError, match="HH:MM-HH:MM"):
        VisionSettings(zones=[ZoneSettings(name="a", points=MIDDLE, schedule=["10pm-6am"])])
    with pytest.raises(ValidationError, match="at least 3 points"):
        VisionSettings.model_validate({"zones": [{"name": "a", "points": [[0, 0], [1, 1]]}]})
    with pytest.raises(ValidationError, match="unique"):
        VisionSettings.model_validate({"zones": [{"name": "a", "points": MIDDLE}] * 2})
    with pytest.raises(ValidationError, match="time zone"):
        VisionSettings(timezone="Mars/Olympus")
    with pytest.raises(ValidationError, match="centernet_coco"):
        VisionSettings.model_validate({"zones": [{"name": "a", "points": MIDDLE, "classes": ["vehicle"]}]})
    with pytest.raises(ValidationError, match="extra"):
        VisionSettings.model_validate({"treshold": 0.5})


def test_a_config_error_names_the_yaml_line(tmp_path: Path) -> None:
    cfg = tmp_path / "v.yaml"
    cfg.write_text("node: {id: pole-1}\nvision:\n  zones:\n    - name: gate\n      points: [[0,0],[1,0],[1,1]]\n"
                   "      loiter_s: -3\n")
    with pytest.raises(ConfigError, match=r"vision\.zones\.0\.loiter_s \(line 6\)"):
        load_settings(cfg, False)
    cfg.write_text("vision:\n  detector: centernet_coco\n  zones:\n    - {name: gate, points: [[0,0],[1,0],[1,1]]}\n")
    assert load_settings(cfg, True).all_frames


# ---------------------------------------------------------------- tracker


def test_tracker_keeps_ids_and_starts_new_ones() -> None:
    t = Tracker(iou=0.3, max_age_s=1.0)
    a = Detection("person", 0.9, person_at(100))
    b = Detection("person", 0.9, person_at(400))
    first = t.update([a, b], 0.0)
    assert [x.track_id for x in first] == [1, 2]
    moved = t.update([Detection("person", 0.9, person_at(410)), Detection("person", 0.9, person_at(110))], 0.2)
    assert sorted((x.track_id, x.box[0]) for x in moved) == [(1, 80.0), (2, 380.0)]
    car = Detection("car", 0.9, person_at(110))  # same place, other category: a new track
    assert t.update([car], 0.4)[0].track_id == 3
    assert {x.track_id for x in t.tracks} == {1, 2, 3}
    t.update([], 1.3)  # 1 and 2 last seen at 0.2: gone after max_age_s
    assert [x.track_id for x in t.tracks] == [3]


# ---------------------------------------------------------------- zones, schedules, loitering (scripted)


def test_one_event_per_track_entering_an_active_zone() -> None:
    clock = FakeClock()
    p, det = scripted_pipeline(clock, zones=[{"name": "band", "points": MIDDLE}])
    frame = street()
    kinds = []
    for cx in range(40, 620, 20):  # walks through the band and out
        det.boxes = [person_at(cx)]
        kinds += [(e.kind, e.data["track_id"], e.data["zone"]) for e in p.process(frame, NOON)]
        clock.advance(0.2)
    assert kinds == [("detection.person", 1, "band")]


def test_inactive_schedule_reports_nothing_then_reports_when_armed() -> None:
    clock = FakeClock()
    p, det = scripted_pipeline(clock, zones=[{"name": "yard", "points": MIDDLE, "schedule": ["22:00-06:00"]}])
    det.boxes = [person_at(350)]
    frame = street()
    events = []
    for _ in range(20):
        events += p.process(frame, NOON)
        clock.advance(0.2)
    assert events == []
    events = p.process(frame, NIGHT)  # the same person, the zone now armed
    assert [e.kind for e in events] == ["detection.person"]


def test_loitering_fires_once_after_its_limit_and_not_before() -> None:
    clock = FakeClock()
    p, det = scripted_pipeline(clock, zones=[{"name": "door", "points": MIDDLE, "loiter_s": 30}])
    det.boxes = [person_at(350)]
    frame = street()
    seen: list[tuple[float, str, float]] = []
    for i in range(60 * 2):  # one minute at 2 detector runs a second
        for e in p.process(frame, NIGHT):
            seen.append((i * 0.5, e.kind, e.data["dwell_s"]))
        clock.advance(0.5)
    assert [k for _, k, _ in seen] == ["detection.person", "detection.loitering"]
    t, _, dwell = seen[1]
    assert dwell > 30 and t == pytest.approx(30.5)
    loiter = [e for e in p.process(frame, NIGHT)]
    assert loiter == []


def test_leaving_the_zone_restarts_the_dwell_and_vehicles_do_not_loiter() -> None:
    clock = FakeClock()
    p, det = scripted_pipeline(clock, zones=[{"name": "door", "points": MIDDLE, "loiter_s": 10}])
    frame = street()
    kinds = []
    # 4 s standing in, out and back in small steps (the same track), 4 s in: ~13 s in the zone
    # in all, never 10 s in a row.
    path = [350] * 8 + list(range(330, 229, -20)) + [230, 230] + list(range(250, 351, 20)) + [350] * 8
    for cx in path:
        det.boxes = [person_at(cx)]
        kinds += [e.kind for e in p.process(frame, NIGHT)]
        clock.advance(0.5)
    assert p.tracker.tracks[0].track_id == 1 and len(p.tracker.tracks) == 1
    assert kinds == ["detection.person"]  # and no second entry event for the same track
    clock2 = FakeClock()
    p2, det2 = scripted_pipeline(
        clock2, detector="centernet_coco",
        zones=[{"name": "d", "points": MIDDLE, "classes": ["vehicle"], "loiter_s": 5}],
    )
    det2.label, det2.boxes = "car", [person_at(350, w=200, h=120)]
    kinds = []
    for _ in range(40):
        kinds += [(e.kind, e.data["class"]) for e in p2.process(frame, NIGHT)]
        clock2.advance(0.5)
    assert kinds == [("detection.vehicle", "car")]


def test_a_person_in_a_vehicle_only_zone_is_not_reported() -> None:
    clock = FakeClock()
    p, det = scripted_pipeline(
        clock, detector="centernet_coco", zones=[{"name": "lane", "points": MIDDLE, "classes": ["vehicle"]}]
    )
    det.boxes = [person_at(350)]
    events = []
    for _ in range(10):
        events += p.process(street(), NIGHT)
        clock.advance(0.5)
    assert events == []


def test_motion_gate_skips_the_detector_on_a_quiet_scene() -> None:
    clock = FakeClock()
    det = Scripted()
    quiet = VisionSettings(tamper=TamperSettings(enabled=False), regions={"full_every_s": 600})
    p = VisionPipeline(quiet, clock, detector=det)
    frame = street()
    runs = 0
    for _ in range(30):
        p.process(frame, NOON)
        runs += p.last.ran_detector
        clock.advance(0.1)
    assert runs == 1  # the first frame only (the gate learns its background and looks once)
    det.boxes = [(80.0, 100.0, 120.0, 200.0)]  # in the crop's pixels: a person inside each region
    p.process(with_person(200, person_crop()), NOON)
    assert p.last.ran_detector and p.last.regions and p.tracker.active
    assert all(r[2] - r[0] <= 640 and r[3] - r[1] <= 480 for r in p.last.regions)
    clock.advance(0.1)
    p.process(with_person(200, person_crop()), NOON)  # max_detect_fps (5): too soon to look again
    assert not p.last.ran_detector
    clock.advance(0.1)
    p.process(with_person(200, person_crop()), NOON)  # not moving, but tracked: keep looking
    assert p.last.ran_detector


def test_a_quiet_scene_still_gets_a_full_pass_every_full_every_s() -> None:
    """People standing still make no motion: the whole frame and its tiles are looked at anyway."""
    clock = FakeClock()
    p = VisionPipeline(VisionSettings(tamper=TamperSettings(enabled=False)), clock, detector=Scripted())
    frame = street()
    full = []
    for i in range(31):  # 3 s at 10 fps; full_every_s defaults to 2
        p.process(frame, NOON)
        if p.last.ran_detector:
            full.append(i)
            assert p.last.regions[0] == (0, 0, W, H) and len(p.last.regions) > 1
        clock.advance(0.1)
    assert full == [0, 20, 30] or full == [0, 20]


# ---------------------------------------------------------------- the real detector on a video


def test_a_person_walking_across_a_zone_is_one_event(built_models: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    video = write_video(tmp_path / "walk.avi", walk(person_crop(), 30), fps=10)
    clock = FakeClock()
    cfg = VisionSettings(zones=[ZoneSettings(name="gate", points=MIDDLE)], model=str(built_models["ssdlite_person"]))
    p = VisionPipeline(cfg, clock)
    events = []
    detected = runs = 0
    for frame in read_video(video):
        events += p.process(frame, NOON)
        runs += p.last.ran_detector
        detected += bool(p.last.detections)
        clock.advance(0.1)
    assert runs >= 14  # max_detect_fps 5 on a 10 fps video: every other frame
    assert detected >= runs - 2  # she is found on (nearly) every frame the detector looks at
    assert [(e.kind, e.data["track_id"], e.data["zone"]) for e in events] == [("detection.person", 1, "gate")]
    assert max(t.track_id for t in p.tracker.tracks) == 1  # one track all the way
    ev = events[0]
    assert set(ev.data) == {"track_id", "class", "score", "zone", "dwell_s", "box"}
    assert ev.data["class"] == "person" and ev.data["score"] >= 0.5
    assert ev.snapshot is not None and ev.snapshot[:2] == b"\xff\xd8" and len(ev.snapshot) <= 256 * 1024


def test_nothing_is_reported_on_photos_without_people(built_models: dict[str, Path]) -> None:  # noqa: F811
    p = VisionPipeline(VisionSettings(model=str(built_models["ssdlite_person"]), all_frames=True), FakeClock())
    for photo in (data.cat(), data.coffee()):
        frame = cv2.resize(cv2.cvtColor(photo, cv2.COLOR_RGB2BGR), (W, H))
        assert p.process(frame, NOON) == [] and p.process(frame, NOON) == []
        assert p.last.ran_detector and p.last.detections == []


def test_masks_blank_the_snapshot_and_hide_what_is_behind_them(built_models: dict[str, Path]) -> None:  # noqa: F811
    crop = person_crop()
    frame = with_person(240, crop)  # she stands at x 240..380
    window = [(430, 130), (640, 130), (640, 175), (430, 175)]  # the house's windows, in pixels
    cfg = VisionSettings(model=str(built_models["ssdlite_person"]), all_frames=True,
                         masks=[{"points": window, "name": "windows"}])
    p = VisionPipeline(cfg, FakeClock())
    events = p.process(frame, NOON) + p.process(frame, NOON)
    assert [e.kind for e in events] == ["detection.person"]
    snap = cv2.imdecode(np.frombuffer(events[0].snapshot, np.uint8), cv2.IMREAD_COLOR)
    assert snap.shape == frame.shape
    assert snap[135:170, 435:635].max() <= 12  # blanked (JPEG ringing aside)
    assert frame[135:170, 435:635].mean() > 150  # the input was bright there and is untouched
    # A person behind a mask is not detected at all: the detector never sees her.
    hidden = VisionPipeline(
        VisionSettings(model=str(built_models["ssdlite_person"]), all_frames=True,
                       masks=[{"points": [(0.3, 0), (0.65, 0), (0.65, 1), (0.3, 1)]}]),
        FakeClock(),
    )
    assert hidden.process(frame, NOON) == [] and hidden.last.detections == []


def test_run_detect_prints_json_lines_and_loitering_on_the_recordings_own_time(
    built_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    monkeypatch.setenv("PINGAN_MODEL_DIR", str(built_models["ssdlite_person"].parent))
    crop = person_crop()
    frames = [with_person(40 * i, crop) for i in range(7)] + [with_person(280, crop)] * 40  # 8 s standing at 5 fps
    video = write_video(tmp_path / "stand.avi", iter(frames), fps=5)
    cfg = tmp_path / "vision.yaml"
    cfg.write_text("vision:\n  zones:\n    - name: door\n      points: [[0.3, 0], [0.8, 0], [0.8, 1], [0.3, 1]]\n"
                   "      loiter_s: 6\n  tamper: {enabled: false}\n")
    out = io.StringIO()
    assert run_detect(str(video), cfg, all_frames=True, max_frames=None, out=out) == 0
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    per_frame = [x for x in lines if "detections" in x]
    assert [x["frame"] for x in per_frame] == list(range(len(frames)))  # --all-frames: every frame
    assert all(set(d) == {"class", "score", "box"} for x in per_frame for d in x["detections"])
    events = [x for x in lines if "kind" in x]
    assert [e["kind"] for e in events] == ["detection.person", "detection.loitering"]
    loiter = events[1]
    assert loiter["data"]["dwell_s"] > 6 and loiter["data"]["zone"] == "door"
    assert 6 < (loiter["frame"] - events[0]["frame"]) / 5 <= 7.5  # on video time, not this machine's


def test_run_detect_reports_a_bad_source_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_detect(str(tmp_path / "nope.mp4"), None, False, 3) == 1
    assert "does not exist" in capsys.readouterr().err
    assert run_detect("ftp://cam.local/stream", None, False, 3) == 1
    assert "not supported" in capsys.readouterr().err


def test_run_detect_on_a_camera_and_on_an_image(
    built_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    monkeypatch.setenv("PINGAN_MODEL_DIR", str(built_models["ssdlite_person"].parent))
    out = io.StringIO()
    assert run_detect("synthetic", None, True, 4, out=out) == 0
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [x["frame"] for x in lines if "detections" in x] == [0, 1, 2, 3]
    image = tmp_path / "street.png"
    cv2.imwrite(str(image), with_person(250, person_crop()))
    out = io.StringIO()
    assert run_detect(str(image), None, False, None, out=out) == 0
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [x["kind"] for x in lines if "kind" in x] == ["detection.person"]  # confirmed on the 2nd pass
    assert all(x["detections"][0]["class"] == "person" for x in lines if "detections" in x)


# ---------------------------------------------------------------- tamper


def scene() -> np.ndarray:
    return with_person(60, person_crop(260), street())


def noisy(frame: np.ndarray, rng: np.random.Generator, sigma: float = 3.0) -> np.ndarray:
    return np.clip(frame.astype(np.float32) + rng.normal(0, sigma, frame.shape), 0, 255).astype(np.uint8)


def run_tamper(
    det: TamperDetector, frames: Iterator[np.ndarray | None], t0: float, step: float
) -> list[tuple[float, str]]:
    out = []
    t = t0
    for f in frames:
        out += [(t, e.reason) for e in det.update(f, t)]
        t += step
    return out


def learned(rng: np.random.Generator) -> TamperDetector:
    det = TamperDetector(TamperSettings())
    base = scene()
    assert run_tamper(det, (noisy(base, rng) for _ in range(10)), 0.0, 0.5) == []
    return det


DOCTORED = {
    "covered": lambda f: np.zeros_like(f),
    "sprayed": lambda f: np.full_like(f, 185),
    "turned": lambda f: cv2.resize(cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2BGR), (W, H)),
    "turned_to_coffee": lambda f: cv2.resize(cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR), (W, H)),
    "defocused": lambda f: cv2.GaussianBlur(f, (0, 0), 4),
}
EXPECTED = {"covered": "covered", "sprayed": "covered", "turned": "turned", "turned_to_coffee": "turned",
            "defocused": "defocused"}


@pytest.mark.parametrize("doctor", sorted(DOCTORED))
def test_tamper_fires_once_after_the_hold_on_doctored_frames(doctor: str) -> None:
    rng = np.random.default_rng(1)
    det = learned(rng)
    bad = DOCTORED[doctor](scene())
    got = run_tamper(det, (noisy(bad, rng) for _ in range(40)), 10.0, 0.5)  # 20 s of it
    assert [r for _, r in got] == [EXPECTED[doctor]], got
    assert got[0][0] == pytest.approx(10.0 + 5.0)  # hold_s after it started, not before
    # Back to normal re-arms it: a second episode is reported again.
    assert run_tamper(det, (noisy(scene(), rng) for _ in range(4)), 30.0, 0.5) == []
    again = run_tamper(det, (noisy(bad, rng) for _ in range(12)), 32.0, 0.5)
    assert [r for _, r in again] == [EXPECTED[doctor]]


@pytest.mark.parametrize("light", [(1.6, 20.0), (0.6, 0.0), (0.3, 0.0), (0.1, 2.0)])
def test_tamper_ignores_lighting_changes(light: tuple[float, float]) -> None:
    gain, offset = light
    rng = np.random.default_rng(2)
    det = learned(rng)
    lit = cv2.convertScaleAbs(scene(), alpha=gain, beta=offset)
    assert run_tamper(det, (noisy(lit, rng) for _ in range(60)), 10.0, 0.5) == []
    assert det.measures is not None and det.measures.similarity is not None and det.measures.similarity > 0.9


def test_a_person_passing_close_is_not_tamper() -> None:
    rng = np.random.default_rng(3)
    det = learned(rng)
    crop = person_crop(430)
    frames = [noisy(with_person(x, crop, scene()), rng) for x in range(0, 640, 80)]  # 4 s crossing the view
    assert run_tamper(det, iter(frames), 10.0, 0.5) == []


def test_feed_lost_after_its_time_and_once() -> None:
    rng = np.random.default_rng(4)
    det = learned(rng)
    got = run_tamper(det, iter([None] * 20), 5.0, 0.5)  # last frame at 4.5 s
    assert got == [(9.5, "feed_lost")]
    assert run_tamper(det, iter([noisy(scene(), rng)] + [None] * 8), 20.0, 0.5) == []  # back, then 4 s lost
    clock = FakeClock()
    p, _ = scripted_pipeline(clock, tamper={"feed_lost_s": 3})
    events = []
    for _ in range(10):
        events += p.process(None, NOON)
        clock.advance(1.0)
    assert [(e.kind, e.data["reason"], e.snapshot) for e in events] == [("tamper.camera", "feed_lost", None)]


def test_the_pipeline_reports_a_covered_lens_with_a_snapshot() -> None:
    clock = FakeClock()
    rng = np.random.default_rng(5)
    p, _ = scripted_pipeline(clock, tamper={"enabled": True})
    events = []
    for i in range(40):
        frame = noisy(scene() if i < 10 else np.zeros((H, W, 3), np.uint8), rng)
        events += p.process(frame, NOON)
        clock.advance(0.5)
    assert [(e.kind, e.data["reason"]) for e in events] == [("tamper.camera", "covered")]
    assert events[0].snapshot is not None


# ---------------------------------------------------------------- frame ring


def test_frame_ring_keeps_the_last_seconds_as_small_jpegs() -> None:
    clock = FakeClock()
    ring = FrameRing(seconds=5, fps=2, width=320, clock=clock)
    kept = 0
    for i in range(100):  # 10 s at 10 fps
        kept += ring.add(with_person(i * 4, person_crop()))
        clock.advance(0.1)
    assert kept == 20  # 2 a second
    burst = ring.burst()
    assert 9 <= len(burst) <= 11  # 5 s at 2 fps (give or take one at the edge)
    first = cv2.imdecode(np.frombuffer(burst[0], np.uint8), cv2.IMREAD_COLOR)
    assert first.shape == (240, 320, 3)
    assert ring.add(None) is False
    clock.advance(60)  # the camera died a minute ago: nothing stale in a burst
    assert ring.burst() == []


def test_frame_ring_stays_within_its_byte_budget() -> None:
    clock = FakeClock()
    rng = np.random.default_rng(6)
    ring = FrameRing(seconds=60, fps=10, width=640, quality=95, max_bytes=300_000, clock=clock)
    for _ in range(50):
        ring.add(rng.integers(0, 255, (H, W, 3), dtype=np.uint8))  # noise: large JPEGs
        clock.advance(0.1)
    assert 0 < sum(map(len, ring.burst())) <= 300_000


def test_an_object_unseen_longer_than_max_age_is_a_new_track() -> None:
    clock = FakeClock(start=NOON)
    p, det = scripted_pipeline(clock, zones=[{"name": "door", "points": MIDDLE, "loiter_s": 3600}])
    det.boxes = [person_at(350)]
    events = []
    for _ in range(3):
        events += p.process(street(), clock.now())
        clock.advance(1800.0)  # half an hour per call: no sleeping
    # Each sighting is a new, unconfirmed track (max_age_s 2 s): nothing confirmed, no event.
    assert [e.kind for e in events] == [] and [t.track_id for t in p.tracker.tracks] == [3]
    assert clock.now() - NOON == timedelta(seconds=5400)
