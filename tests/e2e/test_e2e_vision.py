"""The pole's camera thread end to end: the pre-press burst reaches the hub (and is receipted),
and on-device detection reports a person with a picture."""

from __future__ import annotations

import os
import sqlite3
import time

import cv2
import pytest

from tests.conftest import wait_for


def _hub_rows(hub, sql: str, *args):
    con = sqlite3.connect(hub.data_dir / "hub.db")
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def test_press_sends_the_burst_from_before_it(broker, hub_factory, node_factory) -> None:
    hub = hub_factory(broker.url)
    node = node_factory("pole-41", broker.url, hub.register("pole-41"), camera={"fps": 5, "burst_s": 3})
    time.sleep(3.5)  # let the ring fill with the seconds before the press
    alarm_id = node.control(cmd="press")["state"]["alarm"]["id"]
    frames = wait_for(lambda: _hub_rows(hub, "SELECT n, jpeg FROM clips WHERE event_id = ? ORDER BY n", alarm_id)
                      if len(_hub_rows(hub, "SELECT n FROM clips WHERE event_id = ?", alarm_id)) >= 4 else None,
                      message="burst frames at the hub")
    assert all(jpeg[:2] == b"\xff\xd8" for _, jpeg in frames)
    assert [n for n, _ in frames] == list(range(len(frames)))
    wait_for(lambda: node.control(cmd="state")["state"]["outbox"] == 0, message="clips receipted, outbox empty")
    listing = hub.get(f"/api/events/{alarm_id}/clips")
    assert listing["frames"] == [n for n, _ in frames]
    import httpx

    r = httpx.get(f"{hub.url}{listing['urls'][0]}", headers=hub.headers)
    assert r.status_code == 200 and r.content == frames[0][1]


def test_pole_detects_a_person_on_its_camera(tmp_path, broker, hub_factory, node_factory) -> None:
    from skimage import data

    from edge.vision.models import ModelError, model_path

    try:
        model_path("ssdlite_person")
    except ModelError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"detector model not built here: {exc}")
    image = tmp_path / "street.png"
    cv2.imwrite(str(image), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    hub = hub_factory(broker.url)
    node_factory("pole-42", broker.url, hub.register("pole-42"),
                 camera={"source": str(image), "fps": 4, "burst_s": 0},
                 vision={"detector": "ssdlite_person", "threads": 1,
                         "zones": [{"name": "lane", "points": [[0, 0], [1, 0], [1, 1], [0, 1]]}]})
    found = wait_for(lambda: _hub_rows(hub, "SELECT id, data FROM events WHERE node = ? AND kind = ?",
                                       "pole-42", "detection.person"), timeout=60, message="detection.person")
    assert len(found) == 1  # once per tracked object, not once per frame
    event_id = found[0][0]
    wait_for(lambda: _hub_rows(hub, "SELECT 1 FROM snapshots WHERE event_id = ?", event_id), message="its snapshot")
    assert '"zone": "lane"' in found[0][1] or '"zone":"lane"' in found[0][1]
