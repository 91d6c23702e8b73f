"""The node's config files for remote updates: pending, confirmed, and the boot counter.

Files, all in ``<data_dir>/config/`` (the only place the hardened systemd unit lets the agent
write; ``/etc/pingan/node.yaml`` stays the installer's and read-only):

- ``pending.yaml``   the pushed config being tried;
- ``confirmed.yaml`` the last pushed config that came up, with ``confirmed.json`` naming the
  installer's file (its sha256) it replaced: when the installer edits ``/etc/pingan/node.yaml``
  by hand later, that edit is newer and wins again;
- ``update.json``    the trial: command id, starts so far, the last failure, and an outcome
  (``applied`` or ``rolled_back``) until it has been reported to the hub.

Every write is atomic (temp file, fsync, ``os.replace``, fsync of the folder) and ordered so a
power cut at any point leaves a state the next start finishes (tests/edge/test_config_store.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.config import NodeConfig, pushed_config_from_text, site_field_changes
from edge.errors import ConfigError
from edge.shared.yamlconfig import atomic_write

log = logging.getLogger(__name__)



def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def update_refusals(current: NodeConfig, new: NodeConfig) -> list[str]:
    """What a pushed config may not change remotely (the hub checks the first two as well).

    ``new`` comes from :func:`edge.config.pushed_config_from_text`, which has already refused any
    change of where the node connects or where its secrets come from and taken those from the
    installer's file; the checks on them below are the last line if that ever changed."""
    reasons = []
    if new.node.id != current.node.id:
        reasons.append(f"node.id is {new.node.id!r}, this node is {current.node.id!r}")
    if new.node.kind != current.node.kind:
        reasons.append(f"node.kind cannot change remotely ({current.node.kind} -> {new.node.kind})")
    reasons += site_field_changes(current, new)
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
            state: dict[str, Any] = json.loads(self.state_path.read_text())
            return state
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
            pending = pushed_config_from_text(text, base, str(self.pending))
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

    def in_effect(self, base: NodeConfig) -> tuple[NodeConfig, str]:
        """The config the agent runs now and a sentence saying which (read-only: for doctor)."""
        cfg = self._confirmed_or(base)
        where = f"{self.confirmed} (pushed by the hub)" if cfg is not base else str(self.base_path)
        state = self.state()
        if self.pending.exists():
            where += (f"; config.update {state.get('command_id', '?')} is pending (start {state.get('boots', 0)} "
                      f"of {cfg.updates.max_boots} tried)")
        return cfg, where

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
            cfg = pushed_config_from_text(text, base, str(self.confirmed))
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
