"""Remote config updates (``config.update``): try a pushed config, confirm it or roll back by itself.

Why this shape: a config pushed from the centre can be valid and still wrong for the place (a
broker port the node cannot reach, a pin that is not there). Nobody is at the pole to fix it, so
the node tries a pushed config as *pending* (edge/agent/configstore.py), counts the starts it gets, and
promotes it to *confirmed* only once the node is up with it; after ``updates.max_boots`` failed
starts, or at once when it cannot even be parsed, it goes back to the last confirmed config and
says so with a ``config.rolled_back`` event (``config.applied`` when it worked).

A restart is an ``execv`` of the same command line: a fresh process with the same PID, so systemd
(``Type=notify``) and a test harness keep following it, and the unit's start limit (which reboots
the Pi) is not spent on a planned restart. A crash that kills the process (or the watchdog) is
restarted by systemd, and that start is counted like any other.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from edge.agent.configstore import Boot, ConfigStore, update_refusals
from edge.config import load_node_config, pushed_config_from_text
from edge.errors import ConfigError
from edge.protocol import MAX_CONFIG_BYTES, Command, ConfigUpdateArgs, Reply

if TYPE_CHECKING:
    from edge.agent.node import NodeAgent

log = logging.getLogger(__name__)


class ConfigUpdater:
    """The agent's side: obeys config.update, reports outcomes, and watches a trial start."""

    def __init__(self, agent: NodeAgent, store: ConfigStore, boot: Boot) -> None:
        self.agent = agent
        self.store = store
        self.boot = boot
        self.staged: str | None = None  # command id of a config accepted in this run (restart pending)
        # A trial start's config.trial event, and whether our hub's receipt for it came back: a broker
        # that takes the node's publishes (PUBACK) but drops them (an ACL) must not pass a trial.
        self.trial_event: str | None = None
        self.trial_receipted = False
        agent.commands.register(self._obey, "config.update")

    def _obey(self, cmd: Command) -> Reply:
        def refuse(detail: str) -> Reply:
            log.warning("config.update %s refused: %s", cmd.id, detail)
            return Reply(command_id=cmd.id, ok=False, detail=f"refused: {detail}"[:500])

        if self.boot.trial is not None or self.staged is not None:
            busy = self.staged or self.boot.trial.command_id  # type: ignore[union-attr]
            return refuse(f"config update {busy} is still being tried; wait for config.applied or rolled_back")
        text = cmd.args_as(ConfigUpdateArgs).yaml
        if not text.strip():
            return refuse("args.yaml must hold the node config as YAML text")
        if len(text.encode()) > MAX_CONFIG_BYTES:
            return refuse(f"the config is larger than {MAX_CONFIG_BYTES} bytes")
        try:
            new = pushed_config_from_text(text, self.agent.cfg)
        except ConfigError as exc:
            return refuse(str(exc))
        reasons = update_refusals(self.agent.cfg, new)
        if reasons:
            return refuse("; ".join(reasons))
        digest = self.store.stage(text, cmd.id)
        self.staged = cmd.id
        log.warning("config.update %s accepted (sha256 %s): restarting with it", cmd.id, digest[:12])
        # the reply is queued before the restart's DISCONNECT, and paho writes packets in order
        self.agent.loop.call_later(0.2, self.agent.restart, f"config.update {cmd.id}")
        return Reply(command_id=cmd.id, ok=True, detail="accepted; restarting with it (pending until it comes up)",
                     data={"sha256": digest, "trial_s": new.updates.trial_s, "max_boots": new.updates.max_boots})

    async def run(self) -> None:
        try:
            await self._run()
        except Exception:  # the agent gathers its tasks only at stop: say it now
            log.exception("config update handling failed")
            raise

    async def _run(self) -> None:
        """Report outcomes decided at start, then watch a trial start until it passes or fails."""
        for kind, data in self.boot.reports:
            self.agent.role.emit(kind, data)
        if self.boot.reports:
            self.store.reported()
            self.agent.wake()
        trial = self.boot.trial
        if trial is None:
            return
        upd = self.agent.cfg.updates
        event = self.agent.role.emit("config.trial", {"command_id": trial.command_id, "boots": trial.boots,
                                                      "sha256": trial.sha256})
        self.trial_event = str(event.id)
        started = time.monotonic()
        healthy_since: float | None = None
        while True:
            now = time.monotonic()
            problem = self._health_problem(now)
            if problem is None:
                healthy_since = healthy_since if healthy_since is not None else now
                if now - healthy_since >= upd.settle_s:
                    break
            else:
                healthy_since = None
                if now - started > upd.trial_s:
                    reason = f"start {trial.boots}: {problem} within {upd.trial_s:g} s"
                    log.error("the pending config did not come up: %s", reason)
                    self.store.record_failure(reason)
                    self.agent.restart(reason)
                    return
            await asyncio.sleep(0.2)
        data = self.store.promote()
        self.boot.trial = None
        log.warning("config from command %s confirmed after start %d", trial.command_id, trial.boots)
        self.agent.role.emit("config.applied", data)
        self.store.reported()
        self.agent.wake()

    def _health_problem(self, now: float) -> str | None:
        agent = self.agent
        if not agent.link.connected:
            return f"could not connect to the broker at {agent.cfg.mqtt.url}"
        if not agent.hub_status_seen:
            return "connected, but the hub's status never arrived (subscriptions refused?)"
        if now - agent._last_tick > 2:
            return "the node's loop stalled"
        if self.trial_event is not None and not self.trial_receipted:
            return ("connected, but no end-to-end receipt from the hub for this start's config.trial event "
                    "(the broker takes the node's messages but they do not reach the hub: its ACL?)")
        return None

    def on_receipt(self, ids: list[str]) -> None:
        """Event ids the hub stored or refused: either way our hub has heard this node."""
        if self.trial_event is not None and self.trial_event in ids:
            self.trial_receipted = True


async def run_agent(boot: Boot, store: ConfigStore) -> str | None:
    """Run the node until stopped; returns why it wants a restart (None: it was stopped)."""
    from edge.agent.node import NodeAgent

    agent = NodeAgent(boot.cfg)
    agent.updater = ConfigUpdater(agent, store, boot)
    await agent.run()
    return agent.restart_reason


def run_node_with_updates(config_path: Path) -> None:
    """``pingan-edge run``: pick the config (confirmed or pending), run, restart on an update.

    ConfigError (the installer's own file is bad) propagates: exit 2, as before. With a pending
    config on trial, any failure to start is recorded and the node restarts, so the boot
    counter decides the rollback.
    """
    base = load_node_config(config_path)
    store = ConfigStore(config_path, base.data_dir)
    boot = store.boot(base)
    try:
        reason = asyncio.run(run_agent(boot, store))
    except Exception as exc:  # noqa: BLE001 - any failure of a trial start counts toward its rollback
        if boot.trial is None:
            raise
        log.error("the pending config failed to start: %s", exc)
        store.record_failure(f"start {boot.trial.boots} failed: {type(exc).__name__}: {exc}")
        reason = "pending config failed to start"
    if reason is not None:
        restart_process(reason)


def restart_process(reason: str) -> None:
    """Replace this process with a fresh run of the same command (same PID; see the module doc)."""
    log.warning("restarting the node agent: %s", reason)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os.execv(sys.executable, [sys.executable, "-m", "edge.cli", *sys.argv[1:]])
