"""The uplink probe: a ``selftest.probe`` event through the node's normal path, timed to ITS receipt.

Why a probe of its own rather than "connected, and a receipt came lately": being connected to the broker
says nothing about the hub's ingest, its database or the way back. The probe goes the way an alarm goes
(outbox → MQTT → hub ingest → commit → the hub's end-to-end receipt), so its receipt proves the whole
round trip at the moment of the test, and the round-trip time is measured, not guessed.

Why the clock skew comes from the same receipt: the hub stamps a receipt that answers a probe with its
own clock (``Receipt.hub_time``, sent after the commit). The node reads its clock when the receipt
arrives; assuming the two legs take about as long, the hub's stamp was made half a round trip earlier,
so ``skew = (local time at receipt − RTT/2) − hub_time``, good to ±RTT/2. That works on every run,
scheduled or commanded (a scheduled run has no command whose ``issued_at`` could serve).

A probe that gets no receipt in time is withdrawn from the outbox: a late probe proves nothing, and a
hub that stays down for a week must not find a week of probes queued behind the alarms.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from edge.protocol import SelftestCheck

FRESH_S = 60.0  # one probe serves a whole run: the clock check reuses the uplink check's probe


@dataclass(frozen=True)
class ProbeResult:
    ok: bool  # a receipt came back in time
    rtt_s: float | None  # seconds from emit to receipt
    skew_s: float | None  # node clock minus hub clock; None without a receipt or without hub_time
    limit_s: float
    at: float  # monotonic time of the attempt
    refused: str | None = None  # the hub's negative receipt for the probe (its reason)


def clock_skew(local_at_receipt: datetime, hub_time: datetime, rtt_s: float) -> float:
    """Node clock minus hub clock: the hub stamped its receipt about half a round trip before it arrived."""
    return (local_at_receipt - hub_time).total_seconds() - rtt_s / 2.0


class UplinkProbe:
    """``emit(kind, data)`` puts an event in the outbox and returns it (the role's emit); ``withdraw(id)``
    takes an unanswered probe out again; the agent calls :meth:`on_receipt` for every receipt."""

    def __init__(self, emit: Callable[[str, dict[str, Any]], Any], withdraw: Callable[[str], None], *,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.emit, self.withdraw, self.now, self.monotonic = emit, withdraw, now, monotonic
        self._waiting: dict[str, asyncio.Future[datetime | str | None]] = {}
        self.last: ProbeResult | None = None

    async def round_trip(self, limit_s: float) -> ProbeResult:
        sent = self.monotonic()
        event = self.emit("selftest.probe", {"sent_at": self.now().isoformat()})
        event_id = str(event.id)
        waiter: asyncio.Future[datetime | str | None] = asyncio.get_running_loop().create_future()
        self._waiting[event_id] = waiter  # before any await: the receipt cannot come first
        try:
            hub_time = await asyncio.wait_for(waiter, timeout=limit_s)
        except TimeoutError:
            self.withdraw(event_id)
            self.last = ProbeResult(False, None, None, limit_s, sent)
            return self.last
        finally:
            self._waiting.pop(event_id, None)
        rtt = self.monotonic() - sent
        if isinstance(hub_time, str):  # refused: the way works, the hub would not take the probe
            self.last = ProbeResult(False, rtt, None, limit_s, sent, refused=hub_time)
            return self.last
        skew = clock_skew(self.now(), hub_time, rtt) if hub_time is not None else None
        self.last = ProbeResult(True, rtt, skew, limit_s, sent)
        return self.last

    def on_receipt(self, ids: list[str], hub_time: datetime | None,
                   rejected: dict[str, str] | None = None) -> None:
        answers: dict[str, datetime | str | None] = {**dict.fromkeys(ids, hub_time), **(rejected or {})}
        for event_id, answer in answers.items():
            waiter = self._waiting.get(event_id)
            if waiter is not None and not waiter.done():
                waiter.set_result(answer)

    async def fresh(self, limit_s: float) -> ProbeResult:
        """This run's probe (the last one, if made in the last minute), else a new one."""
        last = self.last
        if last is not None and self.monotonic() - last.at < FRESH_S:
            return last
        return await self.round_trip(limit_s)


def uplink_result(r: ProbeResult, connected: bool) -> SelftestCheck:
    """``uplink``: pass with the round trip, fail with "no receipt in N s" (and what the link knows)."""
    if r.refused is not None:
        return SelftestCheck(name="uplink", status="fail", value=None if r.rtt_s is None else round(r.rtt_s, 3),
                             limit=r.limit_s, unit="s", detail=f"the hub refused the probe: {r.refused}"[:300])
    if not r.ok:
        why = "" if connected else " (not connected to the broker, or the hub's status is offline)"
        return SelftestCheck(name="uplink", status="fail", value=r.limit_s, limit=r.limit_s, unit="s",
                             detail=f"no receipt in {r.limit_s:g} s{why}")
    assert r.rtt_s is not None
    return SelftestCheck(name="uplink", status="pass", value=round(r.rtt_s, 3), limit=r.limit_s, unit="s",
                         detail="probe receipted by the hub after its commit (round trip)")


def skew_result(r: ProbeResult, limit_s: float, command_skew: float | None = None) -> SelftestCheck:
    """``clock_skew`` from the probe's receipt; from the command's issue time only when the probe failed."""
    if r.skew_s is not None:
        assert r.rtt_s is not None
        bad = abs(r.skew_s) > limit_s
        return SelftestCheck(name="clock_skew", status="fail" if bad else "pass", value=round(r.skew_s, 3),
                             limit=limit_s, unit="s",
                             detail=(f"node clock {'ahead of' if r.skew_s > 0 else 'behind'} the hub's by "
                                     f"{abs(r.skew_s):.1f} s (check NTP); " if bad else "")
                             + f"from the probe's receipt, ±{r.rtt_s / 2:.3f} s")
    if command_skew is not None:
        bad = abs(command_skew) > limit_s
        return SelftestCheck(name="clock_skew", status="fail" if bad else "pass", value=round(command_skew, 3),
                             limit=limit_s, unit="s",
                             detail="from the command's issue time (the probe got no receipt)")
    why = ("the hub refused the probe" if r.refused is not None else "the uplink probe got no receipt" if not r.ok
           else "the hub's receipt carries no clock (an older hub)")
    return SelftestCheck(name="clock_skew", status="skipped", limit=limit_s, unit="s",
                         detail=f"no hub time: {why}")
