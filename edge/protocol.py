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
from typing import Any, Literal, NamedTuple, TypeVar, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

ROOT = "pingan/v1"
BodyT = TypeVar("BodyT", bound="_Body")  # a command's args or a reply's data, as its model
EventDataT = TypeVar("EventDataT", bound="EventData")
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

    # A node's channels, as topic filters under its base, with their QoS: what it publishes and what it
    # reads. The hub's subscriptions and the broker's ACL are built from these (nothing else spells them).
    NODE_PUBLISHES: tuple[tuple[str, int], ...] = (
        ("status", 1), ("events", 1), ("snapshots/+", 1), ("clips/+/+", 1), ("heartbeat", 0), ("replies", 1),
    )
    NODE_READS: tuple[str, ...] = ("commands", "receipts")
    ALL: str = f"{ROOT}/#"  # every topic of the contract (the hub's own broker user)
    SHARE_PREFIX = "$share"

    # Subscriptions the hub makes (node-to-hub traffic of every node).
    HUB_SUBSCRIPTIONS: tuple[tuple[str, int], ...] = tuple(
        (f"{ROOT}/nodes/+/{channel}", qos) for channel, qos in NODE_PUBLISHES)

    @classmethod
    def shared(cls, group: str, topic: str) -> str:
        """``topic`` as a shared subscription of ``group`` (one member of the group gets each message)."""
        return f"{cls.SHARE_PREFIX}/{group}/{topic}"

    @classmethod
    def channel(cls, topic: str) -> str | None:
        """The channel of a node topic (``"events"``, ``"clips"``…), None outside the contract."""
        parsed = cls.parse(topic)
        return parsed.channel if parsed else None

    @classmethod
    def node_acl(cls, user_pattern: str = "%u") -> str:
        """mosquitto ACL lines confining every node to its own topics (``%u``: the node's user = its id)."""
        base = f"{ROOT}/nodes/{user_pattern}"
        return "\n".join([*(f"pattern write {base}/{channel}" for channel, _ in cls.NODE_PUBLISHES),
                          *(f"pattern read {base}/{channel}" for channel in cls.NODE_READS),
                          f"pattern read {cls.HUB_STATUS}"]) + "\n"

    @classmethod
    def hub_acl(cls, user: str) -> str:
        """mosquitto ACL lines for a hub replica's user: everything under the root, and shared
        subscriptions of any group (the group is a hub setting, ``share_group``)."""
        return f"user {user}\ntopic readwrite {cls.ALL}\ntopic read {cls.shared('+', cls.ALL)}\n"

    @classmethod
    def hub_subscriptions(cls, share_group: str | None = None) -> list[tuple[str, int]]:
        """What one hub process subscribes to. With replicas (``share_group``), node-to-hub traffic goes
        through ``$share/<group>/...`` so each message reaches one replica; node status stays
        non-shared (a retained message is not delivered on a shared subscription, and every replica
        keeps the same view), and the replicas also read the hub's own status, to correct a dead
        replica's last will while others still serve."""
        if not share_group:
            return list(cls.HUB_SUBSCRIPTIONS)
        out = [(topic, qos) if channel == "status" else (cls.shared(share_group, topic), qos)
               for (channel, _), (topic, qos) in zip(cls.NODE_PUBLISHES, cls.HUB_SUBSCRIPTIONS, strict=True)]
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
    # a door enrolling a finger, step by step (data.command_id, data.step: place | lift | done | error)
    "access.enrol_progress": Priority.AUDIT,
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
    # a self-test's outcome (docs/selftest.md): data.checks = [{name, status, value, limit, detail}]
    "selftest.result": Priority.AUDIT,
    # the self-test's uplink probe (docs/selftest.md): its receipt is the round trip and carries the hub's
    # clock; the hub receipts it without storing it (no history, no alarm, nothing in the event lists)
    "selftest.probe": Priority.TELEMETRY,
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

    def typed_data(self) -> EventData | None:
        """``data`` as its kind's model (None for an unknown kind); raises ValidationError if it does not fit."""
        model = event_data_model(self.kind)
        return None if model is None else model.model_validate(self.data)

    def data_as(self, model: type[EventDataT]) -> EventDataT:
        """``data`` as ``model``, which must be this kind's registered model (ingest has already refused data
        that does not fit, so a reader of a stored event gets its fields typed instead of ``.get()``)."""
        if event_data_model(self.kind) is not model:
            raise TypeError(f"{self.kind} carries {event_data_model(self.kind)}, not {model.__name__}")
        return model.model_validate(self.data)


