"""The node's self-test (issue 20): the tone loop by FFT, the button loop, timeouts, the schedule, and
the signed ``selftest.run`` command through the node's one dispatcher."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge.clock import SystemClock
from edge.errors import ConfigError
from edge.hw.audio import FakeAcousticLoop
from edge.link.commands import CommandGuard
from edge.link.dispatch import CommandDispatcher
from edge.protocol import Command, SelftestCheck, SelftestResultData
from edge.selftest.audio import audio_loop, measure
from edge.selftest.checks import (
    Check,
    button_loop,
    clock_skew_check,
    disk_check,
    read_throttled,
    run_checks,
    skipped,
    throttle_check,
)
from edge.selftest.runner import SelfTester
from edge.selftest.schedule import next_run, offset, parse_window

KEY = b"k" * 32


def test_measure_finds_the_tone_and_its_level() -> None:
    from edge.hw.audio import tone
    freq, level = measure(tone(1000, 0.5, 0.5))
    assert abs(freq - 1000) < 5 and abs(level - (-6.0)) < 0.5


def test_audio_loop_passes_with_a_working_speaker_and_fails_when_the_gain_is_cut() -> None:
    good = FakeAcousticLoop(gain=0.3)
    result = asyncio.run(audio_loop(good))
    assert result.status == "pass" and isinstance(result.value, float) and result.value > -40
    assert good.played == [(1000.0, 0.2)]  # first try was enough
    dead = FakeAcousticLoop(gain=0.0)
    result = asyncio.run(audio_loop(dead))
    assert result.status == "fail" and result.limit == -40.0
    assert [v for _, v in dead.played] == [0.2, 0.5, 1.0]  # rising volume on retry
    assert "not heard" in result.detail


def test_audio_loop_retries_louder_when_the_speaker_is_weak() -> None:
    weak = FakeAcousticLoop(gain=0.015)  # -40 dBFS needs volume ≥ ~0.67
    result = asyncio.run(audio_loop(weak))
    assert result.status == "pass" and [v for _, v in weak.played] == [0.2, 0.5, 1.0]


def test_audio_loop_fails_on_the_wrong_frequency() -> None:
    result = asyncio.run(audio_loop(FakeAcousticLoop(gain=0.3, shift_hz=400)))
    assert result.status == "fail" and "1400 Hz" in result.detail


class Wiring:
    """Test drive across the button: the input follows the drive unless the optocoupler is broken."""

    def __init__(self, broken: bool = False) -> None:
        self.driven = False
        self.broken = broken
        self.presses_seen_while: list[bool] = []
        self.gate: Any = None

    def drive(self, on: bool) -> None:
        self.driven = on
        if on and self.gate is not None:
            self.presses_seen_while.append(self.gate.testing)

    @property
    def pressed(self) -> bool:
        return self.driven and not self.broken


class Gate:
    testing = False


def test_button_loop_pass_fail_and_skipped() -> None:
    gate = Gate()
    wiring = Wiring()
    wiring.gate = gate
    ok = asyncio.run(button_loop(wiring, gate))
    assert ok.status == "pass" and ok.unit == "s"
    assert wiring.presses_seen_while == [True]  # the role's gate was closed while the press was driven
    assert gate.testing is False and wiring.driven is False
    bad = asyncio.run(button_loop(Wiring(broken=True), gate, limit_s=0.05))
    assert bad.status == "fail" and "not seen" in bad.detail and gate.testing is False
    held = Wiring()
    held.driven = True  # somebody is pressing: the test leaves the button alone
    busy = asyncio.run(button_loop(held, gate))
    assert busy.status == "skipped" and "held" in busy.detail and held.presses_seen_while == []
    none = asyncio.run(button_loop(None, gate))
    assert none.status == "skipped" and "no test wiring" in none.detail


def test_a_hanging_check_ends_as_failed_timeout_and_the_loop_stays_free() -> None:
    async def scenario() -> tuple[SelftestResultData, int]:
        ticks = 0

        async def ticker() -> None:  # stands for the alarm path: must keep running during the self-test
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        hang = FakeAcousticLoop(hang=True)
        result = await run_checks([Check("audio_loop", lambda: audio_loop(hang), timeout_s=0.3),
                                   Check("siren_feedback", skipped("siren_feedback", "not wired"))])
        task.cancel()
        return result, ticks

    result, ticks = asyncio.run(scenario())
    audio, siren = result.checks
    assert audio.status == "fail" and audio.detail == "failed: timeout"
    assert siren.status == "skipped" and result.ok is False
    assert ticks >= 10


def test_a_check_that_raises_is_a_failed_check() -> None:
    async def boom() -> SelftestCheck:
        raise OSError("camera gone")
    result = asyncio.run(run_checks([Check("camera", boom)]))
    assert result.checks[0].status == "fail" and "camera gone" in result.checks[0].detail


def test_system_checks(tmp_path: Path) -> None:
    disk = asyncio.run(disk_check(tmp_path, limit_pct=100.0))
    assert disk.status == "pass" and disk.unit == "%"
    assert asyncio.run(disk_check(tmp_path, limit_pct=0.0)).status == "fail"
    flags = tmp_path / "get_throttled"
    flags.write_text("50005\n")  # under-voltage now + throttled now, and both have occurred
    assert read_throttled(flags) == 0x50005
    power = throttle_check(0x50005)
    assert power.status == "fail" and "under-voltage now" in power.detail
    assert throttle_check(0x50000).status == "pass"  # only "has occurred": noted, not failed
    assert throttle_check(None).status == "skipped"
    assert clock_skew_check(-12.0).status == "fail" and clock_skew_check(0.4).status == "pass"


def test_the_schedule_spreads_nodes_over_the_window_and_refuses_bad_windows() -> None:
    window = parse_window("03:00", 60)[1]
    offsets = [offset(f"pole-{i:04d}", window) for i in range(2000)]
    assert all(timedelta(0) <= o < window for o in offsets)
    per_minute = [0] * 60
    for o in offsets:
        per_minute[int(o.total_seconds() // 60)] += 1
    assert max(per_minute) < 60  # ~33 a minute; no pile-up at 03:00
    now = datetime(2026, 12, 4, 12, 0)
    at = next_run("pole-07", now)
    assert at.date() == datetime(2026, 12, 5).date() and at.hour == 3
    assert next_run("pole-07", datetime(2026, 12, 4, 2, 0)).date() == now.date()
    with pytest.raises(ConfigError, match="HH:MM.*HH:MM"):
        parse_window("3 o'clock", 60)
    with pytest.raises(ConfigError, match="1..720"):
        parse_window("03:00", 0)
    with pytest.raises(ConfigError):
        SelfTester("pole-07", [], lambda k, d: None, start="25:00")


def _dispatcher(tmp_path: Path, sent: list[tuple[str, dict[str, Any]]]) -> CommandDispatcher:
    guard = CommandGuard("pole-07", KEY, tmp_path / "nonces.db", SystemClock())
    return CommandDispatcher(guard, audit=lambda kind, data: sent.append((kind, data)))


def test_selftest_run_through_the_dispatcher_signed_refused_replayed(tmp_path: Path) -> None:
    sent: list[tuple[str, dict[str, Any]]] = []
    commands = _dispatcher(tmp_path, sent)
    dead = FakeAcousticLoop(gain=0.0)
    tester = SelfTester("pole-07", [Check("audio_loop", lambda: audio_loop(dead)),
                                    Check("button_loop", lambda: button_loop(None, Gate()))],
                        lambda kind, data: sent.append((kind, data)))
    tester.register(commands)
    cmd = Command.make("pole-07", "selftest.run", {}, operator="wang").signed(KEY)
    reply = asyncio.run(commands.handle(cmd.to_bytes()))
    assert reply is not None and reply.ok and reply.detail == "failed: audio_loop"
    kind, data = sent[-1]
    assert kind == "selftest.result"
    result = SelftestResultData.model_validate(data)
    assert result.trigger == "command" and result.command_id == cmd.id and not result.ok
    assert {c.name: c.status for c in result.checks} == {"audio_loop": "fail", "button_loop": "skipped"}
    # replayed: refused and audited, no second self-test
    again = asyncio.run(commands.handle(cmd.to_bytes()))
    assert again is not None and not again.ok and "refused" in again.detail
    assert sent[-1][0] == "command.refused" and sum(k == "selftest.result" for k, _ in sent) == 1
    # unsigned
    unsigned = Command.make("pole-07", "selftest.run", {})
    refused = asyncio.run(commands.handle(unsigned.to_bytes()))
    assert refused is not None and "bad signature" in refused.detail
    # only some checks; an unknown name is skipped and said
    some = Command.make("pole-07", "selftest.run", {"checks": ["button_loop", "nope"]}).signed(KEY)
    reply = asyncio.run(commands.handle(some.to_bytes()))
    assert reply is not None and reply.ok
    got = {c["name"]: c for c in reply.data["checks"]}
    assert set(got) == {"button_loop", "nope"} and got["nope"]["detail"] == "no such check on this node"
    # args that do not fit the contract
    wrong = Command.make("pole-07", "selftest.run", {"checks": "all"}).signed(KEY)
    refused = asyncio.run(commands.handle(wrong.to_bytes()))
    assert refused is not None and not refused.ok and "args.checks" in refused.detail
    json.dumps(sent)  # every event is JSON-ready


# --- the pole: real role, MockFactory pins, real outbox -------------------------------------
def _pole(tmp_path: Path, **pins: Any) -> Any:
    from types import SimpleNamespace

    from gpiozero.pins.mock import MockFactory

    from edge.clock import FakeClock
    from edge.config import NodeConfig
    from edge.hw.camera import SyntheticCamera
    from edge.hw.gpio import AlarmPostPins
    from edge.link.outbox import Outbox
    from edge.roles.alarm_post import AlarmPost
    from edge.selftest.pole import pole_checks

    cfg = NodeConfig.model_validate({
        "node": {"id": "pole-07", "kind": "alarm_post", "place": "Market gate", "grid": "G07"},
        "pins": {"factory": "mock", **pins}, "data_dir": str(tmp_path)})
    hw = AlarmPostPins(cfg.pins, MockFactory())
    clock = FakeClock()
    outbox = Outbox(tmp_path / "outbox.db")
    guard = CommandGuard("pole-07", KEY, tmp_path / "nonces.db", clock)
    commands = CommandDispatcher(guard, audit=lambda kind, data: role.emit(kind, data))
    camera = SyntheticCamera(320, 240, "pole-07")
    role = AlarmPost(cfg, hw, camera, outbox, clock, commands)
    hw.on_button(lambda pressed: role.on_button_edge(pressed, clock.monotonic()))
    tone = FakeAcousticLoop()
    hub = answering_hub(role, outbox)
    checks = pole_checks(cfg, hw, role, tone=tone, read_frame=camera.read, reference_sharpness=lambda: None,
                         outbox_depth=outbox.depth, probe=hub.probe, connected=lambda: True,
                         command_skew=lambda: None, data_dir=tmp_path)
    return SimpleNamespace(cfg=cfg, pins=hw, role=role, outbox=outbox, clock=clock, tone=tone, checks=checks,
                           hub=hub, close=lambda: (hw.close(), outbox.close(), guard.close()))


def answering_hub(role: Any, outbox: Any, *, delay_s: float = 0.02, hub_behind_s: float = 0.0) -> Any:
    """A stand-in for broker + hub: each probe the role emits is receipted after ``delay_s`` with the hub's
    clock ``hub_behind_s`` behind this machine's (``answer = False``: the hub is down, no receipt)."""
    from datetime import UTC
    from types import SimpleNamespace

    from edge.link.outbox import event_key
    from edge.selftest.probe import UplinkProbe

    hub = SimpleNamespace(answer=True, probes=[], probe=None)

    def emit(kind: str, data: dict[str, Any]) -> Any:
        event = role.emit(kind, data)
        hub.probes.append(str(event.id))
        if hub.answer:
            def receipt() -> None:
                outbox.remove([event_key(str(event.id))])
                hub.probe.on_receipt([str(event.id)], datetime.now(UTC) - timedelta(seconds=hub_behind_s))
            asyncio.get_running_loop().call_later(delay_s, receipt)
        return event

    hub.probe = UplinkProbe(emit, withdraw=lambda event_id: outbox.remove([event_key(event_id)]))
    return hub


