"""Remote config updates (``config.update``): a pending config, a confirmed one and a boot counter.

Why this shape: a config pushed from the centre can be valid and still wrong for the place (a
broker port the node cannot reach, a pin that is not there). Nobody is at the pole to fix it, so
the node tries a pushed config as *pending*, counts the starts it gets, and promotes it to
*confirmed* only once the node is up with it; after ``updates.max_boots`` failed starts, or at
once when it cannot even be parsed, it goes back to the last confirmed config and says so.

Files, all in ``<data_dir>/config/`` (the only place the hardened systemd unit lets the agent
write; ``/etc/pingan/node.yaml`` stays the installer's and read-only):

- ``pending.yaml``   the pushed config being tried;
- ``confirmed.yaml`` the last pushed config that came up, with ``confirmed.json`` naming the
  installer's file (its sha256) it replaced: when the installer edits ``/etc/pingan/node.yaml``
  by hand later, that edit is newer and wins again;
- ``update.json``    the trial: command id, starts so far, the last failure, and an outcome
  (``applied`` or ``rolled_back``) until it has been reported to the hub.

Every write is atomic (temp file, fsync, ``os.replace``, fsync of the folder) and ordered so a
power cut at any point leaves a state the next start finishes. A restart is an ``execv`` of the
same command line: a fresh process with the same PID, so systemd (``Type=notify``) and a test
harness keep following it, and the unit's start-limit (which reboots the Pi) is not spent on a
planned restart. A crash that kills the process (or the watchdog) is restarted by systemd, and
that start is counted like any other.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge.config import NodeConfig, load_node_config, node_config_from_text
from edge.errors import ConfigError
from edge.link.commands import CommandRefused
from edge.protocol import Command, Reply
from edge.yamlconfig import atomic_write

if TYPE_CHECKING:
    from edge.agent import NodeAgent

log = logging.getLogger(__name__)

MAX_CONFIG_BYTES = 32 * 1024  # a node config is a few KB; a command stays well under the 64 KB payload bound


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def update_refusals(current: NodeConfig, new: NodeConfig) -> list[str]:
    """What a pushed config may not change remotely (the hub checks the first two as well)."""
    reasons = []
    if new.node.id != current.node.id:
        reasons.append(f"node.id is {new.node.id!r}, this node is {current.node.id!r}")
    if new.node.kind != current.node.kind:
        reasons.append(f"node.kind cannot change remotely ({current.node.kind} -> {new.node.kind})")
    if new.data_dir.resolve() != current.data_dir.resolve():
        reasons.append("data_dir cannot change remotely (the outbox and this update's state live there)")
    if current.signing_key() is not None and new.signing_key() is None:
        reasons.append(f"no command-signing key in ${new.key_env}: the node could never be commanded again")
    for name, path in (("mqtt.ca_file", new.mqtt.ca_file), ("mqtt.client_cert", new.mqtt.client_cert)):
        if path is not None and not path.is_file():
            reasons.append(f"{name} {path} is not a file on this node")
    if new.mqtt.client_cert is not None and not new.secret(new.mqtt.client_key_env):
        reasons.append(f"no client-certificate key in ${new.mqtt.client_key_env} on this node")
    return reasons


@dataclass
class Trial:
    """A pending config being started."""

    command_id: str
    boots: int
    sha256: str


@dataclass
class Boot:
    """What this start runs with, and outcomes still to report to the hub."""

    cfg: NodeConfig
    trial: Trial | None = None
    reports: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


class ConfigStore:
    def __init__(self, base_path: Path, data_dir: Path) -> None:
        self.base_path = Path(base_path)
        self.dir = Path(data_dir) / "config"
        self.pending = self.dir / "pending.yaml"
        self.confirmed = self.dir / "confirmed.yaml"
        self.confirmed_meta = self.dir / "confirmed.json"
        self.state_path = self.dir / "update.json"

    # --- state file ------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        try:
            return json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.error("ignoring an unreadable %s: %s", self.state_path, exc)
            return {}

    def _write_state(self, state: dict[str, Any]) -> None:
        atomic_write(self.state_path, json.dumps(state, sort_keys=True).encode(), mode=0o600)

    def _clear_state(self) -> None:
        self.state_path.unlink(missing_ok=True)
        _fsync_dir(self.dir)

    # --- what the hub's command does -------------------------------------------------------
    def stage(self, text: str, command_id: str) -> str:
        """Keep a checked config as pending (state first: a pending file never lacks its command id)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        digest = sha256_text(text)
        self._write_state({"command_id": command_id, "boots": 0, "sha256": digest, "received_at": time.time()})
        atomic_write(self.pending, text.encode(), mode=0o600)
        return digest

    # --- at start ----------------------------------------------------------------------------
    def boot(self, base: NodeConfig) -> Boot:
        """Choose the config for this start; count the start of a pending one; roll back when due."""
        state = self.state()
        reports: list[tuple[str, dict[str, Any]]] = []
        if self.pending.exists() and state.get("outcome") == "applied":
            self._finish_promote(state)  # a power cut in the middle of promote()
        elif self.pending.exists() and state.get("outcome") == "rolled_back":
            self._drop_pending()
        confirmed = self._confirmed_or(base)
        if state.get("outcome") in ("applied", "rolled_back"):
            reports.append((f"config.{state['outcome']}", _report_data(state)))
        if not self.pending.exists():
            if not reports and state:
                self._clear_state()  # staged state whose pending file never got written
            return Boot(confirmed, None, reports)
        boots = int(state.get("boots", 0)) + 1
        state.update(boots=boots, command_id=state.get("command_id", "?"))
        self._write_state(state)  # counted before trying: a crash during this start still counts
        text = self.pending.read_text(encoding="utf-8", errors="replace")
        try:
            pending = node_config_from_text(text, str(self.pending))
            refusals = update_refusals(confirmed, pending)
            if refusals:
                raise ConfigError("; ".join(refusals))
        except ConfigError as exc:
            reports.append(("config.rolled_back", self.rollback(state, f"the pending config is not valid: {exc}")))
            return Boot(confirmed, None, reports)
        if boots > pending.updates.max_boots:
            reason = state.get("last_failure") or "the node did not come up (crashed or was killed)"
            reason = f"{reason} ({boots - 1} start(s) tried)"
            reports.append(("config.rolled_back", self.rollback(state, reason)))
            return Boot(confirmed, None, reports)
        log.warning("trying the pending config from command %s (start %d of %d)", state["command_id"], boots,
                    pending.updates.max_boots)
        return Boot(pending, Trial(state["command_id"], boots, state.get("sha256") or sha256_text(text)), reports)

    def _confirmed_or(self, base: NodeConfig) -> NodeConfig:
        if not self.confirmed.exists():
            return base
        try:
            meta = json.loads(self.confirmed_meta.read_text())
            text = self.confirmed.read_text(encoding="utf-8")
        except (OSError, ValueError):
            meta, text = {}, ""
        if meta.get("base_sha256") != _file_sha(self.base_path):
            log.warning("%s changed since the last remote config update: using it (the installer's edit is newer)",
                        self.base_path)
            return base
        if meta.get("sha256") != sha256_text(text):
            log.error("%s does not match its record: using %s", self.confirmed, self.base_path)
            return base
        try:
            cfg = node_config_from_text(text, str(self.confirmed))
        except ConfigError as exc:
            log.error("the confirmed config no longer loads (%s): using %s", exc, self.base_path)
            return base
        return cfg

    def reported(self) -> None:
        """The outcome is in the outbox (durable): forget it."""
        state = self.state()
        if state.get("outcome") and not self.pending.exists():
            self._clear_state()

    # --- outcomes ----------------------------------------------------------------------------
    def record_failure(self, reason: str) -> None:
        state = self.state()
        if state:
            state["last_failure"] = reason[:500]
            self._write_state(state)

    def promote(self) -> dict[str, Any]:
        """pending → confirmed; returns the config.applied event's data."""
        state = self.state()
        state["outcome"] = "applied"
        self._write_state(state)
        self._finish_promote(state)
        return _report_data(state)

    def _finish_promote(self, state: dict[str, Any]) -> None:
        text = self.pending.read_text(encoding="utf-8")
        meta = {"base_sha256": _file_sha(self.base_path), "sha256": sha256_text(text),
                "command_id": state.get("command_id"), "applied_at": time.time()}
        atomic_write(self.confirmed_meta, json.dumps(meta).encode(), mode=0o600)
        os.replace(self.pending, self.confirmed)
        _fsync_dir(self.dir)

    def rollback(self, state: dict[str, Any], reason: str) -> dict[str, Any]:
        log.error("rolling back to the last confirmed config: %s", reason)
        state.update(outcome="rolled_back", reason=reason[:1000])
        self._write_state(state)
        self._drop_pending()
        return _report_data(state)

    def _drop_pending(self) -> None:
        self.pending.unlink(missing_ok=True)
        _fsync_dir(self.dir)


