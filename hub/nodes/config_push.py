"""Pushing a node config from the centre (``config.update``) and following what became of it.

The hub validates a config with the node's own pydantic model (edge/config.py) before anything
is sent, so a typo is a 422 naming the field and its YAML line, and never reaches a pole. What
travels is the YAML text itself (comments kept), signed like every command; it carries no
secrets: NodeConfig has no secret fields, only the *names* of the environment variables or
credential files (``mqtt.password_env``, ``key_env``, ``door.block_key_env``) that hold the
secrets installed from the node's bundle. Those names, and where the node connects (broker URL,
username, CA and certificate files), are site fields (``edge.config.SITE_FIELDS``): a push may not
name them at all, whoever sends it; the node takes them from its installer's file and refuses a
push that names them with other values (the last line, if a hub ever let one through).

An update's state is read from what the node said, nothing is guessed: the command row (sent,
and the node's reply: ``refused`` with its reason, or ``accepted``), then the node's
``config.applied`` / ``config.rolled_back`` event naming the command (after its restart, through
the durable outbox), or ``expired`` when the node never answered within the command's lifetime.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import urlparse

import yaml
from sqlalchemy import select

from edge.config import NodeConfig, node_config_from_text
from edge.errors import ConfigError
from edge.protocol import MAX_CONFIG_BYTES, ConfigOutcomeData, ConfigUpdateArgs
from hub.alarms.service import HubService
from hub.errors import Conflict, HubError, NotFound
from hub.store.engine import add_audit, now_utc
from hub.store.schema import commands, events, nodes

OUTCOME_KINDS = ("config.applied", "config.rolled_back")


class ConfigInvalid(HubError, ValueError):
    """The pushed config would not load on the node; ``problems`` name each field and line."""

    def __init__(self, message: str, problems: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.problems = problems


def config_text(yaml_text: str | None, config: dict[str, Any] | None) -> str:
    """The YAML that will travel: given as text, or a JSON object dumped as YAML."""
    if (yaml_text is None) == (config is None):
        raise ConfigInvalid("send the node config either as `yaml` (text) or as `config` (an object)",
                            [{"loc": ["body"], "line": None, "msg": "give exactly one of yaml or config",
                              "type": "value_error"}])
    try:
        text = yaml_text if yaml_text is not None else yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
    except (RecursionError, yaml.YAMLError):
        raise ConfigInvalid("the config object cannot be written as YAML (nested too deeply?)",
                            [{"loc": ["config"], "line": None, "msg": "not representable", "type": "value_error"}]
                            ) from None
    if len(text.encode()) > MAX_CONFIG_BYTES:
        raise ConfigInvalid(f"the config is larger than {MAX_CONFIG_BYTES} bytes",
                            [{"loc": ["body"], "line": None, "msg": "too large", "type": "too_long"}])
    return text


def validate_for(node: str, kind: str | None, text: str) -> NodeConfig:
    """Validate as the node will, plus what only the hub knows: which node and kind this is."""
    try:
        cfg = node_config_from_text(text, f"config for {node}")
    except ConfigError as exc:
        raise ConfigInvalid(str(exc), exc.problems) from None
    tree = yaml.compose(text)
    problems = []
    if cfg.node.id != node:
        problems.append({"loc": ["node", "id"], "line": _line(tree, "node", "id"), "type": "value_error",
                         "msg": f"node.id is {cfg.node.id!r} but this update is for {node!r}"})
    if kind is not None and cfg.node.kind != kind:
        problems.append({"loc": ["node", "kind"], "line": _line(tree, "node", "kind"), "type": "value_error",
                         "msg": f"node.kind is {cfg.node.kind!r} but {node} is registered as {kind!r}"})
    for field in cfg.site_fields_set():
        loc = field.split(".")
        problems.append({"loc": loc, "line": _line(tree, *loc), "type": "value_error",
                         "msg": f"{field} is set on site and cannot be pushed: remove it (where a node connects "
                                "and where its secrets come from change only with pingan-edge install and a "
                                "new bundle)"})
    for loc, value in _strings(yaml.safe_load(text)):
        if "://" in value and _has_password(value):
            problems.append({"loc": loc, "line": _line(tree, *loc), "type": "value_error",
                             "msg": "a password in a URL: secrets do not travel in a config update; give the "
                                    "node its credentials through its bundle"})
    if problems:
        raise ConfigInvalid("; ".join(p["msg"] for p in problems), problems)
    return cfg


def _strings(value: Any, loc: tuple[str, ...] = ()) -> list[tuple[list[str], str]]:
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in _strings(v, (*loc, str(k)))]
    if isinstance(value, list):
        return [item for i, v in enumerate(value) for item in _strings(v, (*loc, str(i)))]
    return [(list(loc), value)] if isinstance(value, str) else []


def _has_password(url: str) -> bool:
    try:
        return urlparse(url).password is not None
    except ValueError:
        return False


def _line(tree: yaml.Node | None, *path: str) -> int | None:
    from edge.shared.yamlconfig import _line_of

    return _line_of(tree, path)


def push_config(service: HubService, node: str, text: str, actor: str) -> dict[str, Any]:
    """Validate, then sign and send config.update; the node's answer arrives through ingest."""
    with service.engine.connect() as conn:
        row = conn.execute(select(nodes.c.kind, nodes.c.key_enc, nodes.c.state).where(nodes.c.id == node)).first()
    if row is None:
        raise NotFound(f"no node {node}")
    validate_for(node, row.kind, text)
    if not row.key_enc:
        raise Conflict(f"{node} has no command-signing key (removed or never provisioned): "
                       "register it with pingan-hub nodes add")
    digest = hashlib.sha256(text.encode()).hexdigest()
    with service.writing() as conn:
        add_audit(conn, actor, "command.config.update", node, {"sha256": digest})
        command_id = service._command(conn, node, "config.update", {"yaml": text, "sha256": digest}, actor)
    if command_id is None:
        raise Conflict(f"{node} has no command-signing key")
    return {"command_id": command_id, "node": node, "state": "sent", "sha256": digest}


