"""The MQTT contract between nodes and the hub: topics and payload models.

This is the only module that spells a topic string. Both sides import it, so a change here is a
change of the external contract: keep it backward compatible (new optional fields, new kinds)
or bump ``ROOT``'s version.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import Any, Literal, NamedTuple

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

ROOT = "pingan/v1"
NODE_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
_NODE_ID_RE = re.compile(NODE_ID_PATTERN)
MAX_SNAPSHOT_BYTES = 256 * 1024
MAX_CONFIG_BYTES = 32 * 1024  # config.update's YAML: a node config is a few KB; the command stays under 64 KB
MAX_JSON_PAYLOAD_BYTES = 64 * 1024


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


def check_node_id(node: str) -> str:
    if not _NODE_ID_RE.match(node):
        raise ValueError(
            f"node id {node!r} is not valid: use lowercase letters, digits and '-' (e.g. 'pole-07')"
        )
    return node


# ---------------------------------------------------------------------------------------------
# Topics
# ---------------------------------------------------------------------------------------------
class Topics:
    """Builders and parsers for every topic of the contract."""

    @staticmethod
    def node_base(node: str) -> str:
        return f"{ROOT}/nodes/{check_node_id(node)}"

    @classmethod
    def status(cls, node: str) -> str:
        return f"{cls.node_base(node)}/status"

    @classmethod
    def events(cls, node: str) -> str:
        return f"{cls.node_base(node)}/events"

    @classmethod
    def snapshot(cls, node: str, event_id: str) -> str:
        return f"{cls.node_base(node)}/snapshots/{event_id}"

    @classmethod
    def clip(cls, node: str, event_id: str, n: int) -> str:
        return f"{cls.node_base(node)}/clips/{event_id}/{n}"

    @classmethod
    def heartbeat(cls, node: str) -> str:
        return f"{cls.node_base(node)}/heartbeat"

    @classmethod
    def commands(cls, node: str) -> str:
        return f"{cls.node_base(node)}/commands"

    @classmethod
    def replies(cls, node: str) -> str:
        return f"{cls.node_base(node)}/replies"

    @classmethod
    def receipts(cls, node: str) -> str:
        return f"{cls.node_base(node)}/receipts"

    HUB_STATUS = f"{ROOT}/hub/status"
    HA_DISCOVERY_PREFIX = "homeassistant"

    @classmethod
    def ha_state(cls, node: str, entity: str) -> str:
        """State the hub publishes for Home Assistant (only the hub writes these)."""
        return f"{ROOT}/ha/{check_node_id(node)}/{entity}"

    @classmethod
    def ha_discovery(cls, component: str, node: str, entity: str) -> str:
        return f"{cls.HA_DISCOVERY_PREFIX}/{component}/pingan_{check_node_id(node).replace('-', '_')}/{entity}/config"

    # Subscriptions the hub makes (node-to-hub traffic of every node).
    HUB_SUBSCRIPTIONS: tuple[tuple[str, int], ...] = (
        (f"{ROOT}/nodes/+/status", 1),
        (f"{ROOT}/nodes/+/events", 1),
        (f"{ROOT}/nodes/+/snapshots/+", 1),
        (f"{ROOT}/nodes/+/clips/+/+", 1),
        (f"{ROOT}/nodes/+/heartbeat", 0),
        (f"{ROOT}/nodes/+/replies", 1),
    )

    @classmethod
    def hub_subscriptions(cls, share_group: str | None = None) -> list[tuple[str, int]]:
        """What one hub process subscribes to. With replicas (``share_group``), node-to-hub traffic goes
        through ``$share/<group>/...`` so each message reaches one replica; node status stays
        non-shared (a retained message is not delivered on a shared subscription, and every replica
        keeps the same view), and the replicas also read the hub's own status, to correct a dead
        replica's last will while others still serve."""
        if not share_group:
            return list(cls.HUB_SUBSCRIPTIONS)
        out = [(f"$share/{share_group}/{topic}", qos) if not topic.endswith("/status") else (topic, qos)
               for topic, qos in cls.HUB_SUBSCRIPTIONS]
        return [*out, (cls.HUB_STATUS, 1)]

    @staticmethod
    def node_subscriptions(node: str) -> tuple[tuple[str, int], ...]:
        return (
            (Topics.commands(node), 1),
            (Topics.receipts(node), 1),
            (Topics.HUB_STATUS, 1),
        )

    @staticmethod
    def parse(topic: str) -> ParsedTopic | None:
        """Split a node topic into (node, channel, rest); None for anything outside the contract."""
        prefix = f"{ROOT}/nodes/"
        if not topic.startswith(prefix):
            return None
        parts = topic[len(prefix):].split("/")
        if len(parts) < 2 or not _NODE_ID_RE.match(parts[0]):
            return None
        node, channel, rest = parts[0], parts[1], parts[2:]
        expected_rest = {"status": 0, "events": 0, "heartbeat": 0, "commands": 0, "replies": 0,
                         "receipts": 0, "snapshots": 1, "clips": 2}
        if channel not in expected_rest or len(rest) != expected_rest[channel]:
            return None
        return ParsedTopic(node=node, channel=channel, rest=tuple(rest))


