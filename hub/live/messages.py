"""The hub→browser stream (WebSocket ``/api/live``): one model per message ``type``.

This is the console's contract, as the MQTT one (edge/protocol.py) is the nodes'. Producers build a
message through its model and hand ``.out()`` to the fan-out, so a misspelt key or a missing field
fails where it is made, not in a browser. ``contract_schema()`` is both contracts as JSON Schema; it
is committed as ``hub/web/contract.schema.json`` for the console (tests/contract/test_contract.py keeps the
file in sync; ``python -m hub.live.messages > hub/web/contract.schema.json`` writes it again).

The stream is a discriminated union on ``type`` (``LiveMessage``): each message is a small flat
model with a ``Literal`` type, which pydantic dispatches on directly. Nested rows (an event, an
alarm) stay open dicts with their ids declared: they are the store's rows, typed by the HTTP API.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from edge.protocol import (
    COMMAND_ARGS,
    EVENT_DATA,
    REPLY_DATA,
    Command,
    Event,
    Heartbeat,
    HubStatus,
    NodeStatus,
    Receipt,
    Reply,
)


class _Live(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str

    def out(self) -> dict[str, Any]:
        """The message for the fan-out: ``type`` and the fields that were set (values as given)."""
        return {"type": self.type, **self.model_dump(exclude_unset=True, exclude={"type"})}


class AlarmRow(BaseModel):
    """An alarm as the console shows it (the store's row; only ``id`` is always there)."""

    model_config = ConfigDict(extra="allow")
    id: str


class EventRow(BaseModel):
    """An event as stored (``data`` is its kind's model in edge/protocol.py EVENT_DATA)."""

    model_config = ConfigDict(extra="allow")
    id: str
    node: str
    kind: str


class Hello(_Live):
    type: Literal["hello"] = "hello"
    version: str


class NodeState(_Live):
    type: Literal["node"] = "node"
    node: str
    state: str  # online | offline (and what the fleet adds)


class EventMessage(_Live):
    type: Literal["event"] = "event"
    cursor: int | None = None  # the event's sequence number: resume /api/live?after= from it
    event: EventRow | dict[str, Any]
    alarm: AlarmRow | dict[str, Any] | None = None  # the alarm it raised or joined
    replay: bool | None = None  # sent again on (re)connect, not new


class EventsSummary(_Live):
    """Many quiet events of one node in one commit (a backlog draining), in place of each."""

    type: Literal["events"] = "events"
    node: str
    count: int = Field(ge=1)
    cursor: int


class SnapshotStored(_Live):
    type: Literal["snapshot"] = "snapshot"
    event_id: str
    node: str


class CommandReply(_Live):
    type: Literal["reply"] = "reply"
    node: str
    command_id: str
    name: str
    ok: bool
    detail: str = ""


class EnrolProgress(_Live):
    """A door's ``access.enrol_progress`` event, for the community office screen that started the enrolment
    (it matches ``command_id``): place → lift → place → done, or the reader's error."""

    type: Literal["enrol"] = "enrol"
    node: str
    command_id: str
    step: Literal["place", "lift", "done", "error"]
    tenant_id: str | None = None
    n: int | None = None
    scans: int | None = None
    slot: int | None = None
    reason: str | None = None
    detail: str | None = None
    at: str | None = None  # the node's time of the step (ISO-8601)


class AlarmChanged(_Live):
    type: Literal["alarm"] = "alarm"
    alarm: AlarmRow | dict[str, Any]
    escalated: bool | None = None


class NotifyFailed(_Live):
    """No channel reached these recipients of a notice (hub/notify): the operator should call them."""

    type: Literal["notify.failed"] = "notify.failed"
    alarm: str | None = None
    notice: str
    recipients: list[str]


class DispatchChanged(_Live):
    """An alarm's dispatches changed (offered, accepted, declined, expired, on scene, resolved, a photo):
    the operator's card follows each step (hub/web/dispatch.js). ``flag``: why the operator should look,
    e.g. ``reoffered:expired`` or ``nobody_left:declined``."""

    type: Literal["dispatch"] = "dispatch"
    alarm_id: str
    alarm: AlarmRow | dict[str, Any]
    dispatches: list[dict[str, Any]]
    flag: str | None = None


class TaskMessage(_Live):
    """To one responder's phone only (``/api/responder/live``): a task offered to them, or its new state."""

    type: Literal["task"] = "task"
    task: dict[str, Any]


class TaskRelay(_Live):
    """Between hub replicas only (PostgreSQL NOTIFY, hub/runtime/cluster.py): a task for one responder, handed
    by every replica to that responder's pages open on it as a ``TaskMessage``; never sent to a console."""

    type: Literal["task_for"] = "task_for"
    to: str
    task: dict[str, Any]


class SensitivePeriodChanged(_Live):
    """The sensitive periods in force changed (one began, ended or was cancelled: hub/sensitive): the consoles
    show a banner while ``active`` is not empty. ``active`` holds the periods as /api/sensitive-periods lists them."""

    type: Literal["sensitive"] = "sensitive"
    active: list[dict[str, Any]]


LIVE_MESSAGE_MODELS: tuple[type[_Live], ...] = (Hello, NodeState, EventMessage, EventsSummary, SnapshotStored,
                                                CommandReply, AlarmChanged, NotifyFailed, DispatchChanged, TaskMessage,
                                                TaskRelay, EnrolProgress, SensitivePeriodChanged)
LiveMessage = Annotated[
    Hello | NodeState | EventMessage | EventsSummary | SnapshotStored | CommandReply | AlarmChanged | NotifyFailed
    | DispatchChanged | TaskMessage | TaskRelay | EnrolProgress | SensitivePeriodChanged,
    Field(discriminator="type"),
]
LIVE_MESSAGE: TypeAdapter[Any] = TypeAdapter(LiveMessage)


def contract_schema() -> dict[str, Any]:
    """Both contracts as JSON Schema: the MQTT envelopes and each kind's/name's body, and /api/live."""
    return {
        "$comment": "generated by hub/live/messages.py contract_schema(); do not edit",
        "mqtt": {
            "envelopes": {m.__name__: m.model_json_schema() for m in
                          (Event, Command, Reply, Receipt, NodeStatus, HubStatus, Heartbeat)},
            "event_data": {kind: model.model_json_schema(by_alias=True) for kind, model in EVENT_DATA.items()},
            "command_args": {name: model.model_json_schema() for name, model in COMMAND_ARGS.items()},
            "reply_data": {name: model.model_json_schema() for name, model in REPLY_DATA.items()},
        },
        "live": LIVE_MESSAGE.json_schema(),
    }


def schema_text() -> str:
    return json.dumps(contract_schema(), indent=1, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(schema_text(), end="")
