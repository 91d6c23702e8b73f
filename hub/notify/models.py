"""What a notice says, who gets it, and the record each delivery leaves (hub/notify)."""

from __future__ import annotations

import json
import string
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

# Chinese names of the alarm kinds a responder is sent (robot and SMS texts are read on a phone in Chinese)
KIND_ZH = {"alarm.pressed": "求助报警", "alarm.test": "测试报警", "tamper.opened": "防拆报警",
           "node.offline": "设备离线", "nodes.offline": "多台设备离线", "door.forced": "门被强行打开",
           "door.held": "门长时间未关", "sensitive.report": "敏感时期日报"}


class Notice(BaseModel):
    """One message about one alarm (or a test), the same for every recipient and channel."""

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), max_length=36)
    alarm: str | None = Field(default=None, max_length=36, description="The alarm it is about")
    node: str = Field(default="", max_length=64)
    place: str = Field(default="", max_length=200)
    grid: str = Field(default="", max_length=32)
    kind: str = Field(default="", max_length=64, description="The alarm's kind, e.g. alarm.pressed")
    snapshot_url: str | None = Field(default=None, max_length=500)
    url: str | None = Field(default=None, max_length=500, description="Where the task opens on the phone")
    text: str = Field(default="", max_length=500, description="What happened, in a sentence")

    @property
    def kind_zh(self) -> str:
        return KIND_ZH.get(self.kind, self.kind or "通知")

    def fields(self) -> dict[str, str]:
        """The values message templates may use."""
        return {"kind": self.kind, "kind_zh": self.kind_zh, "node": self.node, "place": self.place,
                "grid": self.grid, "text": self.text, "url": self.url or "", "alarm": self.alarm or ""}

    def headline(self) -> str:
        where = " ".join(p for p in (self.place or self.node, f"（{self.grid}）" if self.grid else "") if p)
        return f"{self.kind_zh} {where}".strip()


@dataclass(frozen=True)
class Recipient:
    """A user the notice goes to, with what the channels need to reach them."""

    username: str
    phone: str | None = None


Status = Literal["sent", "failed", "skipped"]


class Delivery(BaseModel):
    """One channel tried for one recipient: the operator's record (table notify_deliveries)."""

    notice: str
    alarm: str | None
    recipient: str
    channel: str
    attempt: int = Field(description="1 for the first channel tried for this recipient")
    status: Status
    why: str | None = Field(default=None, description="Why it failed or was skipped")
    started_at: datetime
    finished_at: datetime
    duration_ms: int


def check_template(template: str, allowed: set[str]) -> str:
    """A str.format template using only ``allowed`` names (a bad one is a settings error, not a failed send)."""
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        raise ValueError(f"not a valid template ({exc}); write fields as {{name}} and braces as {{{{ }}}}") from None
    unknown = names - allowed
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}; use {sorted(allowed)}")
    return template


def check_json_template(template: str, allowed: set[str]) -> str:
    """A JSON object whose string values are templates over ``allowed``."""
    try:
        body = json.loads(template)
    except ValueError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise ValueError("must be a JSON object")
    for value in _strings(body):
        check_template(value, allowed)
    return template


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def fill_json_template(template: str, values: dict[str, str]) -> object:
    """The JSON body with each string value formatted; the values go in as data, never as JSON text."""
    def fill(value: object) -> object:
        if isinstance(value, str):
            return value.format(**values)
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fill(v) for v in value]
        return value

    return fill(json.loads(template))