class ParsedTopic(NamedTuple):
    node: str
    channel: str
    rest: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------
# Event kinds and outbox classes
# ---------------------------------------------------------------------------------------------
class Priority(IntEnum):
    """Outbox classes, highest first (lower number = sent first, never evicted for 0 and 1)."""

    ALARM = 0
    AUDIT = 1
    DETECTION = 2
    TELEMETRY = 3


EVENT_KINDS: dict[str, Priority] = {
    "alarm.pressed": Priority.ALARM,
    "alarm.repeat": Priority.ALARM,  # more presses folded into an open alarm: data.alarm_id, data.count
    "alarm.test": Priority.ALARM,
    "tamper.opened": Priority.ALARM,
    "tamper.closed": Priority.ALARM,
    "tamper.camera": Priority.ALARM,
    "door.forced": Priority.ALARM,
    "door.held_open": Priority.ALARM,
    "door.fire_release": Priority.ALARM,
    "door.lockout": Priority.ALARM,
    "door.granted": Priority.AUDIT,
    "door.denied": Priority.AUDIT,
    "command.refused": Priority.AUDIT,
    # config.update's outcome, after the node restarted with it: data.command_id, data.sha256, data.boots
    "config.applied": Priority.AUDIT,
    "config.rolled_back": Priority.AUDIT,  # data.command_id, data.reason, data.boots
    # a start on a pushed config: its receipt from the hub is what confirms the trial can reach the hub
    "config.trial": Priority.AUDIT,  # data.command_id, data.boots, data.sha256
    "detection.person": Priority.DETECTION,
    "detection.vehicle": Priority.DETECTION,
    "detection.loitering": Priority.DETECTION,
    "node.fault": Priority.ALARM,
    "node.offline": Priority.ALARM,  # raised by the hub itself, never by a node
    # the hub's one incident for many nodes gone silent together (design.md), node = HUB_NODE,
    # data.nodes = the first ones; each node's own node.offline joins it instead of alarming alone
    "nodes.offline": Priority.ALARM,
}

HUB_NODE = "hub"  # the node id of the hub's own incidents; no node may be registered under it
RAISED_BY_HUB: tuple[str, ...] = ("node.offline", "nodes.offline")

# Kinds the hub turns into an alarm that staff must work, loudest first.
ALARM_KINDS: tuple[str, ...] = (
    "alarm.pressed", "door.forced", "tamper.opened", "tamper.camera", "door.held_open",
    "door.fire_release", "door.lockout", "nodes.offline", "node.offline", "node.fault", "alarm.test",
    "detection.loitering",
)


def priority_of(kind: str) -> Priority:
    return EVENT_KINDS.get(kind, Priority.TELEMETRY)


# ---------------------------------------------------------------------------------------------
# Payloads
# ---------------------------------------------------------------------------------------------
class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


class NodeStatus(_Payload):
    state: Literal["online", "offline"]
    kind: str | None = None
    version: str | None = None
    ts: AwareDatetime | None = None


class HubStatus(_Payload):
    state: Literal["online", "offline"]
    ts: AwareDatetime | None = None


