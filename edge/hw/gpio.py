"""Pins of an alarm pole, through gpiozero; the only module of the agent that imports it.

Every device takes its pins from one pin factory: lgpio on a Pi, gpiozero's MockFactory
elsewhere (``pins.factory: mock`` or ``GPIOZERO_PIN_FACTORY=mock``). gpiozero's
``bounce_time`` is ignored by MockFactory, so debounce is ours (``edge.roles.debounce``),
which also makes it the same on and off the Pi.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from gpiozero import LED, Button, Device, OutputDevice
from gpiozero.exc import BadPinFactory, GPIOPinInUse

from edge.config import Pins
from edge.errors import HardwareError

EdgeHandler = Callable[[bool], None]

# LED patterns the resident reads: (on seconds, off seconds) or "steady"/"off".
LED_PATTERNS: dict[str, tuple[float, float] | str] = {
    "idle": "off",
    "sending": (0.1, 0.1),  # fast blink: the alarm is on its way
    "received": (0.5, 0.5),  # slow blink: the centre has it
    "seen": (1.5, 0.5),  # long blink: an operator has seen it and is finding someone (issue 18)
    "help_coming": "steady",  # a responder accepted the task (or an operator dispatched): help is coming
    "not_delivered": (0.1, 0.9),  # short flash: not delivered, the sign says call 110
    "fault": (1.0, 2.0),
    "talking": (0.9, 0.3),  # long on, short off: the centre is talking to you (live talk-back)
}


def close_devices(devices: list[Any]) -> None:
    """Close in reverse order of opening and forget them: best effort, so one stuck pin cannot keep the
    others (a lock relay among them) claimed when the agent stops."""
    for device in reversed(devices):
        try:
            device.close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass
    devices.clear()


def make_pin_factory(mode: str) -> Any:
    """The pin factory for this run; None means gpiozero's own choice (lgpio on a Pi)."""
    if mode == "mock" or os.environ.get("GPIOZERO_PIN_FACTORY", "").lower() == "mock":
        from gpiozero.pins.mock import MockFactory

        return MockFactory()
    try:
        return Device._default_pin_factory()
    except BadPinFactory as exc:
        raise HardwareError(
            "no GPIO pin driver found: on a Raspberry Pi install lgpio (pip install 'pingan[pi]'); "
            "off the Pi set pins.factory: mock in the node config or GPIOZERO_PIN_FACTORY=mock"
        ) from exc


class StatusLight:
    """The pole's status LED; ``pattern`` names what the resident currently sees."""

    def __init__(self, led: LED) -> None:
        self._led = led
        self.pattern = "idle"
        led.off()

    def show(self, pattern: str) -> None:
        if pattern == self.pattern:
            return
        spec = LED_PATTERNS[pattern]
        self.pattern = pattern
        if spec == "off":
            self._led.off()
        elif spec == "steady":
            self._led.on()
        else:
            on_time, off_time = spec  # type: ignore[misc]
            self._led.blink(on_time=on_time, off_time=off_time, background=True)

    @property
    def is_lit(self) -> bool:
        return bool(self._led.is_lit)

    def __repr__(self) -> str:
        return f"<StatusLight pattern={self.pattern} lit={self.is_lit}>"


