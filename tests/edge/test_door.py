"""The rental-block door on gpiozero MockFactory pins, the real R30x driver over the pty simulator,
a fake clock, and real SQLite outbox and access list. No sleeps: time moves by hand."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from edge.clock import FakeClock
from edge.config import NodeConfig
from edge.hw.door_pins import DoorPins
from edge.hw.fingerprint import FingerprintReader
from edge.link.commands import CommandGuard
from edge.link.dispatch import CommandDispatcher
from edge.link.outbox import Outbox
from edge.protocol import Command, Event, Priority
from edge.roles.door.access_list import AccessEntry, AccessList
from edge.roles.door.lock import Door
from edge.roles.door.template_crypto import TemplateKeyError, open_template
from edge.sim.reader import ReaderSimulator

KEY = b"test-door-key-0123456789"
BLOCK_KEY = b"block-b01-secret-0123456789abcdef"


def door_config(tmp_path: Path, node: str = "door-b01-01", **door: object) -> NodeConfig:
    return NodeConfig.model_validate({
        "node": {"id": node, "kind": "rental_door", "place": "Block 1 gate", "grid": "G03"},
        "pins": {"factory": "mock"}, "data_dir": str(tmp_path),
        "door": {"lock_relay": 24, "door_contact": 25, "exit_button": 16, "fire_input": 20, **door},
        "reader": {"port": "sim", "timeout": 0.3}})


class Rig:
    """One door: pins, reader simulator + real driver, clock, outbox, commands, access list, role."""

    def __init__(self, tmp_path: Path, node: str = "door-b01-01", enrolled: int = 3, camera=None,
                 block_key: bytes | None = BLOCK_KEY, **door: object) -> None:
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.cfg = door_config(tmp_path, node, **door)
        self.factory = MockFactory()
        self.pins = DoorPins(self.cfg.door, factory=self.factory)
        self.sim = ReaderSimulator(enrolled=enrolled).start()
        self.reader = FingerprintReader.open(self.sim.port, timeout=0.3)
        self.clock = FakeClock()
        self.outbox = Outbox(tmp_path / "outbox.db")
        self.guard = CommandGuard(node, KEY, tmp_path / "nonces.db", self.clock)
        self.access = AccessList(tmp_path / "access.db")
        self.replies: list = []
        self.commands = CommandDispatcher(self.guard, audit=lambda kind, data: self.role.emit(kind, data),
                                          send_reply=self.replies.append)
        self.role = Door(self.cfg, self.pins, self.reader, self.outbox, self.clock, self.commands, self.access,
                         camera=camera, block_key=block_key)
        t = self.clock.monotonic
        self.pins.on_contact(lambda opened: self.role.on_contact_edge(opened, t()))
        self.pins.on_exit(lambda pressed: self.role.on_exit_edge(pressed, t()))
        self.pins.on_fire(lambda active: self.role.on_fire_edge(active, t()))

    def lease(self, slot: int, tenant: str, days: float = 30, start_days: float = -1) -> None:
        now = self.clock.now()
        self.access.put(AccessEntry(slot, tenant, now + timedelta(days=start_days), now + timedelta(days=days)))

    def scan(self) -> None:
        self.role.on_scan(self.role.scan_blocking(not self.role._finger_down), self.clock.monotonic())

    def touch(self, finger: int | None) -> None:
        """A finger on the glass for one poll, then lifted (and the lift seen)."""
        self.sim.place_finger(finger)
        self.scan()
        self.sim.place_finger(None)
        self.clock.advance(0.1)
        self.scan()

    def advance(self, seconds: float, step: float = 0.5) -> None:
        end = self.clock.monotonic() + seconds
        while self.clock.monotonic() < end:
            self.clock.advance(min(step, end - self.clock.monotonic()))
            self.role.tick(self.clock.monotonic())

    def events(self) -> list[Event]:
        out = []
        for p in Priority:
            for entry in self.outbox.fresh(p, 0, 10_000):
                if entry.key.startswith("e:"):
                    out.append(Event.model_validate_json(entry.payload))
        return sorted(out, key=lambda e: e.ts)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events()]

    def command(self, name: str, args: dict, **kw) -> bytes:
        key = kw.pop("key", KEY)
        return Command.make(self.cfg.node.id, name, args, operator=kw.pop("operator", "wang"),
                            now=kw.pop("now", self.clock.now()), **kw).signed(key).to_bytes()

    def close(self) -> None:
        self.commands.close()
        self.role.close()
        self.pins.close()
        self.sim.stop()
        self.outbox.close()
        self.guard.close()
        self.access.close()


@pytest.fixture()
def rig(tmp_path: Path):
    r = Rig(tmp_path)
    yield r
    r.close()


def test_start_drives_relay_de_energised_first(tmp_path: Path) -> None:
    cfg = door_config(tmp_path)
    factory = MockFactory()
    stale = factory.pin(24)  # what a crashed agent may have left: the relay energised
    stale.function = "output"
    stale.state = True
    pins = DoorPins(cfg.door, factory=factory)
    assert stale.state is False and pins.locked and not pins.energised
    assert "relay=de-energised" in repr(pins) and "lock=locked" in repr(pins)
    pins.close()
    # fail_safe (maglock): de-energised first, then energised to hold the door
    safe = door_config(tmp_path, mode="fail_safe")
    pins = DoorPins(safe.door, factory=MockFactory())
    pin = pins.relay.pin
    pin.clear_states()
    assert pins.locked is False and pins.energised is False
    pins.set_locked(True)
    pin.assert_states([False, True])
    pins.close()
    assert pin.state is False  # closing leaves the lock de-energised


def test_grant_releases_for_unlock_s_and_audits(rig: Rig) -> None:
    rig.lease(1, "t-alice")
    assert rig.pins.locked and not rig.pins.energised  # fail_secure: locked without power
    rig.touch(1)
    assert rig.pins.energised and not rig.pins.locked
    granted = rig.events()[-1]
    assert granted.kind == "door.granted" and granted.data["tenant_id"] == "t-alice"
    assert granted.data["slot"] == 1 and granted.data["remote"] is False and granted.data["grid"] == "G03"
    rig.advance(4.7)
    assert not rig.pins.locked
    rig.advance(0.2)
    assert rig.pins.locked and not rig.pins.energised


def test_held_finger_is_one_decision(rig: Rig) -> None:
    rig.sim.place_finger(77)
    for _ in range(10):
        rig.scan()
        rig.clock.advance(0.05)
    assert rig.kinds() == ["door.denied"]


def test_unknown_and_unlisted_fingers_are_denied(rig: Rig) -> None:
    rig.touch(77)  # on nobody's reader
    rig.touch(0)  # on the reader (slot 0) but not in the access list
    denied = rig.events()
    assert [(e.kind, e.data["reason"]) for e in denied] == [("door.denied", "unknown_finger"),
                                                            ("door.denied", "unknown")]
    assert denied[1].data["slot"] == 0 and rig.pins.locked


def test_lockout_after_failures_ignores_reader(rig: Rig) -> None:
    rig.lease(1, "t-alice")
    for _ in range(5):
        rig.touch(77)
    assert sorted(rig.kinds()) == ["door.denied"] * 5 + ["door.lockout"]
    rig.sim.place_finger(1)
    assert asyncio.run(rig.role.scan_once()) is None  # locked out: the reader is not even asked
    assert rig.pins.locked
    rig.advance(60)
    rig.sim.place_finger(None)
    asyncio.run(rig.role.scan_once())
    rig.sim.place_finger(1)
    result = asyncio.run(rig.role.scan_once())
    assert result is not None and result.kind == "match"
    assert rig.kinds()[-1] == "door.granted" and not rig.pins.locked


def test_forced_opening_without_grant(rig: Rig) -> None:
    rig.pins.sim_door(True)
    ev = rig.events()
    assert [e.kind for e in ev] == ["door.forced"] and ev[0].snapshot is False  # no camera at this door
    rig.pins.sim_door(False)
    # after a grant, or an exit request, opening is fine
    rig.lease(1, "t-alice")
    rig.touch(1)
    rig.clock.advance(1)
    rig.pins.sim_door(True)
    rig.clock.advance(2)
    rig.pins.sim_door(False)
    assert rig.pins.locked  # closing after the grant relocks at once
    rig.clock.advance(1)
    rig.pins.exit.pin.drive_low()
    rig.clock.advance(0.2)
    rig.pins.exit.pin.drive_high()
    assert not rig.pins.locked
    rig.clock.advance(1)
    rig.pins.sim_door(True)
    assert rig.kinds() == ["door.forced", "door.granted"]


def test_forced_with_camera_has_snapshot(tmp_path: Path) -> None:
    from edge.hw.camera import SyntheticCamera

    r = Rig(tmp_path, camera=SyntheticCamera(160, 120, "door"))
    try:
        r.pins.sim_door(True)
        ev = r.events()
        assert ev[0].kind == "door.forced" and ev[0].snapshot is True
        assert r.outbox.get(f"s:{ev[0].id}").payload[:2] == b"\xff\xd8"
    finally:
        r.close()


def test_held_open_after_held_open_s(rig: Rig) -> None:
    rig.lease(1, "t-alice")
    rig.touch(1)
    rig.pins.sim_door(True)
    rig.advance(29)
    assert rig.kinds() == ["door.granted"]
    rig.advance(1.5)
    assert rig.kinds() == ["door.granted", "door.held_open"]
    rig.advance(60)
    assert rig.kinds().count("door.held_open") == 1


def test_fire_input_releases_and_holds(rig: Rig) -> None:
    rig.pins.sim_fire(True)
    assert not rig.pins.locked
    fire = rig.events()[-1]
    assert fire.kind == "door.fire_release" and fire.data["active"] is True
    rig.advance(120)
    assert not rig.pins.locked  # held released while the input is active
    rig.pins.sim_door(True)  # people leave: not forced, not held open
    rig.advance(60)
    assert rig.kinds() == ["door.fire_release"]
    rig.pins.sim_door(False)
    rig.clock.advance(1)
    rig.pins.sim_fire(False)
    assert rig.pins.locked


def test_lease_ends_on_the_node_clock_offline(rig: Rig) -> None:
    # no network at all here: the node decides with its own clock and its local list
    now = rig.clock.now()
    rig.access.put(AccessEntry(2, "t-bob", now - timedelta(days=30), now + timedelta(seconds=20)))
    rig.access.put(AccessEntry(1, "t-future", now + timedelta(days=1), now + timedelta(days=30)))
    rig.touch(2)
    assert rig.kinds() == ["door.granted"]
    rig.advance(21)
    rig.touch(2)
    rig.touch(1)
    denied = rig.events()[1:]
    assert [(e.kind, e.data["reason"], e.data["tenant_id"]) for e in denied] == [
        ("door.denied", "expired", "t-bob"), ("door.denied", "not_yet_valid", "t-future")]


def test_access_list_survives_restart(tmp_path: Path) -> None:
    acl = AccessList(tmp_path / "access.db")
    entry = AccessEntry(3, "t-carol", None, None, version=7)
    acl.put(entry)
    acl.close()
    again = AccessList(tmp_path / "access.db")
    assert again.get(3) == entry and again.version == 7
    again.close()


def test_remote_unlock_is_audited(rig: Rig) -> None:
    reply = rig.commands.dispatch(rig.command("door.unlock", {"reason": "tenant locked out"}))
    assert reply.ok and not rig.pins.locked
    ev = rig.events()[-1]
    assert ev.kind == "door.granted" and ev.data["remote"] is True and ev.data["operator"] == "wang"
    rig.pins.sim_door(True)
    assert "door.forced" not in rig.kinds()


@pytest.mark.parametrize("how, reason", [
    ("forged", "bad signature"), ("expired", "expired"), ("too_long", "lifetime longer than allowed"),
    ("replayed", "replayed"), ("other_node", None)])
def test_bad_unlocks_are_refused(rig: Rig, how: str, reason: str | None) -> None:
    clock = rig.clock
    if how == "forged":
        payload = rig.command("door.unlock", {}, key=b"not-the-key")
    elif how == "expired":
        payload = rig.command("door.unlock", {}, now=clock.now() - timedelta(seconds=11))
    elif how == "too_long":
        payload = rig.command("door.unlock", {}, ttl=timedelta(minutes=5))
    elif how == "replayed":
        payload = rig.command("door.unlock", {})
        assert rig.commands.dispatch(payload).ok
        rig.advance(6)
        assert rig.pins.locked
    else:
        payload = Command.make("door-b09-01", "door.unlock", {}, operator="x").signed(KEY).to_bytes()
    reply = rig.commands.dispatch(payload)
    if reason is None:
        assert reply is None
    else:
        assert reply.ok is False and reason in reply.detail
    assert rig.pins.locked
    refused = rig.events()[-1]
    assert refused.kind == "command.refused"


def test_unlock_without_operator_is_refused(rig: Rig) -> None:
    reply = rig.commands.dispatch(rig.command("door.unlock", {}, operator=None))
    assert reply.ok is False and rig.pins.locked


def test_bad_serial_frames_are_one_fault_and_the_door_goes_on(rig: Rig) -> None:
    rig.lease(1, "t-alice")
    rig.sim.garbage = True
    for _ in range(5):
        rig.touch(1)
    faults = [e for e in rig.events() if e.kind == "node.fault"]
    assert len(faults) == 1 and "garbage" in faults[0].data["detail"] and rig.pins.locked
    assert rig.role.state()["reader"] == "fault"
    rig.sim.garbage = False
    rig.touch(1)
    assert rig.kinds()[-2:] == ["node.fault", "door.granted"]
    assert rig.events()[-2].data["severity"] == "info"


async def _enrol_with(rig: Rig, payload: bytes, finger: int):
    """Run an enrolment, moving the simulated finger as the reader prompts (place, lift, place)."""
    task = asyncio.create_task(rig.commands.handle(payload))
    seen = 0
    while not task.done():
        if rig.role.access_manager.enrol_steps > seen:
            seen = rig.role.access_manager.enrol_steps
            rig.sim.place_finger(finger if rig.role.access_manager.enrol_prompt == "place" else None)
        await asyncio.sleep(0.01)
    return task.result()


def test_enrol_sync_to_second_door_and_revoke(tmp_path: Path) -> None:
    a = Rig(tmp_path / "a", "door-b01-01", enrolled=0)
    b = Rig(tmp_path / "b", "door-b01-02", enrolled=0)
    try:
        now = a.clock.now()
        args = {"tenant_id": "t-dave", "valid_from": (now - timedelta(hours=1)).isoformat(),
                "valid_until": (now + timedelta(days=90)).isoformat(), "version": 3}
        reply = asyncio.run(_enrol_with(a, a.command("access.enrol", args), 42))
        assert reply.ok, reply.detail
        slot, sealed = reply.data["slot"], reply.data["template_enc"]
        assert slot == 0 and a.sim.enrolled == {0: 42} and a.access.get(0).tenant_id == "t-dave"
        # the hub only forwards ciphertext: it opens with the block key and the tenant id, nothing else
        assert len(open_template(BLOCK_KEY, sealed, "t-dave")) == 512
        with pytest.raises(TemplateKeyError):
            open_template(b"another-block", sealed, "t-dave")
        with pytest.raises(TemplateKeyError):
            open_template(BLOCK_KEY, sealed, "t-eve")
        # the block's second door takes the template instead of a scan
        reply_b = asyncio.run(b.commands.handle(b.command("access.enrol", {**args, "template_enc": sealed})))
        assert reply_b.ok and "template_enc" not in reply_b.data and b.sim.enrolled == {reply_b.data["slot"]: 42}
        b.touch(42)
        assert b.kinds()[-1] == "door.granted" and b.events()[-1].data["tenant_id"] == "t-dave"
        a.touch(None)
        a.touch(42)
        assert a.kinds()[-1] == "door.granted"
        # revoke: gone from the reader and the list
        rev = asyncio.run(b.commands.handle(b.command("access.revoke", {"tenant_id": "t-dave", "version": 4})))
        assert rev.ok and rev.data["reader_deleted"] == [0] and b.sim.enrolled == {} and len(b.access) == 0
        b.touch(42)
        assert b.events()[-1].data["reason"] == "unknown_finger"
    finally:
        a.close()
        b.close()


def test_enrol_with_a_wrong_block_key_is_refused(tmp_path: Path) -> None:
    a = Rig(tmp_path / "a", "door-b01-01", enrolled=0)
    b = Rig(tmp_path / "b", "door-b02-01", enrolled=0, block_key=b"block-b02-key")
    try:
        reply = asyncio.run(_enrol_with(a, a.command("access.enrol", {"tenant_id": "t-x"}), 5))
        forwarded = b.command("access.enrol", {"tenant_id": "t-x", "template_enc": reply.data["template_enc"]})
        refused = asyncio.run(b.commands.handle(forwarded))
        assert refused.ok is False and "block key" in refused.detail and b.sim.enrolled == {}
    finally:
        a.close()
        b.close()


def test_enrol_timeout_is_a_clear_failure(tmp_path: Path) -> None:
    r = Rig(tmp_path, enrolled=0)
    try:
        r.cfg.reader.enrol_wait_s = 0.2  # type: ignore[misc]
        reply = asyncio.run(r.commands.handle(r.command("access.enrol", {"tenant_id": "t-y"})))
        assert reply.ok is False and reply.data["reason"] == "timeout" and "try again" in reply.detail
        assert len(r.access) == 0 and r.role.busy is None
    finally:
        r.close()


def test_access_sync_reconciles(rig: Rig) -> None:
    rig.lease(0, "t-old")
    rig.lease(1, "t-alice")
    entries = [{"slot": 1, "tenant_id": "t-alice", "valid_until": "2099-01-01T00:00:00+08:00"},
               {"slot": 2, "tenant_id": "t-bob"}, {"slot": 9, "tenant_id": "t-nobody"}]
    reply = asyncio.run(rig.commands.handle(rig.command("access.sync", {"version": 12, "entries": entries})))
    assert reply.ok and reply.data["missing_templates"] == [9] and reply.data["reader_deleted"] == [0]
    assert [e.slot for e in rig.access.entries()] == [1, 2, 9] and rig.access.version == 12
    assert set(rig.sim.enrolled) == {1, 2}
    rig.touch(0)
    assert rig.events()[-1].data["reason"] == "unknown_finger"


def test_fire_clear_restarts_the_held_open_timer(rig: Rig) -> None:
    rig.pins.sim_fire(True)
    rig.pins.sim_door(True)
    rig.advance(100)
    rig.pins.sim_fire(False)
    rig.advance(1)
    assert rig.kinds() == ["door.fire_release"] and rig.pins.locked
    rig.advance(30)
    assert rig.kinds() == ["door.fire_release", "door.held_open"]


def test_absent_reader_is_a_fault_and_is_reopened(tmp_path: Path) -> None:
    r = Rig(tmp_path)
    try:
        r.role.close()
        opened = []

        def open_reader() -> FingerprintReader:
            opened.append(1)
            return FingerprintReader.open(r.sim.port, timeout=0.3)

        r.outbox.close()
        r.outbox = Outbox(tmp_path / "outbox2.db")
        r.role = Door(r.cfg, r.pins, None, r.outbox, r.clock, r.commands, r.access, open_reader=open_reader)
        assert r.kinds() == ["node.fault"] and r.role.state()["reader"] == "absent"
        assert asyncio.run(r.role.scan_once()) is None and opened == []  # not before REOPEN_READER_S
        r.clock.advance(5)
        asyncio.run(r.role.scan_once())
        assert opened == [1] and r.role.reader is not None
        r.lease(1, "t-alice")
        r.sim.place_finger(1)
        result = asyncio.run(r.role.scan_once())
        assert result.kind == "match" and r.kinds()[-2:] == ["node.fault", "door.granted"]
    finally:
        r.close()