def _report_data(state: dict[str, Any]) -> dict[str, Any]:
    data = {"command_id": state.get("command_id", "?"), "boots": state.get("boots", 0)}
    if state.get("sha256"):
        data["sha256"] = state["sha256"]
    if state.get("outcome") == "rolled_back":
        data["reason"] = state.get("reason", "")
    return data


def _file_sha(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ConfigUpdater:
    """The agent's side: obeys config.update, reports outcomes, and watches a trial start."""

    def __init__(self, agent: NodeAgent, store: ConfigStore, boot: Boot) -> None:
        self.agent = agent
        self.store = store
        self.boot = boot
        self.staged: str | None = None  # command id of a config accepted in this run (restart pending)

    @staticmethod
    def wants(payload: bytes) -> bool:
        """Is this a config.update? (cheap peek; the guard checks everything else)"""
        try:
            return json.loads(payload).get("name") == "config.update"
        except (ValueError, AttributeError):
            return False

    def on_command(self, payload: bytes) -> Reply | None:
        agent = self.agent
        try:
            cmd = agent.guard.check(payload)
        except CommandRefused as exc:
            cmd_id = exc.command.id if exc.command else "?"
            log.warning("refused config.update %s: %s", cmd_id, exc.reason)
            agent.role.emit("command.refused", {
                "command_id": cmd_id, "reason": exc.reason, "name": "config.update",
                "operator": exc.command.operator if exc.command else None})
            if exc.command is None or exc.command.node != agent.cfg.node.id:
                return None
            return Reply(command_id=cmd_id, ok=False, detail=f"refused: {exc.reason}")
        return self._obey(cmd)

    def _obey(self, cmd: Command) -> Reply:
        def refuse(detail: str) -> Reply:
            log.warning("config.update %s refused: %s", cmd.id, detail)
            return Reply(command_id=cmd.id, ok=False, detail=f"refused: {detail}"[:500])

        if self.boot.trial is not None or self.staged is not None:
            busy = self.staged or self.boot.trial.command_id  # type: ignore[union-attr]
            return refuse(f"config update {busy} is still being tried; wait for config.applied or rolled_back")
        text = cmd.args.get("yaml")
        if not isinstance(text, str) or not text.strip():
            return refuse("args.yaml must hold the node config as YAML text")
        if len(text.encode()) > MAX_CONFIG_BYTES:
            return refuse(f"the config is larger than {MAX_CONFIG_BYTES} bytes")
        try:
            new = node_config_from_text(text, "config.update")
        except ConfigError as exc:
            return refuse(str(exc))
        reasons = update_refusals(self.agent.cfg, new)
        if reasons:
            return refuse("; ".join(reasons))
        digest = self.store.stage(text, cmd.id)
        self.staged = cmd.id
        log.warning("config.update %s accepted (sha256 %s): restarting with it", cmd.id, digest[:12])
        # after the reply has gone out (link.stop() waits for its last publish, which follows the reply)
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
        return None


async def run_agent(boot: Boot, store: ConfigStore) -> str | None:
    """Run the node until stopped; returns why it wants a restart (None: it was stopped)."""
    from edge.agent import NodeAgent

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
