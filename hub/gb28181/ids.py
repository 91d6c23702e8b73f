"""GB/T 28181 20-digit IDs: the hub's, each node's and each channel's, and how they are made.

Layout (GB/T 28181-2016 Annex D / 2022 Annex E): ``CCCCCCCC II TTT SSSSSSS`` — 8-digit civil
(administrative division) code, 2-digit industry code, 3-digit type code, 7-digit serial.

The rule here: a node's stored ID is the ID of its *main* channel (a pole: its camera, type 132; a door:
its alarm input, type 134). Every other channel of that node keeps the node's civil code, industry and
serial and changes only the type digits, so the channels are derived, never stored, and two nodes can
never collide unless their main IDs do (the table's unique index forbids that). Made IDs take the prefix
(PINGAN_GB_CIVIL_CODE: 8 digits, or 10 with the industry code; default the first 10 digits of the hub's
own ID) and the lowest free serial from 0000001 upwards.
"""

from __future__ import annotations

import re

from hub.errors import HubError

GB_ID = re.compile(r"^[0-9]{20}$")
PREFIX = re.compile(r"^[0-9]{8}([0-9]{2})?$")
DEFAULT_INDUSTRY = "00"  # 社会治安路面接入 (public-security street access): the poles stand in the street

TYPE_CAMERA = "132"        # 网络摄像机 IPC: the pole's camera
TYPE_ALARM_INPUT = "134"   # 报警输入设备: the one-key button; a door's forced/held-open alarms
TYPE_ALARM_OUTPUT = "135"  # 报警输出设备: the pole's siren
TYPE_CENTRE = "200"        # 中心信令控制服务器: the hub itself (its PINGAN_GB_ID usually has it)

MAIN_TYPE = {"alarm_post": TYPE_CAMERA, "rental_door": TYPE_ALARM_INPUT}


class GbIdError(HubError, ValueError):
    """A GB ID that does not fit the layout or the node."""


def check_gb_id(value: str, *, kind: str | None = None) -> str:
    """The ID if it is 20 digits (and, given a node ``kind``, of that kind's main channel type)."""
    if not GB_ID.fullmatch(value):
        raise GbIdError(f"GB ID {value!r} must be 20 digits (8 civil code, 2 industry, 3 type, 7 serial), "
                        "e.g. 35020300001320000001")
    if kind is not None:
        want = MAIN_TYPE.get(kind)
        if want is not None and value[10:13] != want:
            raise GbIdError(f"GB ID {value}: a {kind} node's ID is its main channel's and needs type code {want} "
                            f"in digits 11-13 (it has {value[10:13]})")
    return value


def type_of(gb_id: str) -> str:
    return gb_id[10:13]


def civil_code(gb_id: str) -> str:
    return gb_id[:8]


def channel(main_id: str, type_code: str) -> str:
    """The node's channel of ``type_code``: the main ID with its type digits swapped."""
    return main_id[:10] + type_code + main_id[13:]


def prefix_of(setting: str | None, hub_id: str) -> str:
    """10 digits (civil code + industry) for made IDs."""
    if not setting:
        return hub_id[:10]
    return setting if len(setting) == 10 else setting + DEFAULT_INDUSTRY


def make_id(prefix10: str, type_code: str, taken_serials: set[str]) -> str:
    """The lowest free serial under ``prefix10`` (serials are shared by all types: channels derive from them)."""
    for n in range(1, 10_000_000):
        serial = f"{n:07d}"
        if serial not in taken_serials:
            return prefix10 + type_code + serial
    raise GbIdError(f"no serial left under prefix {prefix10}")
