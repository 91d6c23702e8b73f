"""Response models of hub/api/routes.py: health, nodes, events and their pictures, alarms.

The rows are the store's (hub/store/schema.py) as ``jsonable`` writes them: times as ISO text,
``None`` for an empty column. Alarms come in three widths, by what the route adds to the row:
an action's answer (``AlarmOut``), one alarm (``+ escalated``), and the queue (``+ place, grid,
has_snapshot``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from edge.protocol import AlarmStage, Heartbeat
from hub.api.models import ApiModel, NodeStateName

AlarmState = Literal["open", "acknowledged", "dispatched", "on_scene", "resolved"]  # hub.alarms.service.STAGES
Outcome = Literal["assisted", "false_alarm", "crime", "test", "recovered", "other"]  # ... .OUTCOMES


class GbHealth(ApiModel):
    """City networking (GB/T 28181, hub/gb28181): the registration with the city platform and what went up."""

    state: Literal["unregistered", "registered", "refused", "offline"] = Field(
        description="refused: the city platform refused our credentials; offline: it stopped answering")
    since: str = Field(description="When the state last changed (ISO 8601)")
    last_error: str | None = Field(description="Why the state is not registered, in a sentence")
    transport: Literal["udp", "tcp"]
    registrations: int
    failures: int
    keepalives_sent: int
    keepalives_missed: int
    sessions: int = Field(description="Live-video sessions the city has open")
    alarms_sent: int = Field(description="Alarms the city platform took")
    alarms_failed: int = Field(description="Tries the platform did not take (retried from the store unless refused)")
    alarms_dropped: int = Field(description="Alarms given up: not taken within a day")
    alarms_resent: int = Field(description="Alarms sent from the store after the live path missed or failed them")


class BrokerHealth(ApiModel):
    """Whether the broker on this box may hold a connection for every node (hub/nodes/broker_headroom.py)."""

    open_files_limit: int = Field(description="The broker process's soft open-file limit (one per connection)")
    nodes: int = Field(description="Registered nodes (not removed)")
    needed: int = Field(description="Nodes + a fifth for growth + 100 for the broker's own files")
    enough: bool = Field(description="False: nodes past the limit cannot connect; raise LimitNOFILE")


class Health(ApiModel):
    status: Literal["ok"]
    version: str
    mqtt: Literal["connected", "disconnected"] | None = Field(description="None: the hub runs without MQTT")
    ingest_queue: int | None = Field(description="Messages waiting for the ingest writer; None without MQTT")
    replica: str
    leader: bool
    gb28181: GbHealth | None = Field(description="None: city networking is off (PINGAN_GB_UPSTREAM unset)")
    broker: BrokerHealth | None = Field(description=(
        "None: the broker is not on this box or its limits are unreadable (PINGAN_BROKER_DIR's pid file, or "
        "the one mosquitto process when PINGAN_MQTT_URL is loopback)"))


class NodeOut(ApiModel):
    """A node as registered and last heard of (its command-signing key never leaves the hub)."""

    id: str
    kind: str = Field(description="alarm_post, rental_door, or what an unregistered node says it is")
    place: str
    grid: str
    lat: float | None
    lon: float | None
    state: NodeStateName
    version: str | None
    last_seen: str | None
    heartbeat: Heartbeat | None = Field(description="The node's last heartbeat, as the contract declares it")
    created: str
    provisioned: bool = Field(description="Whether the hub holds a command-signing key for it")
    open_alarm: str | None = Field(description="The id of one of its alarms not yet resolved")


class EventCore(ApiModel):
    """What every answer about a stored event says (``EventOut``, the history's ``PastEvent``)."""

    id: str
    node: str
    kind: str
    ts: str = Field(description="The node's clock")
    received_at: str = Field(description="The hub's clock")
    data: dict[str, Any] = Field(description="The kind's body: its model is edge/protocol.py EVENT_DATA[kind]")


class EventOut(EventCore):
    seq: int = Field(description="The event's cursor: /api/events?after= and /api/live?since= resume from it")
    snapshot: bool
    delayed: bool
    clock_synced: bool | None


class ClipFrames(ApiModel):
    event_id: str
    frames: list[int]
    urls: list[str]


class AlarmOut(ApiModel):
    """An alarm row and the stages it went past undone (``skipped``); an action's answer."""

    id: str = Field(description="The id of the event that raised it")
    node: str
    kind: str
    state: AlarmState
    count: int = Field(description="Presses folded into it")
    last_press_at: str | None = Field(description="When the latest further press was folded into it (alarm.repeat)")
    node_ts: str
    raised_at: str
    acked_at: str | None
    acked_by: str | None
    dispatched_at: str | None
    dispatched_to: str | None
    on_scene_at: str | None
    resolved_at: str | None
    resolved_by: str | None
    outcome: Outcome | None
    note: str | None
    node_stage: AlarmStage | None = Field(description="The last stage the node confirmed showing")
    incident: str | None = Field(description="The outage incident (nodes.offline) this node.offline is part of")
    skipped: list[AlarmState]
    # only on an outage incident (kind nodes.offline), absent otherwise
    nodes: list[str] = Field(default_factory=list, description="Its nodes (at most 200); only on nodes.offline")
    nodes_back: int = Field(default=0, description="How many of them are back; only on nodes.offline")


class AlarmEscalated(AlarmOut):
    """One alarm, and whether it escalated (nobody acknowledged it in time)."""

    escalated: bool
    escalated_at: str | None


class AlarmListed(AlarmEscalated):
    """An alarm in the queue, with its node's place and whether its picture is stored."""

    place: str | None
    grid: str | None
    has_snapshot: bool
    rank: int = Field(description="The kind's place in the queue (0: the loudest); the queue's third sort key")
