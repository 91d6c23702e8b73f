"""The fingerprint-gated door of a rental block: finger → local access list → lock relay.

Runs on the node's asyncio loop; the reader's blocking serial calls go to a worker thread
(``asyncio.to_thread``) and their results come back to the loop, gpiozero's callbacks are handed over
with ``call_soon_threadsafe`` by the agent. The door decides alone, with the node's clock: the hub may be
unreachable and a lease still ends on time. Time comes from an injected clock, so unlock timers, held-open
alarms and lockouts are tested without sleeping.

Safety does not depend on this code: fire release and the exit button cut lock power in hardware. The
software reports them and holds the relay released; at start, at stop and on any way out it drives the
relay to its de-energised state (``door.mode`` says what that means for this door).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from edge.access import AccessEntry, AccessList, parse_time
from edge.clock import Clock
from edge.config import NodeConfig
from edge.errors import HardwareError, PinganError
from edge.hw.door_pins import DoorPins
from edge.hw.fingerprint import EnrolmentError, FingerprintReader
from edge.link.commands import CommandGuard, CommandRefused
from edge.link.outbox import Outbox
from edge.protocol import Command, Reply
from edge.roles.base import EventEmitter
from edge.roles.debounce import Debouncer
from edge.template_crypto import TemplateKeyError, open_template, seal_template

if TYPE_CHECKING:  # the camera module pulls in OpenCV and numpy (~40 MB): doors without a camera skip it
    from edge.hw.camera import Camera

log = logging.getLogger(__name__)

SendDirect = Callable[[str, bytes, int], Any]
SendReply = Callable[[Reply], Any]
ReaderFactory = Callable[[], FingerprintReader]
REOPEN_READER_S = 5.0
_SLOW_COMMANDS = ("access.enrol", "access.revoke", "access.sync")


@dataclass(frozen=True, slots=True)
class ScanResult:
    kind: Literal["none", "finger", "match", "unknown", "error"]
    slot: int | None = None
    score: int | None = None
    error: str = ""
    at: float = 0.0  # time.perf_counter() when the reader's answer was in (for the latency bench)


class Door(EventEmitter):
    def __init__(self, cfg: NodeConfig, pins: DoorPins, reader: FingerprintReader | None, outbox: Outbox,
                 clock: Clock, guard: CommandGuard, access: AccessList, *, camera: Camera | None = None,
                 block_key: bytes | None = None, open_reader: ReaderFactory | None = None,
                 wake: Callable[[], None] = lambda: None,
                 send_direct: SendDirect = lambda topic, payload, qos: None,
                 send_reply: SendReply = lambda reply: None) -> None:
        assert cfg.door is not None and cfg.reader is not None, "a door needs door and reader settings"
        self.cfg = cfg
        self.door_cfg = cfg.door
        self.reader_cfg = cfg.reader
        self.node_id = cfg.node.id
        self.pins = pins
        self.outbox = outbox
        self.clock = clock
        self.guard = guard
        self.access = access
        self.camera = camera
        self.camera_ok = True
        self.block_key = block_key
        self.wake = wake
        self.send_direct = send_direct
        self.send_reply = send_reply
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
        self.enrol_prompt: str | None = None
        self.enrol_steps = 0
        self.grants = self.denials = 0
        self.last_unlock_at: float | None = None  # perf_counter of the last release (bench)
        self._cmd_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
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
    def _check(self, payload: bytes) -> Command | Reply | None:
        try:
            return self.guard.check(payload)
        except CommandRefused as exc:
            cmd_id = exc.command.id if exc.command else "?"
            log.warning("refused command %s: %s", cmd_id, exc.reason)
            self.emit("command.refused", {
                "command_id": cmd_id, "reason": exc.reason,
                "name": exc.command.name if exc.command else None,
                "operator": exc.command.operator if exc.command else None})
            if exc.command is None or exc.command.node != self.node_id:
                return None
            return Reply(command_id=cmd_id, ok=False, detail=f"refused: {exc.reason}")

    def on_command(self, payload: bytes) -> Reply | None:
        """Quick commands are answered at once; reader work runs as a task that sends its own reply."""
        checked = self._check(payload)
        if not isinstance(checked, Command):
            return checked
        if checked.name in _SLOW_COMMANDS:
            task = asyncio.get_running_loop().create_task(self._obey_slow(checked))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return None
        return self._obey(checked)

    async def handle_command(self, payload: bytes) -> Reply | None:
        """Check and obey one command, awaiting reader work (tests, and the slow path)."""
        checked = self._check(payload)
        if not isinstance(checked, Command):
            return checked
        if checked.name in _SLOW_COMMANDS:
            return await self._obey_async(checked)
        return self._obey(checked)

    async def _obey_slow(self, cmd: Command) -> None:
        reply = await self._obey_async(cmd)
        self.send_reply(reply)

    def _obey(self, cmd: Command) -> Reply:
        if cmd.name == "door.unlock":
            if not cmd.operator:
                return Reply(command_id=cmd.id, ok=False, detail="a remote unlock must name the operator")
            self.grant(self.clock.monotonic(), operator=cmd.operator, command_id=cmd.id)
            return Reply(command_id=cmd.id, ok=True, detail=f"released for {self.door_cfg.unlock_s:g} s",
                         data={"unlock_s": self.door_cfg.unlock_s})
        return Reply(command_id=cmd.id, ok=False, detail=f"{cmd.name} is not something a door does")

    async def _obey_async(self, cmd: Command) -> Reply:
        async with self._cmd_lock:
            try:
                if cmd.name == "access.enrol":
                    return await self._enrol(cmd)
                if cmd.name == "access.revoke":
                    return await self._revoke(cmd)
                return await self._sync(cmd)
            except (ValueError, KeyError, TypeError, PinganError) as exc:
                detail = str(exc) if not isinstance(exc, KeyError) else f"missing argument {exc}"
                log.warning("%s %s failed: %s", cmd.name, cmd.id, detail)
                data = {"reason": exc.reason} if isinstance(exc, EnrolmentError) else {}
                if isinstance(exc, HardwareError) and not isinstance(exc, EnrolmentError):
                    self.on_scan(ScanResult("error", error=str(exc)), self.clock.monotonic())
                return Reply(command_id=cmd.id, ok=False, detail=detail[:500], data=data)

    def _need_reader(self) -> FingerprintReader:
        if self.reader is None:
            raise HardwareError("the fingerprint reader is not available at this door")
        return self.reader

    async def _enrol(self, cmd: Command) -> Reply:
        args = cmd.args
        tenant_id = str(args["tenant_id"])
        valid_from, valid_until = parse_time(args.get("valid_from")), parse_time(args.get("valid_until"))
        if valid_from and valid_until and valid_until <= valid_from:
            raise ValueError("valid_until must be after valid_from")
        version = int(args.get("version", 0))
        sealed = args.get("template_enc")
        template = None
        if sealed:
            if self.block_key is None:
                raise TemplateKeyError("this door has no block key (PINGAN_BLOCK_KEY): cannot take a synced "
                                       "template; enrol the tenant here with the reader instead")
            template = open_template(self.block_key, str(sealed), tenant_id)
        reader = self._need_reader()
        self.busy = "enrol"
        try:
            slot = args.get("slot")
            if slot is None:
                used = await asyncio.to_thread(reader.used_slots)
                capacity = (await asyncio.to_thread(reader.parameters)).capacity
                slot = self.access.free_slot(capacity, used)
                if slot is None:
                    raise HardwareError("the reader's library is full: revoke tenants who left")
            slot = int(slot)
            holder = self.access.get(slot)
            if holder is not None and holder.tenant_id != tenant_id:
                raise ValueError(f"slot {slot} belongs to tenant {holder.tenant_id}: revoke them first")
            if template is not None:
                await asyncio.to_thread(reader.upload_template, slot, template)
            else:
                self.enrol_steps = 0

                def on_step(step: str) -> None:  # worker thread: plain attribute writes only
                    self.enrol_steps += 1
                    self.enrol_prompt = step

                await asyncio.to_thread(reader.enrol, slot, 2, self.reader_cfg.enrol_wait_s, on_step, True)
                template = await asyncio.to_thread(reader.download_template, slot)
        finally:
            self.busy = None
            self.enrol_prompt = None
            if not sealed:
                self._finger_down = True  # the enrolling finger is still on the glass: wait for a lift
        self.access.put(AccessEntry(slot, tenant_id, valid_from, valid_until, version))
        data: dict[str, Any] = {"slot": slot, "tenant_id": tenant_id, "synced": bool(sealed)}
        detail = f"tenant {tenant_id} enrolled in slot {slot}"
        if not sealed:
            if self.block_key is not None:
                data["template_enc"] = seal_template(self.block_key, template, tenant_id)
            else:
                detail += "; no block key, so the template cannot be synced to the block's other doors"
        log.info("%s", detail)
        return Reply(command_id=cmd.id, ok=True, detail=detail, data=data)

    async def _revoke(self, cmd: Command) -> Reply:
        args = cmd.args
        slots: set[int] = set()
        if args.get("tenant_id"):
            slots.update(self.access.slots_of(str(args["tenant_id"])))
        if args.get("slot") is not None:
            slots.add(int(args["slot"]))
        version = int(args.get("version", 0))
        deleted_on_reader = await self._delete_templates(sorted(slots))
        for slot in slots:
            self.access.remove(slot, version)
        detail = f"revoked slot(s) {sorted(slots)}" if slots else "nothing to revoke at this door"
        if set(deleted_on_reader) != slots:
            detail += "; the reader is unavailable, its templates will be removed by the next access.sync"
        return Reply(command_id=cmd.id, ok=True, detail=detail,
                     data={"slots": sorted(slots), "reader_deleted": deleted_on_reader})

    async def _delete_templates(self, slots: list[int]) -> list[int]:
        if self.reader is None:
            return []
        deleted = []
        with contextlib.suppress(HardwareError):
            for slot in slots:
                await asyncio.to_thread(self.reader.delete, slot)
                deleted.append(slot)
        return deleted

    async def _sync(self, cmd: Command) -> Reply:
        args = cmd.args
        version = int(args["version"])
        entries = [AccessEntry(int(e["slot"]), str(e["tenant_id"]), parse_time(e.get("valid_from")),
                               parse_time(e.get("valid_until")), version) for e in args.get("entries", [])]
        wanted = {e.slot for e in entries}
        if len(wanted) != len(entries):
            raise ValueError("access.sync lists a slot twice")
        on_reader: set[int] | None = None
        if self.reader is not None:
            with contextlib.suppress(HardwareError):
                on_reader = await asyncio.to_thread(self.reader.used_slots)
        stale = sorted((on_reader or set()) - wanted) + sorted(
            {e.slot for e in self.access.entries()} - wanted - (on_reader or set()))
        deleted = await self._delete_templates(sorted((on_reader or set()) - wanted))
        self.access.replace_all(entries, version)
        missing = sorted(wanted - on_reader) if on_reader is not None else []
        return Reply(command_id=cmd.id, ok=True, detail=f"access list at version {version}: {len(entries)} entries",
                     data={"version": version, "removed": stale, "reader_deleted": deleted,
                           "missing_templates": missing})

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
            "enrol_prompt": self.enrol_prompt,
            "enrol_steps": self.enrol_steps,
            "access": [e.as_dict() for e in self.access.entries()],
            "access_version": self.access.version,
            "grants": self.grants,
            "denials": self.denials,
            "outbox": self.outbox.depth(),
        }

    def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self.pins.de_energise()
        if self.reader is not None:
            self.reader.close()

    def __repr__(self) -> str:
        return f"<Door {self.node_id} {self.pins!r} failures={self.failures} reader={self.state()['reader']}>"
