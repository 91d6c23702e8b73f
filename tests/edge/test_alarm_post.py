"""The alarm pole's logic on gpiozero MockFactory pins, a fake clock and a real SQLite outbox."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from gpiozero.pins.mock import MockFactory

from edge.clock import FakeClock
from edge.config import NodeConfig
from edge.hw.camera import SyntheticCamera
from edge.hw.gpio import AlarmPostPins
from edge.link.commands import CommandGuard
from edge.link.dispatch import CommandDispatcher
from edge.link.outbox import Outbox
from edge.protocol import Command, Event, Priority, Topics
from edge.roles.alarm_post import AlarmPost

KEY = b"test-node-key-0123456789"


@pytest.fixture()
def rig(tmp_path: Path):
    cfg = NodeConfig.model_validate({
        "node": {"id": "pole-07", "kind": "alarm_post", "place": "Market gate", "grid": "G07",
                 "location": {"lat": 24.48, "lon": 118.11}},
        "pins": {"factory": "mock"}, "data_dir": str(tmp_path)})
    factory = MockFactory()
    pins = AlarmPostPins(cfg.pins, factory)
    clock = FakeClock()
    outbox = Outbox(tmp_path / "outbox.db")
    guard = CommandGuard("pole-07", KEY, tmp_path / "nonces.db", clock)
    commands = CommandDispatcher(guard, audit=lambda kind, data: role.emit(kind, data))
    camera = SyntheticCamera(320, 240, "pole-07")
    role = AlarmPost(cfg, pins, camera, outbox, clock, commands)
    pins.on_button(lambda pressed: role.on_button_edge(pressed, clock.monotonic()))
    pins.on_tamper(lambda opened: role.on_enclosure_edge(opened, clock.monotonic()))
    yield SimpleNamespace(role=role, pins=pins, clock=clock, outbox=outbox, camera=camera, commands=commands)
    pins.close()
    outbox.close()
    guard.close()


@pytest.fixture()
def commands(rig) -> CommandDispatcher:
    """The pole's command dispatcher: checked, refused and audited there, obeyed by the role."""
    return rig.commands


def queued_events(outbox: Outbox) -> list[Event]:
    out = []
    for p in Priority:
        for entry in outbox.fresh(p, 0, 10_000):
            if entry.key.startswith("e:"):
                out.append(Event.model_validate_json(entry.payload))
    return out


def press(pins: AlarmPostPins, clock: FakeClock, hold: float = 0.2) -> None:
    pins.button.pin.drive_low()
    clock.advance(hold)
    pins.button.pin.drive_high()
    clock.advance(0.1)


def signed(name: str, args: dict, **kw) -> bytes:
    return Command.make("pole-07", name, args, operator="wang", **kw).signed(KEY).to_bytes()


def test_press_makes_alarm_with_snapshot_and_blinks(rig) -> None:
    pins, clock, outbox = rig.pins, rig.clock, rig.outbox
    press(pins, clock)
    events = queued_events(outbox)
    assert [e.kind for e in events] == ["alarm.pressed"]
    ev = events[0]
    assert ev.node == "pole-07" and ev.snapshot is True and ev.ts.tzinfo is not None
    assert ev.data["grid"] == "G07" and ev.data["lat"] == 24.48 and ev.data["count"] == 1
    snap = outbox.get(f"s:{ev.id}")
    assert snap is not None and snap.payload[:2] == b"\xff\xd8"
    assert snap.topic == Topics.snapshot("pole-07", str(ev.id))
    assert snap.priority == Priority.ALARM
    assert pins.light.pattern == "sending"


def test_contact_bounce_is_one_press(rig) -> None:
    role, pins, clock, outbox = rig.role, rig.pins, rig.clock, rig.outbox
    pin = pins.button.pin
    for _ in range(5):  # 5 ms of chatter
        pin.drive_low()
        clock.advance(0.001)
        pin.drive_high()
        clock.advance(0.001)
    pin.drive_low()
    clock.advance(0.3)
    role.tick(clock.monotonic())
    assert role.presses == 1
    assert len(queued_events(outbox)) == 1


def test_ten_presses_in_30s_are_one_alarm_with_a_count(rig) -> None:
    role, pins, clock, outbox = rig.role, rig.pins, rig.clock, rig.outbox
    for _ in range(10):
        press(pins, clock, 0.2)
        clock.advance(2)
    role.tick(clock.monotonic())
    assert [e.kind for e in queued_events(outbox)] == ["alarm.pressed"]
    clock.advance(30)
    role.tick(clock.monotonic())
    kinds = [(e.kind, e.data.get("count")) for e in queued_events(outbox)]
    assert kinds == [("alarm.pressed", 1), ("alarm.repeat", 10)]


def test_a_press_while_the_alarm_is_open_is_its_count_at_once_and_after_resolve_a_new_alarm(rig, commands) -> None:
    """Issue 17: a second press 5 minutes later opened a second card for the same pole, and the count lagged
    30 s. Now: the same alarm, its count sent at once; only after the centre resolves it is a press new."""
    role, pins, clock, outbox = rig.role, rig.pins, rig.clock, rig.outbox
    press(pins, clock)
    alarm_id = str(queued_events(outbox)[0].id)
    clock.advance(300)
    press(pins, clock)  # 5 minutes later, the alarm still open at the centre
    events = [(e.kind, e.data.get("count"), e.data.get("alarm_id")) for e in queued_events(outbox)]
    assert events == [("alarm.pressed", 1, None), ("alarm.repeat", 2, alarm_id)]  # at once, no tick needed
    press(pins, clock)  # pressed again within the window: sent when the window ends, not before
    role.tick(clock.monotonic())
    assert len(queued_events(outbox)) == 2
    clock.advance(30)
    role.tick(clock.monotonic())
    assert [(e.kind, e.data.get("count")) for e in queued_events(outbox)][-1] == ("alarm.repeat", 3)
    assert commands.dispatch(signed("alarm.ack", {"alarm_id": alarm_id, "stage": "resolved"})).ok
    press(pins, clock)
    assert [e.kind for e in queued_events(outbox)].count("alarm.pressed") == 2


