"""The hub's alarm events as GB/T 28181 Alarm notifies (``<Notify><CmdType>Alarm</CmdType>``).

Codes from GB/T 28181-2016 A.2.4.6 / 9.4 (kept in 2022): AlarmPriority 1-4 (1 = first-degree, the
most urgent); AlarmMethod 1 telephone, 2 device, 3 SMS, 4 GPS, 5 video, 6 device fault, 7 other;
AlarmType (in ``<Info>``), per method — device (2): 1 video loss, 2 tamper (防拆), 3 disk full,
4 high temperature, 5 low temperature; video (5): 1 manual, 2 moving object, 3 left object, 4 object
removed, 5 tripwire, 6 intrusion, 7 wrong way, 8 loitering, 9 flow, 10 density, 11 video abnormal,
12 fast moving.

**The standard has no code for a one-key emergency button (一键报警).** A press is sent as
AlarmMethod 2 (device alarm, from the button's alarm-input channel, type 134) with priority 1, no
AlarmType (none of the device types fits, and sending "tamper" or "video loss" would be false), and
the description ``一键报警 one-key emergency button pressed``; the city's duty room reads it from the
description and the channel. Method 1 (telephone alarm) was not chosen: nobody has called yet.

==================  =======  ======  ====  ==============  ==================================
event kind          channel  method  type  priority        description
==================  =======  ======  ====  ==============  ==================================
alarm.pressed       134      2       —     1               一键报警 one-key emergency button
tamper.opened       134      2       2     2               设备防拆报警 enclosure opened
tamper.camera       132      2 / 5   1/11  2               feed_lost: video loss; else 视频异常
detection.loitering 132      5       8     3               徘徊检测 loitering
detection.person    132      5       6     3               入侵检测 intrusion (only in a zone)
door.forced         134      2       —     2               门被强行打开 door forced
door.held_open      134      2       —     4               门长时间未关 door held open
==================  =======  ======  ====  ==============  ==================================

Other kinds (tests, faults, offline) do not go up: the node's ON/OFF status in the catalog says
offline, and faults are the district's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from hub.gb28181.catalog import Channel, Role
from hub.gb28181.manscdp import Node


@dataclass(frozen=True)
class AlarmCode:
    role: Role
    method: int
    type: int | None
    priority: int
    description: str


def code_for(kind: str, data: dict[str, Any], node_kind: str) -> AlarmCode | None:
    """The GB code of an event, or None when this kind does not go to the city."""
    if kind == "alarm.pressed":
        return AlarmCode("button", 2, None, 1, "一键报警 one-key emergency button pressed")
    if kind == "tamper.opened":
        return AlarmCode("button", 2, 2, 2, "设备防拆报警 pole enclosure opened")
    if kind == "tamper.camera":
        reason = str(data.get("reason") or "")
        if reason == "feed_lost":
            return AlarmCode("camera", 2, 1, 2, "视频丢失 camera feed lost")
        return AlarmCode("camera", 5, 11, 2, f"视频异常 camera tampered ({reason or 'covered, turned or defocused'})")
    if kind == "detection.loitering":
        return AlarmCode("camera", 5, 8, 3, "徘徊检测 loitering")
    if kind == "detection.person" and data.get("zone"):
        return AlarmCode("camera", 5, 6, 3, f"入侵检测 intrusion in zone {data.get('zone')}")
    if kind == "door.forced" and node_kind == "rental_door":
        return AlarmCode("door", 2, None, 2, "门被强行打开 door forced open")
    if kind == "door.held_open" and node_kind == "rental_door":
        return AlarmCode("door", 2, None, 4, "门长时间未关 door held open")
    return None


def local_time(ts: str | datetime, tz: str) -> str:
    """GB times are local, without a zone: 2026-12-04T20:01:02."""
    t = datetime.fromisoformat(ts) if isinstance(ts, str) else ts
    return t.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%dT%H:%M:%S")


def alarm_body(channel: Channel, code: AlarmCode, *, sn: int, ts: str | datetime, tz: str) -> list[Node]:
    """The children of ``<Notify>`` (or of a subscription's NOTIFY body) for one alarm."""
    info: list[Node] = []
    if code.type is not None:
        info.append(("AlarmType", code.type))
    out: list[Node] = [("CmdType", "Alarm"), ("SN", sn), ("DeviceID", channel.gb_id),
                       ("AlarmPriority", code.priority), ("AlarmMethod", code.method),
                       ("AlarmTime", local_time(ts, tz)), ("AlarmDescription", f"{code.description} {channel.name}")]
    if channel.lon is not None and channel.lat is not None:
        out += [("Longitude", channel.lon), ("Latitude", channel.lat)]
    if info:
        out.append(("Info", info))
    return out