class AlarmPostPins:
    """Button, status LED, siren/strobe relay and enclosure switch of one pole."""

    def __init__(self, pins: Pins, factory: Any | None = None) -> None:
        self.factory = factory if factory is not None else make_pin_factory(pins.factory)
        self.mock = type(self.factory).__name__ == "MockFactory"
        self._devices: list[Any] = []
        try:
            self.button = self._add(Button(pins.alarm_button, pull_up=pins.button_pull_up,
                                           bounce_time=None, pin_factory=self.factory))
            self.light = StatusLight(self._add(LED(pins.status_led, initial_value=False,
                                                   pin_factory=self.factory)))
            self.siren = self._add(OutputDevice(pins.siren, active_high=pins.siren_active_high,
                                                initial_value=False, pin_factory=self.factory))
            self.tamper = (self._add(Button(pins.tamper_switch, pull_up=True, bounce_time=None,
                                            pin_factory=self.factory))
                           if pins.tamper_switch is not None else None)
            # the self-test's wiring (docs/selftest.md): an output across the button, the siren's feedback
            self.test_drive = (self._add(OutputDevice(pins.button_test_drive, initial_value=False,
                                                      pin_factory=self.factory))
                               if pins.button_test_drive is not None else None)
            self.siren_feedback = (self._add(Button(pins.siren_feedback, pull_up=True, bounce_time=None,
                                                    pin_factory=self.factory))
                                   if pins.siren_feedback is not None else None)
        except GPIOPinInUse as exc:
            self.close()
            raise HardwareError(f"a configured pin is already in use by another program: {exc}") from exc
        except BadPinFactory as exc:
            self.close()
            raise HardwareError(f"cannot open the GPIO pins: {exc}") from exc
        self._pins = pins
        # simulated test wiring: the optocoupler and the siren's feedback contact work until a test breaks them
        self.sim_test_wiring_ok = True
        self.sim_siren_ok = True
        if self.mock and self.tamper is not None:
            self.tamper.pin.drive_low()  # a simulated enclosure starts shut

    def _add(self, device: Any) -> Any:
        self._devices.append(device)
        return device

    def on_button(self, handler: EdgeHandler) -> None:
        """``handler(pressed)`` on every raw edge, in gpiozero's thread."""
        self.button.when_pressed = lambda: handler(True)
        self.button.when_released = lambda: handler(False)

    def on_tamper(self, handler: EdgeHandler) -> None:
        """``handler(opened)``: the enclosure switch is closed (pressed) while the door is shut."""
        if self.tamper is not None:
            self.tamper.when_released = lambda: handler(True)
            self.tamper.when_pressed = lambda: handler(False)

    @property
    def button_pressed(self) -> bool:
        return bool(self.button.is_pressed)

    @property
    def enclosure_open(self) -> bool:
        return self.tamper is not None and not self.tamper.is_pressed

    def set_siren(self, on: bool) -> None:
        self.siren.on() if on else self.siren.off()
        if self.mock and self.siren_feedback is not None:  # the simulated siren draws current when it works
            pin = self.siren_feedback.pin
            pin.drive_low() if on and self.sim_siren_ok else pin.drive_high()

    @property
    def siren_feedback_on(self) -> bool | None:
        """The siren's feedback contact (None: not wired)."""
        return None if self.siren_feedback is None else bool(self.siren_feedback.is_pressed)

    def drive_test_press(self, on: bool) -> None:
        """Drive the optocoupler across the button (the self-test's press). Simulated: the button's pin
        follows while the wiring is intact."""
        if self.test_drive is None:
            raise HardwareError("no button test drive wired (pins.button_test_drive)")
        self.test_drive.on() if on else self.test_drive.off()
        if self.mock and (self.sim_test_wiring_ok or not on):
            self.sim_button(on)

    # --- simulated hardware (MockFactory only) ---------------------------------------------
    def _mock_pin(self, device: Any) -> Any:
        if not self.mock:
            raise HardwareError("simulated input needs mock pins (pins.factory: mock)")
        return device.pin

    def sim_button(self, pressed: bool) -> None:
        pin = self._mock_pin(self.button)
        active_low = self._pins.button_pull_up
        (pin.drive_low() if pressed == active_low else pin.drive_high())

    def sim_enclosure(self, opened: bool) -> None:
        if self.tamper is None:
            raise HardwareError("this node has no tamper switch configured")
        pin = self._mock_pin(self.tamper)
        pin.drive_high() if opened else pin.drive_low()

    def close(self) -> None:
        close_devices(self._devices)

    def __repr__(self) -> str:
        return (f"<AlarmPostPins button={'down' if self.button_pressed else 'up'} {self.light!r} "
                f"siren={'on' if self.siren.value else 'off'} "
                f"enclosure={'open' if self.enclosure_open else 'shut'}>")
