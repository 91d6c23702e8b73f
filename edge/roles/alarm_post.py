"""The one-key alarm pole: button → alarm event with a picture → LED tells the resident.

Runs on the node's asyncio loop only; gpiozero and paho hand their callbacks to it. Time comes
from an injected clock, so a stuck button, coalescing and the "not delivered" timeout are
tested without sleeping.

What the resident sees on the LED follows the alarm's real progress: queued ("sending", fast
blink) → the hub's receipt ("received", slow blink) → an operator's ``alarm.ack`` with stage
"acknowledged" ("seen", long blink) → "dispatched" (a responder accepted the task) or "on_scene"
("help_coming", steady): the resident is told help is coming only once someone is on the way.
No receipt within ``receipt_timeout_s`` shows "not_delivered" while the node keeps trying; the
pole's sign then tells the resident to call 110.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edge.clock import Clock
from edge.config import NodeConfig
from edge.hw.camera import Camera
from edge.hw.gpio import AlarmPostPins
from edge.link.dispatch import CommandDispatcher
from edge.link.outbox import Outbox
from edge.protocol import AlarmAckArgs, Command, Reply, SirenSetArgs
from edge.roles.base import EventEmitter
from edge.roles.debounce import Debouncer

log = logging.getLogger(__name__)

SendDirect = Callable[[str, bytes, int], Any]


@dataclass(slots=True)
class OpenAlarm:
    id: str
    started: float
    last_press: float
    count: int = 1
    reported_count: int = 1
    reported_at: float = 0.0  # when the count was last sent (the press itself counts as sent)
    received: bool = False
    stage: str = "queued"
    not_delivered: bool = False


class AlarmPost(EventEmitter):
    def __init__(self, cfg: NodeConfig, pins: AlarmPostPins, camera: Camera | None, outbox: Outbox,
                 clock: Clock, commands: CommandDispatcher, *, wake: Callable[[], None] = lambda: None,
                 send_direct: SendDirect = lambda topic, payload, qos: None) -> None:
        self.cfg = cfg
        self.node_id = cfg.node.id
        self.pins = pins
        self.camera = camera
        self.outbox = outbox
        self.clock = clock
        self.wake = wake
        self.send_direct = send_direct
        self.button = Debouncer(cfg.alarm.debounce_ms / 1000.0, initial=pins.button_pressed)
        self.enclosure = Debouncer(cfg.alarm.debounce_ms / 1000.0, initial=pins.enclosure_open)
        self.alarm: OpenAlarm | None = None
        self._held_since: float | None = None
        self._stuck_reported = False
        self.presses = 0
        self.camera_ok = True
        self.ring: Any | None = None  # the camera thread's pre-press frames, when there is one
        self.live: Any | None = None  # the live-view sessions (edge/live), when the pole has a camera
        self.talking = False  # the centre is talking through the pole's speaker: the LED says so
        # the self-test's press gate (edge/selftest): while set, a press is the self-test's own, never an
        # alarm and never a change of the resident's LED; a press begun then is swallowed up to its release
        self._testing = False
        self._test_press = False
        self.test_presses = 0
        commands.register(self._ack, "alarm.ack")
        commands.register(self._siren, "siren.set")
        commands.otherwise(self._not_for_a_pole)
        pins.light.show("idle")
        pins.set_siren(False)

    # --- events --------------------------------------------------------------------------
    def on_vision_events(self, events: list[Any]) -> None:
        """Detections and camera tamper from the camera thread, each with its own picture."""
        for ev in events:
            if ev.kind == "tamper.camera":
                self.camera_ok = False
            self.emit(ev.kind, ev.data, jpeg=ev.snapshot)

    # --- the self-test's press gate ----------------------------------------------------------
    @property
    def testing(self) -> bool:
        return self._testing

    @testing.setter
    def testing(self, on: bool) -> None:
        """Close the gate for the self-test's driven press; opening it with the button still held means a
        resident is pressing (the drive is off by then), so that press is an alarm after all."""
        self._testing = on
        if not on and self._test_press and self.pins.button_pressed:
            self._test_press = False
            t = self.clock.monotonic()
            self._held_since = t
            self._press(t)

    # --- the button --------------------------------------------------------------------------
    def on_button_edge(self, pressed: bool, t: float) -> None:
        accepted = self.button.feed(pressed, t)
        if accepted is not None:
            self._button_changed(accepted, t)

    def _button_changed(self, pressed: bool, t: float) -> None:
        if self.testing or self._test_press:
            self._test_press = pressed
            self.test_presses += int(pressed)
            return
        if pressed:
            self._held_since = t
            self._press(t)
        else:
            self._held_since = None
            if self._stuck_reported:
                self._stuck_reported = False
                self.emit("node.fault", {"fault": "button_released", "detail": "alarm button works again"})

    def _press(self, t: float) -> None:
        """A press while this pole's alarm is still open at the centre (not resolved) is the same incident:
        one alarm, one card in the console, its count going up (issue 17: a press 5 minutes later opened a
        second card beside the first, whose count lagged 30 s). Only after the centre resolves it does a
        press raise a new alarm."""
        self.presses += 1
        if self.alarm is not None:
            self.alarm.count += 1
            self.alarm.last_press = t
            self._report_count(t)
            return
        burst = self.ring.burst() if self.ring is not None else None
        event = self.emit("alarm.pressed", {"count": 1, "burst_frames": len(burst or [])}, with_snapshot=True,
                          burst=burst)
        self.alarm = OpenAlarm(id=str(event.id), started=t, last_press=t, reported_at=t)
        log.warning("ALARM pressed: %s", event.id)
        if self.cfg.alarm.siren_on_press:
            self.pins.set_siren(True)
        self._show()

    # --- the enclosure -------------------------------------------------------------------------
    def on_enclosure_edge(self, opened: bool, t: float) -> None:
        accepted = self.enclosure.feed(opened, t)
        if accepted is not None:
            self._enclosure_changed(accepted)

    def _enclosure_changed(self, opened: bool) -> None:
        if opened:
            self.emit("tamper.opened", {"detail": "enclosure opened"}, with_snapshot=True)
        else:
            self.emit("tamper.closed", {"detail": "enclosure closed"})

    # --- time --------------------------------------------------------------------------------
    def tick(self, t: float) -> None:
        settled = self.button.settle(t)
        if settled is not None:
            self._button_changed(settled, t)
        settled = self.enclosure.settle(t)
        if settled is not None:
            self._enclosure_changed(settled)
        if self._held_since is not None and not self._stuck_reported \
                and t - self._held_since >= self.cfg.alarm.stuck_after_s:
            self._stuck_reported = True
            self.emit("node.fault", {"fault": "button_stuck", "held_s": round(t - self._held_since, 1),
                                     "detail": "alarm button held down; check for a jam or tampering"})
        alarm = self.alarm
        if alarm is None:
            return
        self._report_count(t)
        if not alarm.received and not alarm.not_delivered \
                and t - alarm.started >= self.cfg.alarm.receipt_timeout_s:
            alarm.not_delivered = True
            log.error("alarm %s not delivered after %.0f s; still trying", alarm.id, t - alarm.started)
            self._show()

    def _report_count(self, t: float) -> None:
        """Send the open alarm's press count: at once, unless a count (or the press) went out less than
        coalesce_window_s ago; then when that window ends (ten panicked presses are one update, not ten)."""
        alarm = self.alarm
        if alarm is None or alarm.count <= alarm.reported_count:
            return
        if t - alarm.reported_at >= self.cfg.alarm.coalesce_window_s:
            alarm.reported_count, alarm.reported_at = alarm.count, t
            self.emit("alarm.repeat", {"alarm_id": alarm.id, "count": alarm.count})

    def _show(self) -> None:
        alarm = self.alarm
        if self.talking:
            pattern = "talking"
        elif alarm is None:
            pattern = "idle"
        elif alarm.stage in ("dispatched", "on_scene"):
            pattern = "help_coming"
        elif alarm.stage == "acknowledged":
            pattern = "seen"
        elif alarm.received:
            pattern = "received"
        elif alarm.not_delivered:
            pattern = "not_delivered"
        else:
            pattern = "sending"
        self.pins.light.show(pattern)

    # --- from the hub -------------------------------------------------------------------------
    def on_receipt(self, stored_ids: list[str]) -> None:
        if self.alarm is not None and self.alarm.id in stored_ids and not self.alarm.received:
            self.alarm.received = True
            self.alarm.not_delivered = False
            self._show()

    def _ack(self, cmd: Command) -> Reply:
        args = cmd.args_as(AlarmAckArgs)  # the dispatcher refused a stage outside ALARM_STAGES
        stage, alarm_id = args.stage, args.alarm_id
        if self.alarm is None or (alarm_id and alarm_id != self.alarm.id):
            return Reply(command_id=cmd.id, ok=True, detail="no such open alarm on this node")
        if stage == "resolved":
            self.alarm = None
            self.pins.set_siren(False)
        else:
            self.alarm.stage = stage
            self.alarm.received = True
        self._show()
        return Reply(command_id=cmd.id, ok=True, detail=f"showing {self.pins.light.pattern}")

    def _siren(self, cmd: Command) -> Reply:
        on = cmd.args_as(SirenSetArgs).on
        self.pins.set_siren(on)
        return Reply(command_id=cmd.id, ok=True, detail=f"siren {'on' if on else 'off'}")

    def _not_for_a_pole(self, cmd: Command) -> Reply:
        return Reply(command_id=cmd.id, ok=False, detail=f"{cmd.name} is not something an alarm pole does")

    def state(self) -> dict[str, Any]:
        return {
            "node": self.node_id,
            "led": self.pins.light.pattern,
            "led_lit": self.pins.light.is_lit,
            "siren": bool(self.pins.siren.value),
            "button": "down" if self.button.state else "up",
            "enclosure": "open" if self.enclosure.state else "shut",
            "alarm": None if self.alarm is None else {
                "id": self.alarm.id, "count": self.alarm.count, "stage": self.alarm.stage,
                "received": self.alarm.received, "not_delivered": self.alarm.not_delivered},
            "outbox": self.outbox.depth(),
            "presses": self.presses,
            "live": self.live.state() if self.live is not None else None,
        }

    def on_talk(self, talking: bool) -> None:
        """A talk-back session began or the last one ended (from edge/live)."""
        self.talking = talking
        self._show()