def _kinds(outbox: Any) -> list[str]:
    from edge.protocol import Event, Priority
    return [Event.model_validate_json(e.payload).kind for p in Priority for e in outbox.fresh(p, 0, 1000)
            if e.key.startswith("e:")]


def test_a_pole_self_test_with_the_test_wiring_raises_no_alarm_and_leaves_the_led_alone(tmp_path: Path) -> None:
    pole = _pole(tmp_path, button_test_drive=5, siren_feedback=6)
    try:
        result = asyncio.run(run_checks(pole.checks))
        got = {c.name: c for c in result.checks}
        assert got["button_loop"].status == "pass", got["button_loop"]
        assert got["audio_loop"].status == "pass" and got["siren_feedback"].status == "pass"
        assert got["enclosure"].status == "pass" and got["led"].status == "pass"
        assert got["camera"].status == "pass" and "focus not judged" in got["camera"].detail
        assert pole.role.test_presses == 1 and pole.role.presses == 0 and pole.role.alarm is None
        assert "alarm.pressed" not in _kinds(pole.outbox)
        assert pole.pins.light.pattern == "idle" and not pole.pins.siren.value
        # a real press after the self-test is an alarm as always
        pole.clock.advance(1)
        pole.role.tick(pole.clock.monotonic())  # the driven release settles (the agent ticks every 50 ms)
        pole.clock.advance(1)
        pole.pins.sim_button(True)
        assert pole.role.presses == 1 and "alarm.pressed" in _kinds(pole.outbox)
    finally:
        pole.close()


