"""Regions (detect where motion is, at the model's scale), tiles, cross-region NMS, still tracks.

No model needed: a scripted detector answers in the crop's own pixels, as a real one does.
"""

from __future__ import annotations

import numpy as np
import pytest

from edge.vision.config import VisionSettings
from edge.vision.detector import Detection, Detector
from edge.vision.pipeline import class_thresholds, detector_options
from edge.vision.regions import detect_in_regions, full_pass, merge, plan_regions, plan_within, tile_regions
from edge.vision.tracker import Tracker

W, H = 768, 576


def _covers(region: tuple[int, int, int, int], box: tuple[float, float, float, float]) -> bool:
    return region[0] <= box[0] and region[1] <= box[1] and box[2] <= region[2] and box[3] <= region[3]


def test_a_small_motion_gets_one_model_sized_square_around_it_inside_the_frame() -> None:
    (r,) = plan_regions([(700, 500, 740, 570)], W, H, side=240)
    assert (r[2] - r[0], r[3] - r[1]) == (240, 240)
    assert 0 <= r[0] and r[2] <= W and 0 <= r[1] and r[3] <= H  # pushed in from the corner
    assert _covers(r, (700, 500, 740, 570))


def test_nearby_motions_share_a_region_and_far_ones_do_not() -> None:
    near = plan_regions([(100, 100, 130, 180), (160, 110, 190, 190)], W, H, side=240)
    assert len(near) == 1
    far = plan_regions([(100, 100, 130, 180), (600, 300, 630, 380)], W, H, side=240)
    assert len(far) == 2 and all(r[2] - r[0] == 240 for r in far)


def test_a_big_motion_is_tiled_and_also_seen_whole() -> None:
    blob = (100, 120, 700, 400)  # a crowd spread across the view
    regions = plan_regions([blob], W, H, side=240)
    assert len(regions) > 2
    assert any(_covers(r, blob) for r in regions)  # the whole blob, for a person taller than a tile
    xs = sorted({r[0] for r in regions})
    assert xs[0] <= 100 and max(r[2] for r in regions) >= 700


def test_tiles_cover_the_frame_with_overlap() -> None:
    tiles = tile_regions(W, H, side=240)
    cover = np.zeros((H, W), np.uint8)
    for x1, y1, x2, y2 in tiles:
        cover[y1:y2, x1:x2] += 1
    assert cover.min() >= 1 and cover.max() >= 2
    assert len(tiles) == 6 and all(r[2] - r[0] <= 1.4 * 240 for r in tiles)


def test_a_busy_frame_gets_fewer_coarser_regions_and_the_full_pass_is_bounded() -> None:
    boxes = [(x, y, x + 20, y + 50) for x in range(0, 760, 90) for y in range(0, 520, 130)]
    assert len(plan_regions(boxes, W, H, side=160)) > 4
    assert len(plan_within(boxes, W, H, side=160, max_regions=4)) <= 4
    full = full_pass(W, H, side=160, max_regions=4)
    assert full[0] == (0, 0, W, H) and len(full) <= 5


class CropDetector(Detector):
    """Finds a person wherever a bright square is, in the crop's pixels."""

    name = "crop"

    def __init__(self) -> None:
        super().__init__(threshold=0.2)
        self.crops: list[tuple[int, int]] = []

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        self.crops.append(frame_bgr.shape[:2])
        ys, xs = np.nonzero(frame_bgr[:, :, 0] > 200)
        if not len(xs):
            return []
        return [Detection("person", 0.6, (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)))]


def test_boxes_map_back_to_frame_pixels_and_merge_across_regions() -> None:
    frame = np.zeros((H, W, 3), np.uint8)
    frame[300:380, 400:430] = 255
    det = CropDetector()
    regions = [(300, 250, 540, 490), (350, 200, 590, 440)]  # both hold the whole person
    found = detect_in_regions(det, frame, regions)
    assert det.crops == [(240, 240), (240, 240)]
    assert [d.box for d in found] == [(400.0, 300.0, 430.0, 380.0)]


def test_a_box_cut_by_an_inner_tile_edge_is_dropped_and_kept_at_the_frame_edge() -> None:
    frame = np.zeros((H, W, 3), np.uint8)
    frame[300:380, 520:560] = 255  # straddles x=540, the first region's inner right edge
    frame[0:60, 0:20] = 255  # in the frame's corner
    det = CropDetector()
    cut = detect_in_regions(det, frame, [(300, 250, 540, 490)])
    assert cut == []
    corner = detect_in_regions(det, frame, [(0, 0, 240, 240)])
    assert [d.box for d in corner] == [(0.0, 0.0, 20.0, 60.0)]


def test_per_class_thresholds_and_a_torso_inside_the_whole_person_goes() -> None:
    whole = Detection("person", 0.9, (100, 100, 140, 220))
    torso = Detection("person", 0.5, (102, 105, 138, 160))
    bike = Detection("bicycle", 0.5, (95, 150, 150, 225))
    assert merge([torso, whole, bike]) == [whole, bike]  # a rider does not suppress the bicycle
    van = Detection("car", 0.5, (600, 40, 720, 100))
    assert merge([Detection("truck", 0.4, (602, 42, 720, 101)), van]) == [van]  # one van, not two

    s = VisionSettings(detector="centernet_coco", thresholds={"person": 0.6})
    th = class_thresholds(s)
    assert th["person"] == 0.6 and th["car"] < 0.6
    assert detector_options(s)["threshold"] == min(th.values())
    every = VisionSettings(detector="centernet_coco", threshold=0.7)
    assert set(class_thresholds(every).values()) == {0.7}
    with pytest.raises(ValueError, match="between 0 and 1"):
        VisionSettings(thresholds={"person": 1.5})


def test_a_parked_object_becomes_still_and_outlives_the_full_pass_interval() -> None:
    t = Tracker(max_age_s=2.0, still_s=3.0, still_max_age_s=5.0)
    car = Detection("car", 0.8, (600, 40, 720, 100))
    for i in range(5):  # seen every second, not moving
        t.update([car], float(i))
    (track,) = t.tracks
    assert t.still(track) and t.moving == []
    t.expire(8.5)  # unseen 4.5 s: a moving track would be gone (2 s), a still one lives (5 s)
    assert t.tracks == [track]
    for i in range(5):  # a walker, a few pixels a second, and the car still there
        t.update([car, Detection("person", 0.8, (100 + 8 * i, 200, 130 + 8 * i, 280))], 9.0 + i)
    assert [x.label for x in t.moving] == ["person"] and len(t.tracks) == 2


@pytest.mark.parametrize("predict", [True, False])
def test_a_walker_hidden_for_a_second_keeps_their_id_with_prediction(predict: bool) -> None:
    """5 runs a second, 40 px/s to the right; hidden behind a sign for 1.2 s, the walker comes
    out 48 px further on, clear of their last box (IoU 0): only the filter knows it is them."""
    t = Tracker(predict=predict)
    box = lambda x: (x, 200.0, x + 30.0, 280.0)  # noqa: E731
    for i in range(6):
        t.update([Detection("person", 0.9, box(100 + 8 * i))], i * 0.2)
    first = t.tracks[0].track_id
    (seen,) = t.update([Detection("person", 0.9, box(100 + 8 * 12))], 12 * 0.2)  # after the sign
    assert (seen.track_id == first) is predict