class Event(_Payload):
    """A thing that happened at a node. ``id`` is made on the node; the hub stores by it."""

    model_config = ConfigDict(extra="allow")  # a newer node may add fields; the hub keeps them

    id: uuid.UUID
    node: str = Field(pattern=NODE_ID_PATTERN)
    kind: str = Field(min_length=3, max_length=64, pattern=r"^[a-z_]+\.[a-z_.]+$")
    ts: AwareDatetime
    data: dict[str, Any] = Field(default_factory=dict)
    snapshot: bool = False
    clock_synced: bool | None = None

    @classmethod
    def make(cls, node: str, kind: str, data: dict[str, Any] | None = None, *,
             snapshot: bool = False, ts: datetime | None = None,
             clock_synced: bool | None = None) -> Event:
        return cls(id=uuid.uuid4(), node=node, kind=kind, ts=ts or utcnow(), data=data or {},
                   snapshot=snapshot, clock_synced=clock_synced)

    @property
    def known_kind(self) -> bool:
        return self.kind in EVENT_KINDS


class Heartbeat(_Payload):
    model_config = ConfigDict(extra="allow")
    ts: AwareDatetime
    uptime_s: float = Field(ge=0)
    outbox_depth: int = Field(ge=0)
    outbox_bytes: int | None = Field(default=None, ge=0)
    evicted: int | None = Field(default=None, ge=0)
    dropped: int | None = Field(default=None, ge=0)  # alarms the outbox could not keep and sent from memory
    cpu_temp_c: float | None = None
    fps: float | None = None
    disk_free_bytes: int | None = None


class Receipt(_Payload):
    """The hub's end-to-end acknowledgement, sent after its commit."""

    ids: list[str] = Field(default_factory=list)  # stored events (or already stored: a duplicate)
    snapshots: list[str] = Field(default_factory=list)  # event ids whose snapshot is stored
    clips: list[str] = Field(default_factory=list)  # "<event id>/<n>" burst frames stored
    rejected: list[RejectedItem] = Field(default_factory=list)


class RejectedItem(_Payload):
    id: str
    reason: str


Receipt.model_rebuild()

COMMAND_NAMES = ("alarm.ack", "siren.set", "door.unlock", "access.enrol", "access.revoke",
                 "access.sync", "config.update", "snapshot.request",
                 # live view and talk-back (docs/live-view.md): args {"session", "sdp", "talk"} → reply data
                 # {"sdp": answer}; live.keepalive args {"sessions": [...]}; live.stop args {"session"}
                 "live.start", "live.stop", "live.keepalive")
LIVE_START_TTL = timedelta(seconds=30)  # an SDP offer is useless once the browser has given up on it
ALARM_STAGES = ("received", "acknowledged", "dispatched", "on_scene", "resolved")
UNLOCK_MAX_TTL = timedelta(seconds=10)
COMMAND_MAX_TTL = timedelta(minutes=10)


class Command(_Payload):
    id: str = Field(min_length=1, max_length=64)
    node: str = Field(pattern=NODE_ID_PATTERN)
    name: str
    args: dict[str, Any] = Field(default_factory=dict)
    operator: str | None = None
    nonce: str = Field(min_length=8, max_length=64)
    issued_at: AwareDatetime
    expires_at: AwareDatetime
    sig: str = ""

    @field_validator("name")
    @classmethod
    def _known_name(cls, v: str) -> str:
        if v not in COMMAND_NAMES:
            raise ValueError(f"unknown command {v!r}")
        return v

    def signing_bytes(self) -> bytes:
        body = self.model_dump(mode="json", exclude={"sig"})
        return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    def signed(self, key: bytes) -> Command:
        sig = hmac.new(key, self.signing_bytes(), hashlib.sha256).hexdigest()
        return self.model_copy(update={"sig": sig})

    def signature_ok(self, key: bytes) -> bool:
        expected = hmac.new(key, self.signing_bytes(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, self.sig)

    @classmethod
    def make(cls, node: str, name: str, args: dict[str, Any] | None = None, *,
             operator: str | None = None, ttl: timedelta | None = None,
             now: datetime | None = None) -> Command:
        now = now or utcnow()
        ttl = ttl or (UNLOCK_MAX_TTL if name == "door.unlock" else COMMAND_MAX_TTL)
        return cls(id=new_id(), node=node, name=name, args=args or {}, operator=operator,
                   nonce=uuid.uuid4().hex, issued_at=now, expires_at=now + ttl)

    def max_ttl(self) -> timedelta:
        return UNLOCK_MAX_TTL if self.name == "door.unlock" else COMMAND_MAX_TTL


class Reply(_Payload):
    command_id: str
    ok: bool
    detail: str = ""
    data: dict[str, Any] = Field(default_factory=dict)
