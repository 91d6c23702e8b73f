"""The door's lock state machine: finger → local access list → lock relay; contacts, fire, exit.

Runs on the node's asyncio loop; the reader's blocking serial calls go to a worker thread
(``asyncio.to_thread``) and their results come back to the loop, gpiozero's callbacks are handed over
with ``call_soon_threadsafe`` by the agent. The door decides alone, with the node's clock: the hub may be
unreachable and a lease still ends on time. Time comes from an injected clock, so unlock timers, held-open
alarms and lockouts are tested without sleeping.

Safety does not depend on this code: fire release and the exit button cut lock power in hardware. The
software reports them and holds the relay released; at start, at stop and on any way out it drives the
relay to its de-energised state (``door.mode`` says what that means for this door).

Who may enter is managed apart (edge/roles/door/access.py), so the centre's enrolments, revocations
and syncs never touch the lock's logic: this module only reads the access list when a finger matches.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from edge.clock import Clock
from edge.config import NodeConfig
from edge.errors import HardwareError
from edge.hw.door_pins import DoorPins
from edge.hw.fingerprint import FingerprintReader
from edge.link.dispatch import CommandDispatcher
from edge.link.outbox import Outbox
from edge.protocol import Command, Reply
from edge.roles.base import EventEmitter
from edge.roles.debounce import Debouncer
from edge.roles.door.access import AccessManager
from edge.roles.door.access_list import AccessList

if TYPE_CHECKING:  # the camera module pulls in OpenCV and numpy (~40 MB): doors without a camera skip it
    from edge.hw.camera import Camera

log = logging.getLogger(__name__)

SendDirect = Callable[[str, bytes, int], Any]
ReaderFactory = Callable[[], FingerprintReader]
REOPEN_READER_S = 5.0


@dataclass(frozen=True, slots=True)
class ScanResult:
    kind: Literal["none", "finger", "match", "unknown", "error"]
    slot: int | None = None
    score: int | None = None
    error: str = ""
    at: float = 0.0  # time.perf_counter() when the reader's answer was in (for the latency bench)


class Door(EventEmitter):
    def __init__(self, cfg: NodeConfig, pins: DoorPins, reader: FingerprintReader | None, outbox: Outbox,
                 clock: Clock, commands: CommandDispatcher, access: AccessList, *, camera: Camera | None = None,
                 block_key: bytes | None = None, open_reader: ReaderFactory | None = None,
                 wake: Callable[[], None] = lambda: None,
                 send_direct: SendDirect = lambda topic, payload, qos: None) -> None:
        assert cfg.door is not None and cfg.reader is not None, "a door needs door and reader settings"
        self.cfg = cfg
        self.door_cfg = cfg.door
        self.reader_cfg = cfg.reader
        self.node_id = cfg.node.id
        self.pins = pins
        self.outbox = outbox
        self.clock = clock
        self.access = access
        self.camera = camera
        self.camera_ok = True
        self.wake = wake
        self.send_direct = send_direct
        self._open_reader = open_reader
        self.reader: FingerprintReader | None = reader
        self._reader_tried = clock.monotonic()
        debounce = self.door_cfg.debounce_ms / 1000.0
        self.contact = Debouncer(debounce, initial=pins.door_open)
        self.exit = Debouncer(debounce, initial=pins.exit_pressed)
        self.fire = Debouncer(debounce, initial=pins.fire_active)
        # state, owned by the loop
        self.unlock_until: float | None = None
        self.authorised_until = float("-inf")  # the door may open until then without being "forced"
        self.open_since: float | None = None
        self.held_reported = False
        self.failures = 0
        self.lockout_until: float | None = None
        self.reader_fault = reader is None
        self._finger_down = False  # one touch is one decision: wait for the finger to lift
        self.busy: str | None = None  # a command using the reader (enrolment): the door does not scan
        self.grants = self.denials = 0
        self.last_unlock_at: float | None = None  # perf_counter of the last release (bench)
        self.access_manager = AccessManager(self, access, block_key)
        commands.register(self._unlock, "door.unlock")
        commands.register(self.access_manager.obey, *AccessManager.COMMANDS)
        commands.otherwise(self._not_for_a_door)
        # the lock first: de-energised (the wiring's safe state), then what the door should be now
        pins.de_energise()
        self.fire_active = self.fire.state
        pins.set_locked(not self.fire_active)
        if reader is None:
            self.emit("node.fault", {"fault": "reader_absent", "detail": "the fingerprint reader did not open"})

    # --- the lock ------------------------------------------------------------------------------
    def _release(self, t: float) -> None:
        self.unlock_until = t + self.door_cfg.unlock_s
        self.authorised_until = max(self.authorised_until, t + self.door_cfg.unlock_s)
        self.pins.set_locked(False)
        self.last_unlock_at = time.perf_counter()

    def _relock(self) -> None:
        self.unlock_until = None
        if not self.fire_active:
            self.pins.set_locked(True)

    def grant(self, t: float, *, slot: int | None = None, tenant_id: str | None = None, score: int | None = None,
              operator: str | None = None, command_id: str | None = None) -> None:
        self._release(t)
        self.failures = 0
        self.grants += 1
        data: dict[str, Any] = {"remote": operator is not None or command_id is not None}
        if slot is not None:
            data.update(slot=slot, tenant_id=tenant_id, score=score)
        if data["remote"]:
            data.update(operator=operator, command_id=command_id)
        self.emit("door.granted", data)
        log.info("door released for %s", f"operator {operator}" if data["remote"] else f"tenant {tenant_id}")

    def deny(self, t: float, reason: str, *, slot: int | None = None, tenant_id: str | None = None) -> None:
        self.failures += 1
        self.denials += 1
        data: dict[str, Any] = {"reason": reason, "failures": self.failures}
        if slot is not None:
            data.update(slot=slot, tenant_id=tenant_id)
        self.emit("door.denied", data)
        if self.failures >= self.door_cfg.lockout_after:
            self.lockout_until = t + self.door_cfg.lockout_s
            self.emit("door.lockout", {"failures": self.failures, "lockout_s": self.door_cfg.lockout_s})
            log.warning("reader locked out for %.0f s after %d refused fingers", self.door_cfg.lockout_s,
                        self.failures)
            self.failures = 0

    def locked_out(self, t: float) -> bool:
        return self.lockout_until is not None and t < self.lockout_until

    # --- the reader ----------------------------------------------------------------------------
    def scan_blocking(self, identify: bool = True) -> ScanResult:
        """One look at the glass (in a worker thread). With ``identify`` False only finger/no finger."""
        reader = self.reader
        if reader is None:
            return ScanResult("error", error="no reader")
        try:
            if not reader.capture():
                return ScanResult("none")
            if not identify:
                return ScanResult("finger")
            match = reader.match_captured()
        except HardwareError as exc:
            return ScanResult("error", error=str(exc))
        if match is None:
            return ScanResult("unknown", at=time.perf_counter())
        return ScanResult("match", match.slot, match.score, at=time.perf_counter())

    def on_scan(self, result: ScanResult, t: float) -> None:
        """The reader's answer, on the loop: decide, and move the lock."""
        if result.kind == "error":
            if not self.reader_fault:
                self.reader_fault = True
                log.error("fingerprint reader failed: %s", result.error)
                self.emit("node.fault", {"fault": "reader", "detail": result.error[:300]})
            return
        if self.reader_fault:
            self.reader_fault = False
            self.emit("node.fault", {"fault": "reader_recovered", "severity": "info",
                                     "detail": "the fingerprint reader answers again"})
        if result.kind == "none":
            self._finger_down = False
            return
        if self._finger_down or self.locked_out(t) or self.busy:
            return
        if result.kind == "finger":  # seen without identifying: decide on the next full scan
            return
        self._finger_down = True
        if result.kind == "unknown":
            self.deny(t, "unknown_finger")
            return
        assert result.slot is not None
        verdict, entry = self.access.check(result.slot, self.clock.now())
        if verdict == "ok" and entry is not None:
            self.grant(t, slot=result.slot, tenant_id=entry.tenant_id, score=result.score)
        else:
            self.deny(t, verdict, slot=result.slot, tenant_id=entry.tenant_id if entry else None)

    async def scan_once(self) -> ScanResult | None:
        """Poll the reader once (worker thread) and act on the answer (loop); None when not scanning."""
        t = self.clock.monotonic()
        if self.lockout_until is not None and t >= self.lockout_until:
            self.lockout_until = None
            log.info("reader lockout over")
        if self.reader is None:
            if self._open_reader is not None and t - self._reader_tried >= REOPEN_READER_S:
                self._reader_tried = t
                try:
                    self.reader = await asyncio.to_thread(self._open_reader)
                except HardwareError as exc:
                    log.debug("reader still unavailable: %s", exc)
            return None
        if self.busy or self.locked_out(t):
            return None
        result = await asyncio.to_thread(self.scan_blocking, not self._finger_down)
        self.on_scan(result, self.clock.monotonic())
        return result

    async def run_reader(self) -> None:
        """Poll the glass until cancelled; whatever ends it leaves the relay de-energised."""
        try:
            while True:
                try:
                    await self.scan_once()
                except Exception as exc:  # noqa: BLE001 - one bad answer never stops the door
                    log.exception("reader poll failed")
                    self.on_scan(ScanResult("error", error=f"{type(exc).__name__}: {exc}"), self.clock.monotonic())
                await asyncio.sleep(self.reader_cfg.poll_s)
        finally:
            self.pins.de_energise()

    # --- contacts ------------------------------------------------------------------------------
    def on_contact_edge(self, opened: bool, t: float) -> None:
        accepted = self.contact.feed(opened, t)
        if accepted is not None:
            self._door_changed(accepted, t)

    def on_exit_edge(self, pressed: bool, t: float) -> None:
        accepted = self.exit.feed(pressed, t)
        if accepted is not None:
            self._exit_changed(accepted, t)

    def on_fire_edge(self, active: bool, t: float) -> None:
        accepted = self.fire.feed(active, t)
        if accepted is not None:
            self._fire_changed(accepted, t)

    def _door_changed(self, opened: bool, t: float) -> None:
        if opened:
            self.open_since = t
            self.held_reported = False
            if not (self.fire_active or t <= self.authorised_until):
                log.warning("door forced open")
                self.emit("door.forced", {"detail": "door opened without a grant or exit request"},
                          with_snapshot=self.camera is not None)
        else:
            held = None if self.open_since is None else round(t - self.open_since, 1)
            self.open_since = None
            if self.held_reported:
                self.emit("node.fault", {"fault": "door_closed", "severity": "info", "open_s": held,
                                         "detail": "the door held open is shut again"})
            self.held_reported = False
            self.authorised_until = min(self.authorised_until, t)  # one grant, one opening
            if self.unlock_until is not None:
                self._relock()

    def _exit_changed(self, pressed: bool, t: float) -> None:
        if pressed:
            log.info("exit button: releasing the lock")
            self._release(t)

    def _fire_changed(self, active: bool, t: float) -> None:
        self.fire_active = active
        if active:
            self.pins.set_locked(False)
            log.warning("FIRE input active: lock released and held released")
            self.emit("door.fire_release", {"active": True, "detail": "fire alarm input active; lock released"})
        else:
            log.warning("fire input cleared")
            if self.open_since is not None:
                self.open_since = t  # evacuation is over: the held-open timer starts now
            if self.unlock_until is None or t >= self.unlock_until:
                self.unlock_until = None
                self.pins.set_locked(True)

    # --- time ----------------------------------------------------------------------------------
    def tick(self, t: float) -> None:
        for debouncer, changed in ((self.fire, self._fire_changed), (self.contact, self._door_changed),
                                   (self.exit, self._exit_changed)):
            settled = debouncer.settle(t)
            if settled is not None:
                changed(settled, t)
        if self.fire_active and self.pins.locked:
            self.pins.set_locked(False)  # hold it released while the fire input is active
        if self.unlock_until is not None and t >= self.unlock_until:
            self._relock()
        if self.open_since is not None and not self.held_reported and not self.fire_active \
                and t - self.open_since >= self.door_cfg.held_open_s:
            self.held_reported = True
            self.emit("door.held_open", {"open_s": round(t - self.open_since, 1)},
                      with_snapshot=self.camera is not None)

    def on_receipt(self, stored_ids: list[str]) -> None:
        pass

    # --- commands ------------------------------------------------------------------------------
    def _unlock(self, cmd: Command) -> Reply:
        if not cmd.operator:
            return Reply(command_id=cmd.id, ok=False, detail="a remote unlock must name the operator")
        self.grant(self.clock.monotonic(), operator=cmd.operator, command_id=cmd.id)
        return Reply(command_id=cmd.id, ok=True, detail=f"released for {self.door_cfg.unlock_s:g} s",
                     data={"unlock_s": self.door_cfg.unlock_s})

    def _not_for_a_door(self, cmd: Command) -> Reply:
        return Reply(command_id=cmd.id, ok=False, detail=f"{cmd.name} is not something a door does")

    def reader_failed(self, detail: str) -> None:
        """A command using the reader hit a hardware error: the same fault as a failed scan."""
        self.on_scan(ScanResult("error", error=detail), self.clock.monotonic())

    def wait_for_lift(self) -> None:
        """A finger just used for something else (enrolment) is still on the glass: no decision until it lifts."""
        self._finger_down = True

    # --- for the control socket and logs --------------------------------------------------------
    def state(self) -> dict[str, Any]:
        t = self.clock.monotonic()
        return {
            "node": self.node_id,
            "lock": "locked" if self.pins.locked else "released",
            "relay": "energised" if self.pins.energised else "de-energised",
            "mode": self.door_cfg.mode,
            "door": "open" if self.contact.state else "shut",
            "fire": self.fire_active,
            "lockout_s": round(self.lockout_until - t, 1) if self.locked_out(t) and self.lockout_until else 0,
            "failures": self.failures,
            "reader": "absent" if self.reader is None else ("fault" if self.reader_fault else "ok"),
            "busy": self.busy,
            "enrol_prompt": self.access_manager.enrol_prompt,
            "enrol_steps": self.access_manager.enrol_steps,
            "access": [e.as_dict() for e in self.access.entries()],
            "access_version": self.access.version,
            "grants": self.grants,
            "denials": self.denials,
            "outbox": self.outbox.depth(),
        }

    def close(self) -> None:
        self.pins.de_energise()
        if self.reader is not None:
            self.reader.close()

    def __repr__(self) -> str:
        return f"<Door {self.node_id} {self.pins!r} failures={self.failures} reader={self.state()['reader']}>"