class Heartbeat(_Payload):
    """Every field a node sends is declared here. Undeclared ones are dropped, not kept (``extra="ignore"``):
    drift cannot hide in the model (a field a node adds without declaring it never reaches the hub),
    while a newer node's heartbeat still counts as one (``forbid`` would make the hub refuse it, and the
    node would look silent)."""

    model_config = ConfigDict(extra="ignore")
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
    clips: list[str] = Field(default_factory=list)  # clip_ref(): "<event id>/<n>" burst frames stored
    rejected: list[RejectedItem] = Field(default_factory=list)
    # the hub's clock when it sent this receipt; only in a receipt that answers a ``selftest.probe``
    # (a node that sends probes knows the field; an older node never gets it), for the node's clock skew
    hub_time: AwareDatetime | None = None


def clip_ref(event_id: str, n: int) -> str:
    """How a receipt names one stored burst frame: ``"<event id>/<n>"`` (``Receipt.clips``)."""
    return f"{event_id}/{n}"


class RejectedItem(_Payload):
    id: str
    reason: str


Receipt.model_rebuild()

COMMAND_NAMES = ("alarm.ack", "siren.set", "door.unlock", "access.enrol", "access.revoke",
                 "access.sync", "config.update", "snapshot.request",
                 # live view and talk-back (docs/live-view.md): args {"session", "sdp", "talk"} → reply data
                 # {"sdp": answer}; live.keepalive args {"sessions": [...]}; live.stop args {"session"}
                 "live.start", "live.stop", "live.keepalive",
                 # run the node's self-test now (docs/selftest.md): args {"checks": [...] or absent = all}
                 "selftest.run")
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

    def typed_args(self) -> _Body:
        """``args`` as this command's model; raises ValidationError if they do not fit. The envelope keeps
        the dict it was signed with (see the registries below for why)."""
        model = command_args_model(self.name)
        if model is None:  # unreachable: ``name`` is checked against COMMAND_NAMES
            raise ValueError(f"unknown command {self.name!r}")
        return model.model_validate(self.args)

    def args_as(self, model: type[BodyT]) -> BodyT:
        """``args`` as ``model``, which must be this command's registered model: a handler names the model it
        expects and gets it typed (the dispatcher has already refused args that do not fit)."""
        if command_args_model(self.name) is not model:
            raise TypeError(f"{self.name} carries {command_args_model(self.name)}, not {model.__name__}")
        return model.model_validate(self.args)


class Reply(_Payload):
    command_id: str
    ok: bool
    detail: str = ""
    data: dict[str, Any] = Field(default_factory=dict)

    def data_as(self, model: type[BodyT]) -> BodyT:
        """``data`` as the reply model of the command it answers (``REPLY_DATA``); raises ValidationError."""
        return model.model_validate(self.data)


# ---------------------------------------------------------------------------------------------
# Typed bodies: each event kind's ``data``, each command's ``args``, each reply's ``data``
# ---------------------------------------------------------------------------------------------
# Why registries (name → model) and not a discriminated union on the envelope:
#
# * ``Command`` is signed over its JSON exactly as sent (``signing_bytes``). Parsing ``args`` into a
#   model on the envelope would re-dump it with defaults filled in and break every signature made by
#   an older hub; so the envelope keeps the dict it was signed with and ``Command.typed_args()``
#   validates it against ``COMMAND_ARGS[name]``.
# * ``Event`` must still parse when its kind is unknown (a newer node's: the hub keeps it in
#   quarantine, design.md), which a closed union cannot; so ``Event.kind`` stays a string, and
#   ``Event.typed_data()`` validates ``data`` for a known kind against ``EVENT_DATA[kind]``.
# * The keys of both registries are ``Literal`` types (``EventKind``, ``CommandName``), checked
#   against ``EVENT_KINDS`` and ``COMMAND_NAMES`` at import, so a kind cannot exist without a model.
#
# Unknown FIELDS are allowed in event data, command args and reply data (``extra="allow"``) and kept
# as they came: a newer node or hub may add optional fields without a version bump (the contract's
# rule), every event carries the node's location fields (``place``, ``grid``, ``lat``, ``lon``,
# merged in by ``edge/roles/base.py``), and a command's extra args are covered by its signature.
# What is declared is type-checked: a wrong type or a missing required field is refused.

