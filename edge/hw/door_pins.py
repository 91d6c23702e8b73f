"""Pins of a rental-block door, through gpiozero: lock relay, door contact, exit button, fire input.

The lock relay is built with an explicit ``initial_value`` = de-energised, so the first thing the agent
does to the lock is put it in the state the building code chose for the door (``door.mode``): a
fail-secure strike stays locked without power, a fail-safe maglock opens. A crashed or booting Pi leaves
the pin to the wiring and to ``config.txt``'s ``gpio=N=op,dl|dh`` (firmware_config/README.md).

Contacts are wired to ground with the internal pull-up: the door contact is closed ("pressed") while
the door is shut, the exit button while pressed, the fire input while the fire panel is in alarm.
Fire release and the exit button also cut lock power in hardware; the software reports them and
holds the relay released.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gpiozero import Button, OutputDevice
from gpiozero.exc import BadPinFactory, GPIOPinInUse

from edge.config import DoorSettings
from edge.errors import HardwareError
from edge.hw.gpio import close_devices, make_pin_factory

EdgeHandler = Callable[[bool], None]


class DoorPins:
    def __init__(self, door: DoorSettings, factory_mode: str = "auto", factory: Any | None = None) -> None:
        self.cfg = door
        self.factory = factory if factory is not None else make_pin_factory(factory_mode)
        self.mock = type(self.factory).__name__ == "MockFactory"
        self._devices: list[Any] = []
        try:
            # first: the relay, straight into its de-energised state
            self.relay = self._add(OutputDevice(door.lock_relay, active_high=door.lock_active_high,
                                                initial_value=False, pin_factory=self.factory))
            self.contact = self._add(Button(door.door_contact, pull_up=True, bounce_time=None,
                                            pin_factory=self.factory))
            self.exit = self._add(Button(door.exit_button, pull_up=True, bounce_time=None,
                                         pin_factory=self.factory))
            self.fire = self._add(Button(door.fire_input, pull_up=True, bounce_time=None,
                                         pin_factory=self.factory))
        except GPIOPinInUse as exc:
            self.close()
            raise HardwareError(f"a configured door pin is already in use by another program: {exc}") from exc
        except BadPinFactory as exc:
            self.close()
            raise HardwareError(f"cannot open the door's GPIO pins: {exc}") from exc
        if self.mock:
            self.contact.pin.drive_low()  # a simulated door starts shut

    def _add(self, device: Any) -> Any:
        self._devices.append(device)
        return device

    # --- the lock ----------------------------------------------------------------------------
    @property
    def energised(self) -> bool:
        return bool(self.relay.value)

    @property
    def locked(self) -> bool:
        """Whether the lock holds: de-energised for fail_secure, energised for fail_safe."""
        return self.energised == (self.cfg.mode == "fail_safe")

    def set_locked(self, locked: bool) -> None:
        energise = locked if self.cfg.mode == "fail_safe" else not locked
        self.relay.on() if energise else self.relay.off()

    def de_energise(self) -> None:
        """The safe state the building code chose for this door; used at start, stop and on errors."""
        self.relay.off()

    # --- inputs ------------------------------------------------------------------------------
    def on_contact(self, handler: EdgeHandler) -> None:
        """``handler(opened)`` in gpiozero's thread: the contact is closed while the door is shut."""
        self.contact.when_released = lambda: handler(True)
        self.contact.when_pressed = lambda: handler(False)

    def on_exit(self, handler: EdgeHandler) -> None:
        self.exit.when_pressed = lambda: handler(True)
        self.exit.when_released = lambda: handler(False)

    def on_fire(self, handler: EdgeHandler) -> None:
        self.fire.when_pressed = lambda: handler(True)
        self.fire.when_released = lambda: handler(False)

    @property
    def door_open(self) -> bool:
        return not self.contact.is_pressed

    @property
    def exit_pressed(self) -> bool:
        return bool(self.exit.is_pressed)

    @property
    def fire_active(self) -> bool:
        return bool(self.fire.is_pressed)

    # --- simulated hardware (MockFactory only) -------------------------------------------------
    def _mock_pin(self, device: Any) -> Any:
        if not self.mock:
            raise HardwareError("simulated input needs mock pins (pins.factory: mock)")
        return device.pin

    def sim_door(self, opened: bool) -> None:
        pin = self._mock_pin(self.contact)
        pin.drive_high() if opened else pin.drive_low()

    def sim_exit(self, pressed: bool) -> None:
        pin = self._mock_pin(self.exit)
        pin.drive_low() if pressed else pin.drive_high()

    def sim_fire(self, active: bool) -> None:
        pin = self._mock_pin(self.fire)
        pin.drive_low() if active else pin.drive_high()

    def close(self) -> None:
        relay = getattr(self, "relay", None)
        if relay is not None and not relay.closed:
            try:
                relay.off()  # leave the lock de-energised, whatever happened
            except Exception:  # noqa: BLE001 - closing is best effort
                pass
        close_devices(self._devices)

    def __repr__(self) -> str:
        if not self._devices:
            return "<DoorPins closed>"
        return (f"<DoorPins mode={self.cfg.mode} relay={'energised' if self.energised else 'de-energised'} "
                f"lock={'locked' if self.locked else 'released'} door={'open' if self.door_open else 'shut'} "
                f"exit={'pressed' if self.exit_pressed else 'up'} fire={'ACTIVE' if self.fire_active else 'quiet'}>")
