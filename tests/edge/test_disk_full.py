"""A node whose SD card fills up: detections give way, alarms are still written and sent.

Uses a real 2 MiB tmpfs (needs root to mount; skipped with the reason otherwise).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from edge.link.outbox import Outbox
from edge.protocol import Priority


@pytest.fixture()
def small_disk(tmp_path: Path):
    mnt = tmp_path / "sd"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_drops_detections_but_keeps_every_alarm(small_disk: Path) -> None:
    ob = Outbox(small_disk / "outbox.db", max_bytes=1 << 30, reserve_bytes=256 * 1024)
    payload = os.urandom(4000)
    dropped_at = None
    for i in range(2000):
        if not ob.put(f"e:d{i}", "t", payload, Priority.DETECTION):
            dropped_at = i
            break
    assert dropped_at is not None, "the 2 MiB disk never filled"
    alarms = [f"e:alarm-{uuid.uuid4()}" for _ in range(200)]  # more than the reserve and one eviction round
    for key in alarms:
        assert ob.put(key, "t", payload, Priority.ALARM) is True
    assert all(ob.get(k) is not None for k in alarms)
    assert ob.counter("dropped") >= 1
    assert ob.counter("evicted") >= 1  # detections gave their pages to the alarms
    reopened = Outbox(small_disk / "outbox.db", max_bytes=1 << 30, reserve_bytes=0)
    assert all(reopened.get(k) is not None for k in alarms)


def test_alarm_goes_out_from_memory_when_nothing_can_be_written(small_disk: Path) -> None:
    from gpiozero.pins.mock import MockFactory

    from edge.clock import FakeClock
    from edge.config import NodeConfig
    from edge.hw.camera import SyntheticCamera
    from edge.hw.gpio import AlarmPostPins
    from edge.link.commands import CommandGuard
    from edge.link.dispatch import CommandDispatcher
    from edge.roles.alarm_post import AlarmPost

    ob = Outbox(small_disk / "outbox.db", max_bytes=1 << 30, reserve_bytes=0)
    filler = os.urandom(4000)
    i = 0
    while True:  # fill the disk with alarms: nothing evictable is left
        try:
            ob.put(f"e:old-{i}", "t", filler, Priority.ALARM)
        except Exception:  # noqa: BLE001 - OutboxFull, the state under test
            break
        i += 1
    cfg = NodeConfig.model_validate({"node": {"id": "pole-07", "kind": "alarm_post"}, "pins": {"factory": "mock"},
                                     "data_dir": str(small_disk)})
    pins = AlarmPostPins(cfg.pins, MockFactory())
    sent: list[str] = []
    clock = FakeClock()
    guard = CommandGuard("pole-07", b"k", ":memory:", clock)
    commands = CommandDispatcher(guard, audit=lambda kind, data: role.emit(kind, data))
    role = AlarmPost(cfg, pins, SyntheticCamera(320, 240), ob, clock, commands,
                     send_direct=lambda topic, payload, qos: sent.append(topic))
    pins.on_button(lambda pressed: role.on_button_edge(pressed, clock.monotonic()))
    pins.button.pin.drive_low()
    assert "pingan/v1/nodes/pole-07/events" in sent  # sent live, from memory
    assert any("/snapshots/" in t for t in sent)
    pins.close()