def test_a_pole_self_test_finds_broken_wiring_a_dead_speaker_a_dead_siren_and_an_open_enclosure(
        tmp_path: Path) -> None:
    pole = _pole(tmp_path, button_test_drive=5, siren_feedback=6)
    try:
        pole.pins.sim_test_wiring_ok = False
        pole.pins.sim_siren_ok = False
        pole.tone.gain = 0.0
        pole.pins.sim_enclosure(True)
        result = asyncio.run(run_checks(pole.checks))
        got = {c.name: c.status for c in result.checks}
        assert {k: got[k] for k in ("button_loop", "audio_loop", "siren_feedback", "enclosure")} == \
            dict.fromkeys(("button_loop", "audio_loop", "siren_feedback", "enclosure"), "fail")
        assert not result.ok and pole.role.presses == 0
    finally:
        pole.close()


def test_a_pole_without_test_wiring_says_what_it_skipped(tmp_path: Path) -> None:
    pole = _pole(tmp_path)
    try:
        result = asyncio.run(run_checks(pole.checks))
        got = {c.name: c for c in result.checks}
        assert got["button_loop"].status == "skipped" and "pins.button_test_drive" in got["button_loop"].detail
        assert got["siren_feedback"].status == "skipped"
    finally:
        pole.close()


def test_a_resident_holding_the_button_through_the_self_test_still_raises_the_alarm(tmp_path: Path) -> None:
    pole = _pole(tmp_path, button_test_drive=5)
    try:
        pole.role.testing = True
        pole.pins.sim_button(True)  # swallowed as the self-test's
        assert pole.role.presses == 0
        pole.role.testing = False  # gate opens, button still held: a resident
        assert pole.role.presses == 1 and "alarm.pressed" in _kinds(pole.outbox)
    finally:
        pole.close()


def test_the_config_refuses_bad_windows_and_shared_pins() -> None:
    from pydantic import ValidationError

    from edge.config import NodeConfig
    base = {"node": {"id": "pole-07", "kind": "alarm_post"}, "pins": {"factory": "mock"}}
    with pytest.raises(ValidationError, match="HH:MM"):
        NodeConfig.model_validate({**base, "selftest": {"start": "3am"}})
    with pytest.raises(ValidationError, match="1..720"):
        NodeConfig.model_validate({**base, "selftest": {"window_min": 1000}})
    with pytest.raises(ValidationError, match="pins.button_test_drive and pins.alarm_button both use GPIO17"):
        NodeConfig.model_validate({**base, "pins": {"factory": "mock", "button_test_drive": 17}})
