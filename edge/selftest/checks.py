"""The self-test's runner and the checks that need no extra wiring (issue 20, docs/selftest.md).

Why a runner with a deadline per check: a self-test runs unattended at night on a node whose first
job is the alarm. A check that hangs (a sound card that never answers, a camera stuck in its driver)
must end at its time limit as ``failed: timeout`` and leave the loop free; every check runs as its own
task under ``asyncio.wait_for``, and a check that raises is a failed check naming the error, never the
end of the self-test.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from edge.protocol import SelftestCheck, SelftestResultData

CheckFn = Callable[[], Awaitable[SelftestCheck]]


@dataclass(frozen=True)
class Check:
    name: str
    run: CheckFn
    timeout_s: float = 10.0


async def run_checks(checks: Iterable[Check], *, trigger: str = "schedule", command_id: str | None = None,
                     only: list[str] | None = None) -> SelftestResultData:
    """Run the checks one after the other (the speaker and the microphone must not overlap)."""
    started = time.monotonic()
    results: list[SelftestCheck] = []
    chosen = list(checks)
    unknown = sorted(set(only or []) - {c.name for c in chosen})
    for check in chosen:
        if only is not None and check.name not in only:
            continue
        try:
            result = await asyncio.wait_for(check.run(), timeout=check.timeout_s)
            results.append(result.model_copy(update={"name": check.name}))
        except TimeoutError:
            results.append(SelftestCheck(name=check.name, status="fail", value=check.timeout_s, limit=check.timeout_s,
                                         unit="s", detail="failed: timeout"))
        except Exception as exc:  # a broken check is a failed check, not a broken self-test
            results.append(SelftestCheck(name=check.name, status="fail", detail=f"error: {exc}"[:300]))
    for name in unknown:
        results.append(SelftestCheck(name=name[:40] or "?", status="skipped",
                                     detail="no such check on this node"))
    return SelftestResultData(ok=all(r.status != "fail" for r in results), trigger=trigger,  # type: ignore[arg-type]
                              command_id=command_id, duration_s=round(time.monotonic() - started, 3),
                              checks=results)


def skipped(name: str, why: str) -> CheckFn:
    async def run() -> SelftestCheck:
        return SelftestCheck(name=name, status="skipped", detail=why)
    return run


def limit_check(name: str, value: float | None, limit: float, unit: str, *, above_fails: bool = True,
                missing: str = "not readable on this node") -> SelftestCheck:
    """Pass/fail of a measured value against its limit; None = not readable here → skipped."""
    if value is None:
        return SelftestCheck(name=name, status="skipped", limit=limit, unit=unit, detail=missing)
    bad = value > limit if above_fails else value < limit
    return SelftestCheck(name=name, status="fail" if bad else "pass", value=round(value, 3), limit=limit, unit=unit,
                         detail=(f"{value:.1f} {unit} {'over' if above_fails else 'under'} the limit" if bad else ""))


# --- the button loop -------------------------------------------------------------------------
class ButtonLoopIO(Protocol):
    """The test wiring: an output driving an optocoupler across the button, and the button's input."""

    def drive(self, on: bool) -> None: ...
    @property
    def pressed(self) -> bool: ...


class PressGate(Protocol):
    """The role's door for presses: while ``testing`` is set, a press is the self-test's, never an alarm
    and never "help coming" on the resident's LED."""

    testing: bool


async def button_loop(io: ButtonLoopIO | None, gate: PressGate, *, limit_s: float = 0.5) -> SelftestCheck:
    if io is None:
        return SelftestCheck(name="button_loop", status="skipped",
                             detail="no test wiring (pins.button_test_drive unset): the button was not tested")
    if io.pressed:
        # a resident pressing now must not be disturbed; a stuck button is reported by the role (button_stuck)
        return SelftestCheck(name="button_loop", status="skipped",
                             detail="button held when the test began (in use, or stuck: see a button_stuck fault)")
    gate.testing = True
    started = time.monotonic()
    try:
        io.drive(True)
        while not io.pressed:
            if time.monotonic() - started > limit_s:
                return SelftestCheck(name="button_loop", status="fail", value=limit_s, limit=limit_s, unit="s",
                                     detail="driven press not seen on the button input")
            await asyncio.sleep(0.005)
        seen = time.monotonic() - started
        io.drive(False)
        while io.pressed:  # released again before presses count as a resident's
            if time.monotonic() - started > 2 * limit_s:
                return SelftestCheck(name="button_loop", status="fail", detail="button did not release after the test")
            await asyncio.sleep(0.005)
        return SelftestCheck(name="button_loop", status="pass", value=round(seen, 3), limit=limit_s, unit="s")
    finally:
        io.drive(False)
        await asyncio.sleep(0.05)  # the debounce has seen the release before the gate opens
        gate.testing = False


# --- system checks ---------------------------------------------------------------------------
async def disk_check(path: Path, limit_pct: float = 90.0) -> SelftestCheck:
    usage = shutil.disk_usage(path)
    return limit_check("disk", 100.0 * usage.used / usage.total, limit_pct, "%")


def read_cpu_temp(path: Path = Path("/sys/class/thermal/thermal_zone0/temp")) -> float | None:
    try:
        return int(path.read_text().strip()) / 1000.0
    except (OSError, ValueError):
        return None


THROTTLE_BITS = {0: "under-voltage now", 1: "ARM frequency capped now", 2: "throttled now",
                 3: "soft temperature limit now", 16: "under-voltage has occurred",
                 18: "throttling has occurred"}


def read_throttled(sysfs: Path = Path("/sys/devices/platform/soc/soc:firmware/get_throttled")) -> int | None:
    """The firmware's throttle flags: sysfs first (no subprocess), else ``vcgencmd get_throttled``."""
    try:
        return int(sysfs.read_text().strip(), 16)
    except (OSError, ValueError):
        pass
    if shutil.which("vcgencmd"):
        import subprocess
        try:
            out = subprocess.run(["vcgencmd", "get_throttled"], capture_output=True, text=True, timeout=2).stdout
            return int(out.strip().split("=")[1], 16)
        except (OSError, ValueError, IndexError, subprocess.SubprocessError):
            return None
    return None


def throttle_check(flags: int | None) -> SelftestCheck:
    if flags is None:
        return SelftestCheck(name="power", status="skipped", detail="throttle flags not readable (not a Pi?)")
    named = [text for bit, text in THROTTLE_BITS.items() if flags & (1 << bit)]
    return SelftestCheck(name="power", status="fail" if flags & 0xF else "pass", value=hex(flags), limit="0x0",
                         detail="; ".join(named))


def read_sd_wear(block: str = "mmcblk0") -> float | None:
    """Percent of the SD card's life used, where the card tells (``life_time``: 0x01..0x0B per 10 %)."""
    p = Path(f"/sys/block/{block}/device/life_time")
    try:
        first = p.read_text().split()[0]
        return max(0, int(first, 16) - 1) * 10.0
    except (OSError, ValueError, IndexError):
        return None


def clock_skew_check(skew_s: float | None, limit_s: float = 5.0) -> SelftestCheck:
    return limit_check("clock_skew", None if skew_s is None else abs(skew_s), limit_s, "s",
                       missing="no hub time known yet")


def outbox_check(depth: int, limit: int = 100) -> SelftestCheck:
    return limit_check("outbox", float(depth), float(limit), "events")
