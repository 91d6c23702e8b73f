"""The checks every node kind runs (poles and doors alike): uplink probe, outbox, disk, clock skew, CPU
temperature, power and SD wear. One list, so a door and a pole report the same names and limits and the
hub's views compare them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from edge.config import SelftestSettings
from edge.protocol import SelftestCheck
from edge.selftest.checks import (
    Check,
    disk_check,
    limit_check,
    outbox_check,
    read_cpu_temp,
    read_sd_wear,
    read_throttled,
    throttle_check,
)
from edge.selftest.probe import UplinkProbe, skew_result, uplink_result


def probe_limit(st: SelftestSettings) -> float:
    """The probe's wait, kept under the check's own time limit so "no receipt" is said, not "timeout"."""
    return min(st.uplink_limit_s, max(0.5, st.check_timeout_s - 0.5))


def shared_checks(st: SelftestSettings, *, probe: UplinkProbe, connected: Callable[[], bool],
                  outbox_depth: Callable[[], int], command_skew: Callable[[], float | None],
                  data_dir: Path) -> list[Check]:
    timeout = st.check_timeout_s
    limit = probe_limit(st)

    async def _uplink() -> SelftestCheck:
        return uplink_result(await probe.round_trip(limit), connected())

    async def _skew() -> SelftestCheck:
        return skew_result(await probe.fresh(limit), st.clock_skew_max_s, command_skew())

    async def _cpu() -> SelftestCheck:
        return limit_check("cpu_temp", read_cpu_temp(), st.cpu_temp_max_c, "°C")

    async def _power() -> SelftestCheck:
        return throttle_check(await asyncio.to_thread(read_throttled))

    async def _sd() -> SelftestCheck:
        return limit_check("sd_wear", read_sd_wear(), 80.0, "% of life", missing="the SD card does not report wear")

    async def _outbox() -> SelftestCheck:
        return outbox_check(outbox_depth(), st.outbox_max)

    return [
        Check("uplink", _uplink, timeout),
        Check("outbox", _outbox, timeout),
        Check("disk", lambda: disk_check(data_dir, st.disk_max_pct), timeout),
        Check("clock_skew", _skew, timeout),
        Check("cpu_temp", _cpu, timeout),
        Check("power", _power, timeout),
        Check("sd_wear", _sd, timeout),
    ]