class _Body(BaseModel):
    """An event's data, a command's args or a reply's data: declared fields typed, more allowed."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    def dump(self) -> dict[str, Any]:
        """The JSON-ready dict, only the fields that were set (what a sender would put on the wire)."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


# --- event data ------------------------------------------------------------------------------
class EventData(_Body):
    """Fields every node event carries: where the node stands (from its config)."""

    place: str | None = None
    grid: str | None = None
    lat: float | None = None
    lon: float | None = None


class AlarmPressedData(EventData):
    count: int = Field(default=1, ge=1)
    burst_frames: int | None = Field(default=None, ge=0)


class AlarmRepeatData(EventData):
    alarm_id: str = Field(min_length=1, max_length=64)  # the open alarm's event id
    count: int = Field(ge=1)


class AlarmTestData(EventData):
    detail: str | None = None


class TamperData(EventData):
    """tamper.opened / tamper.closed (the enclosure)."""

    detail: str | None = None


class TamperCameraData(EventData):
    reason: str | None = None  # covered | turned | defocused | feed_lost
    detail: str | None = None
    lost_s: float | None = None
    duration_s: float | None = None
    similarity: float | None = None
    sharpness_ratio: float | None = None


class DoorGrantedData(EventData):
    remote: bool = False
    slot: int | None = None
    tenant_id: str | None = None
    score: int | None = None
    operator: str | None = None
    command_id: str | None = None


class DoorDeniedData(EventData):
    reason: str | None = None
    failures: int | None = Field(default=None, ge=0)
    slot: int | None = None
    tenant_id: str | None = None


class DoorLockoutData(EventData):
    failures: int | None = Field(default=None, ge=0)
    lockout_s: float | None = Field(default=None, ge=0)


class DoorDetailData(EventData):
    """door.forced."""

    detail: str | None = None


class DoorHeldOpenData(EventData):
    open_s: float | None = Field(default=None, ge=0)


class DoorFireReleaseData(EventData):
    active: bool | None = None
    detail: str | None = None


class CommandRefusedData(EventData):
    command_id: str
    reason: str
    name: str | None = None
    operator: str | None = None


class EnrolProgressData(EventData):
    """access.enrol_progress: what the reader asks of the tenant during an ``access.enrol``, so the
    community office sees it live. ``step`` is ``place`` (scan ``n`` of ``scans``), ``lift`` (between
    scans), ``done`` (stored in ``slot``) or ``error`` (``reason`` from the reader: timeout, poor_image,
    mismatch, hardware; ``detail`` in words)."""

    command_id: str = Field(min_length=1, max_length=64)
    tenant_id: str | None = None
    step: Literal["place", "lift", "done", "error"]
    n: int | None = Field(default=None, ge=1)
    scans: int | None = Field(default=None, ge=1)
    slot: int | None = Field(default=None, ge=0)
    reason: str | None = None
    detail: str | None = None


class ConfigOutcomeData(EventData):
    """config.trial, config.applied, config.rolled_back (with ``reason``)."""

    command_id: str | None = None
    boots: int | None = Field(default=None, ge=0)
    sha256: str | None = None
    reason: str | None = None


class DetectionData(EventData):
    """detection.person / .vehicle / .loitering (``limit_s`` for loitering)."""

    track_id: int | None = None
    class_: str | None = Field(default=None, alias="class")
    score: float | None = None
    zone: str | None = None
    dwell_s: float | None = None
    box: list[float] | None = None
    limit_s: float | None = None


class NodeFaultData(EventData):
    """A node's fault, or one the hub raises for it (``raised_by: "hub"``, ``reason``).
    ``severity: "info"`` is a note that raises no alarm."""

    fault: str | None = None
    severity: Literal["info", "warning", "error"] | None = None
    detail: str | None = None
    reason: str | None = None
    raised_by: Literal["hub"] | None = None
    event_id: str | None = None


class NodeOfflineData(EventData):
    """Raised by the hub only."""

    last_seen: AwareDatetime | None = None
    raised_by: Literal["hub"] = "hub"


class NodesOfflineData(EventData):
    """The hub's one incident for many silent nodes."""

    going_silent: int = Field(ge=0)
    raised_by: Literal["hub"] = "hub"