def list_updates(service: HubService, node: str, limit: int = 50) -> list[dict[str, Any]]:
    """Each config pushed to ``node``, newest first, with the state the node reported."""
    with service.engine.connect() as conn:
        if conn.execute(select(nodes.c.id).where(nodes.c.id == node)).first() is None:
            raise NotFound(f"no node {node}")
        rows = conn.execute(select(commands).where(commands.c.node == node, commands.c.name == "config.update")
                            .order_by(commands.c.issued_at.desc()).limit(limit)).all()
        outcomes: dict[str, Any] = {}
        if rows:
            first = min(r.issued_at for r in rows)
            for ev in conn.execute(select(events).where(events.c.node == node, events.c.kind.in_(OUTCOME_KINDS),
                                                        events.c.received_at >= first).order_by(events.c.seq)):
                data = ConfigOutcomeData.model_validate(ev.data if isinstance(ev.data, dict)
                                                        else json.loads(ev.data or "{}"))
                outcomes[str(data.command_id)] = (ev, data)  # the latest outcome wins
    now = now_utc()
    out = []
    for r in rows:
        args = ConfigUpdateArgs.model_validate(r.args or {})
        item: dict[str, Any] = {
            "command_id": r.id, "operator": r.operator, "issued_at": r.issued_at.isoformat(),
            "expires_at": r.expires_at.isoformat(), "sha256": args.sha256, "yaml": args.yaml,
            "reply": None if r.replied_at is None else {"ok": r.ok, "detail": r.detail,
                                                        "at": r.replied_at.isoformat(), "data": r.data},
            "state": "sent", "reason": None, "outcome_at": None,
        }
        if r.id in outcomes:
            ev, data = outcomes[r.id]
            item["state"] = "applied" if ev.kind == "config.applied" else "rolled_back"
            item["reason"] = data.reason
            item["boots"] = data.boots
            item["outcome_at"] = ev.received_at.isoformat()
        elif r.replied_at is not None:
            item["state"] = "accepted" if r.ok else "refused"
            item["reason"] = None if r.ok else r.detail
        elif now > r.expires_at:
            item["state"] = "expired"
            item["reason"] = "the node did not answer within the command's lifetime (offline?)"
        out.append(item)
    return out