def test_stuck_button_is_one_alarm_and_one_fault(rig) -> None:
    role, pins, clock, outbox = rig.role, rig.pins, rig.clock, rig.outbox
    pins.button.pin.drive_low()
    for _ in range(200):  # 20 s held down
        clock.advance(0.1)
        role.tick(clock.monotonic())
    kinds = [e.kind for e in queued_events(outbox)]
    assert kinds == ["alarm.pressed", "node.fault"]
    fault = queued_events(outbox)[1]
    assert fault.data["fault"] == "button_stuck"


def test_receipt_ack_and_resolve_drive_the_led(rig, commands) -> None:
    role, pins, clock = rig.role, rig.pins, rig.clock
    press(pins, clock)
    alarm_id = role.alarm.id
    role.on_receipt([alarm_id])
    assert pins.light.pattern == "received"
    reply = commands.dispatch(signed("alarm.ack", {"alarm_id": alarm_id, "stage": "acknowledged"}))
    assert reply.ok
    assert pins.light.pattern == "seen"  # seen by an operator: nobody is on the way yet
    reply = commands.dispatch(signed("alarm.ack", {"alarm_id": alarm_id, "stage": "dispatched"}))
    assert reply.ok
    assert pins.light.pattern == "help_coming" and pins.light.is_lit  # a responder accepted
    reply = commands.dispatch(signed("alarm.ack", {"alarm_id": alarm_id, "stage": "resolved"}))
    assert reply.ok and pins.light.pattern == "idle" and role.alarm is None


def test_no_receipt_in_time_shows_not_delivered(rig) -> None:
    role, pins, clock = rig.role, rig.pins, rig.clock
    press(pins, clock)
    clock.advance(14)
    role.tick(clock.monotonic())
    assert pins.light.pattern == "sending"
    clock.advance(2)
    role.tick(clock.monotonic())
    assert pins.light.pattern == "not_delivered"
    role.on_receipt([role.alarm.id])  # late, but it arrived
    assert pins.light.pattern == "received"


@pytest.mark.parametrize("make, reason", [
    (lambda: Command.make("pole-07", "siren.set", {"on": True}).signed(b"wrong-key").to_bytes(), "bad signature"),
    (lambda: Command.make("pole-07", "siren.set", {"on": True}, ttl=timedelta(seconds=1),
                          now=FakeClock().now() - timedelta(minutes=5)).signed(KEY).to_bytes(), "expired"),
    (lambda: Command.make("pole-07", "siren.set", {"on": True}, ttl=timedelta(hours=2))
     .signed(KEY).to_bytes(), "lifetime"),
    (lambda: Command.make("pole-08", "siren.set", {"on": True}).signed(KEY).to_bytes(), "not pole-07"),
    (lambda: b'{"id": "x"}', "malformed"),
])
def test_forged_expired_or_foreign_commands_are_refused_and_audited(rig, commands, make, reason) -> None:
    pins, outbox = rig.pins, rig.outbox
    reply = commands.dispatch(make())
    assert pins.siren.value == 0
    if reply is not None:
        assert reply.ok is False and reason in reply.detail
    audit = [e for e in queued_events(outbox) if e.kind == "command.refused"]
    assert len(audit) == 1 and reason in audit[0].data["reason"]


def test_replayed_command_is_refused(rig, commands) -> None:
    pins = rig.pins
    payload = signed("siren.set", {"on": True})
    assert commands.dispatch(payload).ok and pins.siren.value == 1
    commands.dispatch(signed("siren.set", {"on": False}))
    reply = commands.dispatch(payload)
    assert reply.ok is False and "replayed" in reply.detail
    assert pins.siren.value == 0


def test_siren_follows_commands_and_states_are_asserted(rig, commands) -> None:
    pins = rig.pins
    commands.dispatch(signed("siren.set", {"on": True}))
    commands.dispatch(signed("siren.set", {"on": False}))
    pins.siren.pin.assert_states([False, True, False])


def test_tamper_switch_raises_tamper_with_snapshot(rig) -> None:
    role, pins, clock, outbox = rig.role, rig.pins, rig.clock, rig.outbox
    pins.tamper.pin.drive_high()  # enclosure door opened: the switch opens
    clock.advance(0.2)
    role.tick(clock.monotonic())
    events = queued_events(outbox)
    assert [e.kind for e in events] == ["tamper.opened"]
    assert events[0].snapshot is True


def test_dead_camera_still_sends_the_alarm_and_reports_tamper(rig) -> None:
    pins, clock, outbox, camera = rig.pins, rig.clock, rig.outbox, rig.camera
    camera.broken = True
    press(pins, clock)
    events = {e.kind: e for e in queued_events(outbox)}
    assert events["alarm.pressed"].snapshot is False
    assert events["tamper.camera"].data["reason"] == "feed_lost"
    assert events["alarm.pressed"].kind == "alarm.pressed"


def test_state_is_json_for_the_sim_socket(rig) -> None:
    role, pins, clock = rig.role, rig.pins, rig.clock
    press(pins, clock)
    state = json.loads(json.dumps(role.state()))
    assert state["led"] == "sending" and state["alarm"]["count"] == 1 and state["outbox"] == 2
    assert "pattern=sending" in repr(pins)