SelftestStatus = Literal["pass", "fail", "skipped"]


class SelftestCheck(_Body):
    """One check of a self-test: what was measured against which limit (both may be absent)."""

    name: str = Field(min_length=1, max_length=40)
    status: SelftestStatus
    value: float | str | None = None
    limit: float | str | None = None
    unit: str | None = None
    detail: str = Field(default="", max_length=300)


class SelftestResultData(EventData):
    """A self-test's outcome: ``ok`` is false when any check failed (skipped ones do not count)."""

    ok: bool
    trigger: Literal["schedule", "command", "boot", "retry"] = "schedule"  # retry: a failed scheduled run, again
    command_id: str | None = None
    duration_s: float = Field(ge=0)
    checks: list[SelftestCheck] = Field(default_factory=list)
    # a failed scheduled run the node will try again (its failed checks) at this time: the hub raises
    # node.fault only if that retry fails too (2N's practice: a retry after 10 minutes; docs/selftest.md)
    retry_at: datetime | None = None


class SelftestProbeData(EventData):
    """The uplink probe: what counts is its receipt (the round trip) and the receipt's ``hub_time`` (the skew)."""

    sent_at: AwareDatetime | None = None  # the node's clock when sent (the hub may log the transit)


EventKind = Literal[
    "alarm.pressed", "alarm.repeat", "alarm.test", "tamper.opened", "tamper.closed", "tamper.camera",
    "door.forced", "door.held_open", "door.fire_release", "door.lockout", "door.granted", "door.denied",
    "command.refused", "access.enrol_progress", "config.applied", "config.rolled_back", "config.trial",
    "detection.person", "detection.vehicle", "detection.loitering", "node.fault", "node.offline",
    "nodes.offline", "selftest.result", "selftest.probe",
]

EVENT_DATA: dict[EventKind, type[EventData]] = {
    "alarm.pressed": AlarmPressedData,
    "alarm.repeat": AlarmRepeatData,
    "alarm.test": AlarmTestData,
    "tamper.opened": TamperData,
    "tamper.closed": TamperData,
    "tamper.camera": TamperCameraData,
    "door.forced": DoorDetailData,
    "door.held_open": DoorHeldOpenData,
    "door.fire_release": DoorFireReleaseData,
    "door.lockout": DoorLockoutData,
    "door.granted": DoorGrantedData,
    "door.denied": DoorDeniedData,
    "command.refused": CommandRefusedData,
    "access.enrol_progress": EnrolProgressData,
    "config.applied": ConfigOutcomeData,
    "config.rolled_back": ConfigOutcomeData,
    "config.trial": ConfigOutcomeData,
    "detection.person": DetectionData,
    "detection.vehicle": DetectionData,
    "detection.loitering": DetectionData,
    "node.fault": NodeFaultData,
    "node.offline": NodeOfflineData,
    "nodes.offline": NodesOfflineData,
    "selftest.result": SelftestResultData,
    "selftest.probe": SelftestProbeData,
}


# --- command args ----------------------------------------------------------------------------
AlarmStage = Literal["received", "acknowledged", "dispatched", "on_scene", "resolved"]


class AlarmAckArgs(_Body):
    alarm_id: str | None = None  # the alarm's event id; none = the node's open alarm
    stage: AlarmStage = "acknowledged"


class SirenSetArgs(_Body):
    on: bool = False


class DoorUnlockArgs(_Body):
    reason: str = Field(default="", max_length=500)


class AccessEnrolArgs(_Body):
    tenant_id: str = Field(min_length=1)
    valid_from: str | None = None  # ISO-8601 (a date alone is its start, UTC)
    valid_until: str | None = None
    version: int = Field(default=0, ge=0)  # the door's access-list version
    slot: int | None = Field(default=None, ge=0)
    template_enc: str | None = None  # a template sealed for this door (sync from another door)


class AccessRevokeArgs(_Body):
    tenant_id: str | None = None
    slot: int | None = Field(default=None, ge=0)
    version: int = Field(default=0, ge=0)


class AccessEntry(_Body):
    slot: int = Field(ge=0)
    tenant_id: str = Field(min_length=1)
    valid_from: str | None = None
    valid_until: str | None = None


class AccessSyncArgs(_Body):
    version: int = Field(ge=0)
    entries: list[AccessEntry] = Field(default_factory=list)


