"""The alarm pole's checks, built from the agent's parts (edge/agent/node.py calls ``pole_tester``).

Each check is a closure over the hardware seam (edge/hw: gpio pins, the tone loop, the camera), so the
same list runs on a Pi (lgpio, ALSA, the real camera) and in the simulator (MockFactory pins, the
simulated acoustic loop, the synthetic camera).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.config import NodeConfig
from edge.hw.audio import ToneLoop
from edge.hw.gpio import AlarmPostPins
from edge.protocol import SelftestCheck
from edge.selftest.audio import audio_loop
from edge.selftest.camera import camera_check
from edge.selftest.checks import Check, PressGate, button_loop, skipped
from edge.selftest.probe import UplinkProbe
from edge.selftest.shared import shared_checks


class _Wiring:
    def __init__(self, pins: AlarmPostPins) -> None:
        self.pins = pins

    def drive(self, on: bool) -> None:
        self.pins.drive_test_press(on)

    @property
    def pressed(self) -> bool:
        return self.pins.button_pressed


async def siren_check(pins: AlarmPostPins, pulse_s: float = 0.3) -> SelftestCheck:
    """A short pulse of the siren/strobe relay; its feedback contact must close (current flows)."""
    if pins.siren_feedback is None:
        return SelftestCheck(name="siren_feedback", status="skipped",
                             detail="no feedback input wired (pins.siren_feedback): the siren was not tested")
    if pins.siren.value:
        return SelftestCheck(name="siren_feedback", status="skipped", detail="siren already on (an alarm): not touched")
    pins.set_siren(True)
    try:
        started = time.monotonic()
        while not pins.siren_feedback_on:
            if time.monotonic() - started > pulse_s:
                return SelftestCheck(name="siren_feedback", status="fail", value=pulse_s, limit=pulse_s, unit="s",
                                     detail="relay energised but no current on the feedback input")
            await asyncio.sleep(0.01)
        return SelftestCheck(name="siren_feedback", status="pass", value=round(time.monotonic() - started, 3),
                             limit=pulse_s, unit="s")
    finally:
        pins.set_siren(False)


async def led_check(pins: AlarmPostPins) -> SelftestCheck:
    """The LED's output follows its pattern (the pin's level: no light sensor looks at the LED itself)."""
    expect_lit = pins.light.pattern == "help_coming"
    lit = pins.light.is_lit
    if pins.light.pattern in ("idle", "help_coming") and lit != expect_lit:
        return SelftestCheck(name="led", status="fail", value=str(lit), limit=str(expect_lit),
                             detail=f"LED output does not match its pattern {pins.light.pattern!r}")
    return SelftestCheck(name="led", status="pass", value=pins.light.pattern,
                         detail="output level checked (no light sensor)")


async def enclosure_check(pins: AlarmPostPins) -> SelftestCheck:
    if pins.tamper is None:
        return SelftestCheck(name="enclosure", status="skipped", detail="no enclosure switch (pins.tamper_switch)")
    if pins.enclosure_open:
        return SelftestCheck(name="enclosure", status="fail", value="open", limit="closed",
                             detail="enclosure switch open: the door of the pole is not shut")
    return SelftestCheck(name="enclosure", status="pass", value="closed", limit="closed")


def pole_checks(cfg: NodeConfig, pins: AlarmPostPins, gate: PressGate, *, tone: ToneLoop | None,
                read_frame: Callable[[], Any] | None, reference_sharpness: Callable[[], float | None],
                outbox_depth: Callable[[], int], probe: UplinkProbe, connected: Callable[[], bool],
                command_skew: Callable[[], float | None], data_dir: Path) -> list[Check]:
    st = cfg.selftest
    timeout = st.check_timeout_s
    tamper = cfg.vision.tamper if cfg.vision is not None else None
    wiring = _Wiring(pins) if pins.test_drive is not None else None
    checks = [
        Check("button_loop", lambda: button_loop(wiring, gate), timeout),
        Check("audio_loop", (lambda: audio_loop(tone, freq_hz=st.tone_hz, min_dbfs=st.tone_min_dbfs)) if tone
              else skipped("audio_loop", "no sound card found (aplay/arecord): speaker and microphone not tested"),
              timeout),
        Check("siren_feedback", lambda: siren_check(pins), timeout),
        Check("led", lambda: led_check(pins), timeout),
        Check("enclosure", lambda: enclosure_check(pins), timeout),
        Check("camera", (lambda: camera_check(read_frame, reference_sharpness=reference_sharpness,
                                              covered_std=tamper.covered_std if tamper else 6.0,
                                              defocus_ratio=tamper.defocus_ratio if tamper else 0.25))
              if read_frame is not None else skipped("camera", "no camera open on this node"), timeout),
    ]
    return checks + shared_checks(st, probe=probe, connected=connected, outbox_depth=outbox_depth,
                                  command_skew=command_skew, data_dir=data_dir)
