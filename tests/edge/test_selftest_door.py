"""The door's self-test (issue 20, docs/selftest.md "Doors") on MockFactory pins and the real R30x driver
over the pty reader simulator, and the uplink probe's round trip and clock-skew arithmetic.

The rule a door's test must keep above all: it never unlocks the door. Every test here records the relay
and asserts it was not touched."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge.selftest.checks import run_checks
from edge.selftest.door import door_checks
from edge.selftest.probe import ProbeResult, UplinkProbe, clock_skew, skew_result, uplink_result
from tests.edge.test_door import Rig
from tests.edge.test_selftest import answering_hub


def _door(tmp_path: Path, *, enrolled: int = 3, hub_behind_s: float = 0.0, **selftest: Any) -> Any:
    rig = Rig(tmp_path, enrolled=enrolled)
    if selftest:
        rig.cfg = rig.cfg.model_copy(update={"selftest": rig.cfg.selftest.model_copy(update=selftest)})
    rig.hub = answering_hub(rig.role, rig.outbox, hub_behind_s=hub_behind_s)
    rig.relay_calls = []
    real = rig.pins.set_locked
    rig.pins.set_locked = lambda locked: (rig.relay_calls.append(locked), real(locked))[1]
    rig.checks = door_checks(rig.cfg, rig.pins, rig.role, outbox_depth=rig.outbox.depth, probe=rig.hub.probe,
                             connected=lambda: True, command_skew=lambda: None, data_dir=tmp_path)
    return rig


def _run(rig: Any) -> dict[str, Any]:
    result = asyncio.run(run_checks(rig.checks))
    rig.result = result
    return {c.name: c for c in result.checks}


def test_a_healthy_door_passes_without_its_relay_being_touched(tmp_path: Path) -> None:
    rig = _door(tmp_path)
    try:
        relay_before = rig.pins.relay.value
        got = _run(rig)
        assert got["reader"].status == "pass" and (got["reader"].value, got["reader"].limit) == (3, 300)
        assert "3 of 300 slots" in got["reader"].detail
        assert got["lock"].status == "pass" and "never unlocks" in got["lock"].detail
        assert got["exit_button"].status == "pass" and got["fire_input"].status == "pass"
        assert got["enclosure"].status == "skipped"
        assert got["uplink"].status == "pass" and 0 < got["uplink"].value < 1.0
        assert got["clock_skew"].status == "pass" and abs(got["clock_skew"].value) < 0.5
        assert [c.name for c in rig.result.checks][-7:] == ["uplink", "outbox", "disk", "clock_skew", "cpu_temp",
                                                            "power", "sd_wear"]
        assert rig.result.ok is True
        assert rig.relay_calls == [] and rig.pins.relay.value == relay_before and rig.pins.locked
        assert len(rig.hub.probes) == 1  # the clock check used the uplink check's probe, not a second one
        assert "selftest.probe" not in rig.kinds()  # receipted: gone from the outbox
        assert "door.granted" not in rig.kinds() and "door.forced" not in rig.kinds()
    finally:
        rig.close()


def test_a_door_self_test_finds_a_dead_reader_a_stuck_exit_button_and_a_door_left_open(tmp_path: Path) -> None:
    rig = _door(tmp_path, check_timeout_s=4)
    try:
        rig.sim.silent = True
        rig.pins.sim_exit(True)  # stuck pressed (the door releases for it, as for any exit press)
        rig.relay_calls.clear()
        got = _run(rig)
        assert got["reader"].status == "fail" and "did not answer" in got["reader"].detail
        assert got["exit_button"].status == "fail" and "stuck" in got["exit_button"].detail
        assert got["lock"].status == "skipped"  # released by the exit input: not judged
        assert rig.result.ok is False and rig.relay_calls == []
        rig.pins.sim_exit(False)
        rig.advance(rig.cfg.door.unlock_s + 1)  # relocked by the door itself
        rig.relay_calls.clear()
        rig.pins.sim_door(True)  # open, while the lock is locked (no grant): wedged, forced or a cut wire
        got = _run(rig)
        assert got["lock"].status == "fail" and got["lock"].value == "open"
        assert got["exit_button"].status == "pass" and rig.relay_calls == []
    finally:
        rig.close()


def test_a_full_reader_fails_and_a_missing_one_is_said(tmp_path: Path) -> None:
    rig = _door(tmp_path, enrolled=300)
    try:
        got = _run(rig)
        assert got["reader"].status == "fail" and "full" in got["reader"].detail and got["reader"].value == 300
        rig.role.reader = None
        assert _run(rig)["reader"].status == "fail" and "not open" in _run(rig)["reader"].detail
    finally:
        rig.close()


def test_a_released_door_is_not_judged_and_not_touched(tmp_path: Path) -> None:
    rig = _door(tmp_path)
    try:
        rig.role.grant(rig.clock.monotonic(), operator="wang")  # a tenant passing right now
        rig.pins.sim_door(True)
        rig.relay_calls.clear()
        got = _run(rig)
        assert got["lock"].status == "skipped" and "never unlocks" in got["lock"].detail
        assert rig.relay_calls == [] and not rig.pins.locked  # still released for the grant, as it was
        rig.pins.sim_door(False)
        rig.advance(rig.cfg.door.unlock_s + 1)
        assert rig.pins.locked and _run(rig)["lock"].status == "pass"
    finally:
        rig.close()


def test_with_the_hub_down_the_uplink_fails_in_its_limit_and_the_probe_is_withdrawn(tmp_path: Path) -> None:
    rig = _door(tmp_path, uplink_limit_s=0.6)
    try:
        rig.hub.answer = False
        got = _run(rig)
        assert got["uplink"].status == "fail" and got["uplink"].detail == "no receipt in 0.6 s"
        assert got["clock_skew"].status == "skipped" and "no receipt" in got["clock_skew"].detail
        assert len(rig.hub.probes) == 1  # the clock check did not wait a second time
        assert rig.result.duration_s < 0.6 + 5  # the run ends; the probe's wait is its only long part
        assert "selftest.probe" not in rig.kinds()  # withdrawn: no stale probes pile up behind the alarms
        assert rig.relay_calls == []
    finally:
        rig.close()


def test_the_clock_skew_is_the_receipt_s_hub_time_corrected_by_half_the_round_trip(tmp_path: Path) -> None:
    hub = datetime(2026, 12, 4, 3, 7, 10, tzinfo=UTC)
    assert clock_skew(hub + timedelta(seconds=3.1), hub, 0.2) == pytest.approx(3.0)
    assert clock_skew(hub - timedelta(seconds=2.0), hub, 0.0) == pytest.approx(-2.0)
    ahead = skew_result(ProbeResult(True, 0.2, 7.25, 5.0, 0.0), 5.0)
    assert ahead.status == "fail" and ahead.value == 7.25 and "ahead of" in ahead.detail and "±0.100" in ahead.detail
    behind = skew_result(ProbeResult(True, 0.2, -0.4, 5.0, 0.0), 5.0)
    assert behind.status == "pass" and behind.value == -0.4
    older_hub = skew_result(ProbeResult(True, 0.2, None, 5.0, 0.0), 5.0)
    assert older_hub.status == "skipped" and "older hub" in older_hub.detail
    no_receipt = skew_result(ProbeResult(False, None, None, 5.0, 0.0), 5.0, command_skew=1.5)
    assert no_receipt.status == "pass" and "command's issue time" in no_receipt.detail
    assert uplink_result(ProbeResult(False, None, None, 5.0, 0.0), connected=False).detail.startswith(
        "no receipt in 5 s (not connected")
    # through the probe: a hub clock 7 s behind this node's, receipted after 50 ms
    rig = _door(tmp_path, hub_behind_s=7.0)
    try:
        got = _run(rig)
        assert got["clock_skew"].status == "fail" and got["clock_skew"].value == pytest.approx(7.0, abs=0.1)
    finally:
        rig.close()


def test_a_receipt_for_another_event_does_not_answer_the_probe() -> None:
    class Ev:
        def __init__(self) -> None:
            import uuid
            self.id = uuid.uuid4()

    emitted: list[Ev] = []
    probe = UplinkProbe(lambda kind, data: emitted.append(Ev()) or emitted[-1], withdraw=lambda i: None)

    async def go() -> ProbeResult:
        task = asyncio.create_task(probe.round_trip(0.3))
        await asyncio.sleep(0.05)
        probe.on_receipt(["not-the-probe"], datetime.now(UTC))
        return await task

    r = asyncio.run(go())
    assert not r.ok and r.rtt_s is None

    async def refused() -> ProbeResult:
        task = asyncio.create_task(probe.round_trip(2.0))
        await asyncio.sleep(0.05)
        probe.on_receipt([], None, {str(emitted[-1].id): "invalid selftest.probe data: sent_at"})
        return await task

    r = asyncio.run(refused())
    check = uplink_result(r, connected=True)
    assert check.status == "fail" and check.detail == "the hub refused the probe: invalid selftest.probe data: sent_at"
    assert skew_result(r, 5.0).status == "skipped"
