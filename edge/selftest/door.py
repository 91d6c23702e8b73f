"""The rental door's checks (docs/selftest.md, "Doors"), built from the door role's parts.

**The self-test never unlocks a door.** A door is a lock on someone's home: nothing here energises or
releases the relay, not even for a blink. The lock check reads the relay's output and the door contact,
both of which the door already knows; a relay that cannot be seen working without opening the door is
reported as what it is (the output's level), not exercised.

* ``reader``: the fingerprint reader answers its handshake (VfyPwd with the configured password) and
  reports its template count and capacity (TempleteNum, ReadSysPara) through the same driver the door
  scans with (its lock keeps the two from interleaving packets); a full reader fails (no enrolment fits).
* ``lock``: the relay's output is in its locked state and the door contact reads closed. Skipped while a
  grant, a remote unlock or a fire release holds the door released (a tenant passing, not a fault).
* ``exit_button``: the request-to-exit input is not stuck pressed (a resident pressing gets 2 s).
* ``fire_input``: the fire panel's input is quiet (active = the door is fire-released, already reported).
* ``enclosure``: doors have no enclosure switch input (DoorPins): said as skipped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.config import NodeConfig
from edge.errors import HardwareError
from edge.hw.door_pins import DoorPins
from edge.protocol import SelftestCheck
from edge.selftest.checks import Check, skipped
from edge.selftest.probe import UplinkProbe
from edge.selftest.shared import shared_checks

EXIT_RELEASE_S = 2.0  # a resident's press ends well within this; longer is a stuck button or a short


def _reader_answers(reader: Any) -> tuple[int, int]:
    """In a worker thread: handshake, then how many templates in how many slots (raises HardwareError)."""
    reader.verify_password()
    capacity = reader.parameters().capacity
    return reader.count(), capacity


async def reader_check(door: Any) -> SelftestCheck:
    reader = door.reader
    if reader is None:
        return SelftestCheck(name="reader", status="fail",
                             detail="fingerprint reader not open (no answer on its port; the door keeps retrying)")
    if door.busy:
        return SelftestCheck(name="reader", status="skipped", detail=f"reader busy ({door.busy}): not disturbed")
    try:
        count, capacity = await asyncio.to_thread(_reader_answers, reader)
    except HardwareError as exc:
        return SelftestCheck(name="reader", status="fail", detail=f"reader did not answer: {exc}"[:300])
    if count >= capacity:
        return SelftestCheck(name="reader", status="fail", value=count, limit=capacity, unit="templates",
                             detail="reader full: no slot left for the next enrolment")
    return SelftestCheck(name="reader", status="pass", value=count, limit=capacity, unit="templates",
                         detail=f"handshake ok; {count} of {capacity} slots used")


async def lock_check(pins: DoorPins, door: Any) -> SelftestCheck:
    """Read-only: the relay's output and the door contact. Never pulses the relay."""
    released = door.unlock_until is not None or door.fire_active
    if released:
        why = "fire release" if door.fire_active else "a grant or remote unlock"
        return SelftestCheck(name="lock", status="skipped",
                             detail=f"door released now ({why}): not judged; the self-test never unlocks a door")
    if not pins.locked:
        return SelftestCheck(name="lock", status="fail", value="released", limit="locked",
                             detail=f"relay output not in its locked state ({door.door_cfg.mode}) with no grant "
                                    "pending; the self-test did not touch it")
    if pins.door_open:
        return SelftestCheck(name="lock", status="fail", value="open", limit="closed",
                             detail="locked, but the door contact reads open (door wedged or forced, or the "
                                    "contact's wire is broken)")
    return SelftestCheck(name="lock", status="pass", value="locked, closed", limit="locked, closed",
                         detail="relay output in its locked state, door contact closed (read only: the "
                                "self-test never unlocks a door)")


async def exit_check(pins: DoorPins, release_s: float = EXIT_RELEASE_S) -> SelftestCheck:
    loop = asyncio.get_running_loop()
    started = loop.time()
    while pins.exit_pressed:
        if loop.time() - started > release_s:
            return SelftestCheck(name="exit_button", status="fail", value="pressed", limit="released",
                                 detail=f"exit button reads pressed for over {release_s:g} s (stuck, or its wire "
                                        "shorted to ground)")
        await asyncio.sleep(0.05)
    return SelftestCheck(name="exit_button", status="pass", value="released", limit="released")


async def fire_check(pins: DoorPins) -> SelftestCheck:
    if pins.fire_active:
        return SelftestCheck(name="fire_input", status="skipped", value="active",
                             detail="fire input active: the door is fire-released (door.fire_release reported)")
    return SelftestCheck(name="fire_input", status="pass", value="quiet", limit="quiet")


def door_checks(cfg: NodeConfig, pins: DoorPins, door: Any, *, outbox_depth: Callable[[], int],
                probe: UplinkProbe, connected: Callable[[], bool], command_skew: Callable[[], float | None],
                data_dir: Path) -> list[Check]:
    st = cfg.selftest
    timeout = st.check_timeout_s
    checks = [
        Check("reader", lambda: reader_check(door), timeout),
        Check("lock", lambda: lock_check(pins, door), timeout),
        Check("exit_button", lambda: exit_check(pins, min(EXIT_RELEASE_S, timeout / 2)), timeout),
        Check("fire_input", lambda: fire_check(pins), timeout),
        Check("enclosure", skipped("enclosure", "no enclosure switch on a door node (DoorPins has none)"), timeout),
    ]
    return checks + shared_checks(st, probe=probe, connected=connected, outbox_depth=outbox_depth,
                                  command_skew=command_skew, data_dir=data_dir)
