"""The node's self-tester: one ``selftest.run`` handler on the dispatcher and the nightly schedule.

The command comes through the node's one dispatcher (edge/link/dispatch.py), so an unsigned,
replayed or expired ``selftest.run`` is refused and audited like every command. The result is one
``selftest.result`` event (sent through the role's emit, audit class) and the command's reply.

A failed *scheduled* run is tried again once, its failed checks only, ``retry_after_s`` later (2N's
practice: 10 minutes): a passer-by shouting over the tone test, or a truck shaking the camera, is not a
fault a technician should be sent for. The failed result says when the retry will run (``retry_at``), so
the hub waits for the retry's result before it raises node.fault (hub/selftest/service.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from edge.link.dispatch import CommandDispatcher
from edge.protocol import Command, Reply, SelftestResultData, SelftestRunArgs
from edge.selftest.checks import Check, run_checks
from edge.selftest.schedule import next_run, parse_window

log = logging.getLogger(__name__)


class SelfTester:
    def __init__(self, node_id: str, checks: list[Check], emit: Callable[[str, dict[str, Any]], Any], *,
                 start: str = "03:00", window_min: int = 60, retry_after_s: float = 600,
                 now: Callable[[], datetime] = lambda: datetime.now().astimezone()) -> None:
        parse_window(start, window_min)  # a bad window is a config error at start, not at 03:00
        self.node_id, self.checks, self.emit = node_id, checks, emit
        self.start, self.window_min, self.now = start, window_min, now
        self.retry_after_s = retry_after_s
        self._lock = asyncio.Lock()  # one self-test at a time
        self.last: SelftestResultData | None = None
        self.clock_skew_s: float | None = None  # node clock minus the hub's, from the last selftest.run
        self.clock_skew_at = float("-inf")  # monotonic time it was taken (the probe's receipt is preferred)

    def register(self, commands: CommandDispatcher) -> None:
        commands.register(self._obey, "selftest.run")

    async def run(self, trigger: str = "schedule", command_id: str | None = None,
                  only: list[str] | None = None, retry: bool = False) -> SelftestResultData:
        """Run the checks and emit the result; ``retry``: a failure says when it will be tried again."""
        async with self._lock:
            result = await run_checks(self.checks, trigger=trigger, command_id=command_id, only=only)
        if retry and not result.ok and self.retry_after_s > 0:
            result.retry_at = self.now() + timedelta(seconds=self.retry_after_s)
        self.last = result
        self.emit("selftest.result", result.dump())
        return result

    def command_skew(self, max_age_s: float = 60.0) -> float | None:
        """The skew from this run's command, if the run was commanded (a fallback when the probe fails)."""
        return self.clock_skew_s if time.monotonic() - self.clock_skew_at < max_age_s else None

    async def _obey(self, cmd: Command) -> Reply:
        args = SelftestRunArgs.model_validate(cmd.args)
        # the command's issue time is the hub's clock a moment ago (transit is well under the limit)
        self.clock_skew_s = (self.now() - cmd.issued_at).total_seconds()
        self.clock_skew_at = time.monotonic()
        result = await self.run("command", cmd.id, args.checks)
        failed = [c.name for c in result.checks if c.status == "fail"]
        return Reply(command_id=cmd.id, ok=True, data=result.dump(),
                     detail="all checks passed" if not failed else "failed: " + ", ".join(failed))

    async def nightly(self) -> None:
        """Sleep until this node's slot, test, repeat (a task of the agent; cancelled at stop)."""
        while True:
            now = self.now()
            await asyncio.sleep(max(0.0, (next_run(self.node_id, now, self.start, self.window_min) - now)
                                    .total_seconds()))
            try:
                await self.scheduled()
            except Exception:  # the next night tries again; the node goes on
                log.exception("scheduled self-test failed")

    async def scheduled(self) -> SelftestResultData:
        """One scheduled self-test, and its one retry of the failed checks when it fails."""
        result = await self.run("schedule", retry=True)
        if result.retry_at is None:
            return result
        failed = [c.name for c in result.checks if c.status == "fail"]
        log.warning("scheduled self-test failed (%s): trying those again in %.0f s", ", ".join(failed),
                    self.retry_after_s)
        await asyncio.sleep(self.retry_after_s)
        return await self.run("retry", only=failed)