class ConfigUpdateArgs(_Body):
    yaml: str  # the whole node config; its size and content are the node's to judge (edge/agent/updates.py)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class SnapshotRequestArgs(_Body):
    pass


class LiveStartArgs(_Body):
    session: str = Field(min_length=1, max_length=64)
    sdp: str  # the browser's SDP offer
    talk: bool = False
    ice_servers: list[dict[str, Any]] = Field(default_factory=list)


class LiveStopArgs(_Body):
    session: str = Field(min_length=1, max_length=64)


class LiveKeepaliveArgs(_Body):
    sessions: list[str] = Field(default_factory=list)


class SelftestRunArgs(_Body):
    checks: list[str] | None = None  # names to run (edge/selftest/checks.py); none = every check


CommandName = Literal["alarm.ack", "siren.set", "door.unlock", "access.enrol", "access.revoke", "access.sync",
                      "config.update", "snapshot.request", "live.start", "live.stop", "live.keepalive",
                      "selftest.run"]

COMMAND_ARGS: dict[CommandName, type[_Body]] = {
    "alarm.ack": AlarmAckArgs,
    "siren.set": SirenSetArgs,
    "door.unlock": DoorUnlockArgs,
    "access.enrol": AccessEnrolArgs,
    "access.revoke": AccessRevokeArgs,
    "access.sync": AccessSyncArgs,
    "config.update": ConfigUpdateArgs,
    "snapshot.request": SnapshotRequestArgs,
    "live.start": LiveStartArgs,
    "live.stop": LiveStopArgs,
    "live.keepalive": LiveKeepaliveArgs,
    "selftest.run": SelftestRunArgs,
}


# --- reply data (what a successful reply carries; failures carry ``detail`` and maybe data) ------
class ConfigUpdateReplyData(_Body):
    sha256: str | None = None
    trial_s: float | None = None
    max_boots: int | None = None


class LiveStartReplyData(_Body):
    sdp: str | None = None  # the node's SDP answer
    type: str | None = None  # the SDP's type ("answer")
    talk: bool | None = None  # whether the node took the operator's audio
    max_session_s: float | None = None  # the node ends the session after this long


class LiveKeepaliveReplyData(_Body):
    alive: list[str] = Field(default_factory=list)
    gone: dict[str, str] = Field(default_factory=dict)  # session → why it ended


class AccessReplyData(_Body):
    """access.enrol / revoke / sync."""

    slot: int | None = None  # enrol
    tenant_id: str | None = None
    synced: bool | None = None
    template_enc: str | None = None  # sealed for the block's other doors
    slots: list[int] | None = None  # revoke
    reader_deleted: Any = None  # revoke, sync: what the reader deleted
    version: int | None = None  # sync
    removed: Any = None


REPLY_DATA: dict[CommandName, type[_Body]] = {
    "config.update": ConfigUpdateReplyData,
    "live.start": LiveStartReplyData,
    "live.keepalive": LiveKeepaliveReplyData,
    "access.enrol": AccessReplyData,
    "access.revoke": AccessReplyData,
    "access.sync": AccessReplyData,
    "selftest.run": SelftestResultData,
}


def _check_registries() -> None:
    kinds, names = set(get_args(EventKind)), set(get_args(CommandName))
    if kinds != set(EVENT_KINDS) or kinds != set(EVENT_DATA):
        raise RuntimeError("EventKind, EVENT_KINDS and EVENT_DATA differ")
    if names != set(COMMAND_NAMES) or names != set(COMMAND_ARGS):
        raise RuntimeError("CommandName, COMMAND_NAMES and COMMAND_ARGS differ")
    if set(get_args(AlarmStage)) != set(ALARM_STAGES):
        raise RuntimeError("AlarmStage and ALARM_STAGES differ")


_check_registries()


def validation_reason(exc: ValidationError, prefix: str = "") -> str:
    """One line naming the first bad field, for a refusal or a negative receipt (≤ 200 characters)."""
    first = exc.errors()[0]
    where = ".".join(map(str, first["loc"]))
    return f"{prefix}{where + ': ' if where else ''}{first['msg']}"[:200]


def event_data_model(kind: str) -> type[EventData] | None:
    return next((m for k, m in EVENT_DATA.items() if k == kind), None)


def command_args_model(name: str) -> type[_Body] | None:
    return next((m for k, m in COMMAND_ARGS.items() if k == name), None)

