"""The door reports an enrolment step by step (``access.enrol_progress``) so the community office sees the
reader's prompts live: the real R30x driver over the pty simulator, real outbox, events read back from it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from edge.protocol import Event
from tests.edge.test_door import Rig


async def _enrol(rig: Rig, payload: bytes, fingers: list[int]):
    """Run an enrolment, putting the next finger of ``fingers`` on the glass at each "place" prompt."""
    task = asyncio.create_task(rig.commands.handle(payload))
    seen, todo = 0, list(fingers)
    while not task.done():
        am = rig.role.access_manager
        if am.enrol_steps > seen:
            seen = am.enrol_steps
            rig.sim.place_finger(todo.pop(0) if am.enrol_prompt == "place" and todo else None)
        await asyncio.sleep(0.01)
    return task.result()


def _progress(rig: Rig) -> list[Event]:
    return [e for e in rig.events() if e.kind == "access.enrol_progress"]


def _command_id(payload: bytes) -> str:
    return str(json.loads(payload)["id"])


def test_a_good_enrolment_reports_place_lift_place_done(tmp_path: Path) -> None:
    r = Rig(tmp_path, enrolled=0)
    try:
        payload = r.command("access.enrol", {"tenant_id": "t-dave"})
        reply = asyncio.run(_enrol(r, payload, [42, 42]))
        assert reply.ok, reply.detail
        steps = _progress(r)
        assert [(e.data["step"], e.data.get("n")) for e in steps] == [
            ("place", 1), ("lift", None), ("place", 2), ("done", None)]
        assert {e.data["command_id"] for e in steps} == {_command_id(payload)}
        assert {e.data["tenant_id"] for e in steps} == {"t-dave"}
        assert steps[-1].data["slot"] == reply.data["slot"]
        assert all(e.typed_data() is not None for e in steps)  # each fits the contract's model
    finally:
        r.close()


def test_two_different_fingers_report_the_readers_mismatch(tmp_path: Path) -> None:
    r = Rig(tmp_path, enrolled=0)
    try:
        reply = asyncio.run(_enrol(r, r.command("access.enrol", {"tenant_id": "t-eve"}), [5, 6]))
        assert reply.ok is False and reply.data["reason"] == "mismatch"
        steps = [e.data["step"] for e in _progress(r)]
        assert steps == ["place", "lift", "place", "error"]
        assert _progress(r)[-1].data["reason"] == "mismatch" and "same finger" in _progress(r)[-1].data["detail"]
        assert len(r.access) == 0
    finally:
        r.close()


def test_no_finger_in_time_reports_a_timeout(tmp_path: Path) -> None:
    r = Rig(tmp_path, enrolled=0)
    try:
        r.cfg.reader.enrol_wait_s = 0.2  # type: ignore[misc]
        reply = asyncio.run(r.commands.handle(r.command("access.enrol", {"tenant_id": "t-y"})))
        assert reply.ok is False
        last = _progress(r)[-1].data
        assert [e.data["step"] for e in _progress(r)] == ["place", "error"]
        assert last["reason"] == "timeout" and "try again" in last["detail"]
    finally:
        r.close()


def test_a_synced_template_reports_no_steps(tmp_path: Path) -> None:
    """A template from another door is not a scan: no prompts to show, nothing reported."""
    a = Rig(tmp_path / "a", "door-b01-01", enrolled=0)
    b = Rig(tmp_path / "b", "door-b01-02", enrolled=0)
    try:
        reply = asyncio.run(_enrol(a, a.command("access.enrol", {"tenant_id": "t-x"}), [9, 9]))
        synced = asyncio.run(b.commands.handle(b.command(
            "access.enrol", {"tenant_id": "t-x", "template_enc": reply.data["template_enc"]})))
        assert synced.ok and _progress(b) == []
    finally:
        a.close()
        b.close()
