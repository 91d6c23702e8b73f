"""Home Assistant MQTT discovery, published by the hub only (PINGAN_HA_DISCOVERY=true).

Poles appear as an alarm and a tamper binary sensor, doors as a read-only alarm sensor (never
a lock: opening a door stays a signed, audited operator command). Availability follows the
node's retained status topic; the states are retained topics the hub keeps in step with the
open alarms, so Home Assistant never reads the nodes' own topics.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from edge import __version__
from edge.protocol import Topics
from hub.store.schema import alarms, nodes

log = logging.getLogger(__name__)
Publish = Callable[[str, bytes, int, bool], Any]

ENTITIES: dict[str, dict[str, tuple[str, str, tuple[str, ...]]]] = {
    # node kind -> entity -> (name, device_class, alarm kinds that turn it ON)
    "alarm_post": {
        "alarm": ("One-key alarm", "safety", ("alarm.pressed",)),
        "tamper": ("Tamper", "tamper", ("tamper.opened", "tamper.camera")),
    },
    "rental_door": {
        "alarm": ("Door alarm", "safety", ("door.forced", "door.held_open", "door.fire_release", "door.lockout")),
        "tamper": ("Tamper", "tamper", ("tamper.opened",)),
    },
}


def discovery_payload(node: dict[str, Any], entity: str) -> dict[str, Any]:
    name, device_class, _ = ENTITIES[node["kind"]][entity]
    uid = f"pingan_{node['id'].replace('-', '_')}"
    return {
        "name": name,
        "unique_id": f"{uid}_{entity}",
        "device_class": device_class,
        "state_topic": Topics.ha_state(node["id"], entity),
        "payload_on": "ON",
        "payload_off": "OFF",
        "availability_topic": Topics.status(node["id"]),
        "availability_template": "{{ value_json.state }}",
        "payload_available": "online",
        "payload_not_available": "offline",
        "qos": 1,
        "device": {
            "identifiers": [uid],
            "name": f"{node['id']} {node.get('place') or ''}".strip(),
            "manufacturer": "Pingan",
            "model": node["kind"],
            "sw_version": __version__,
            "suggested_area": node.get("grid") or None,
        },
    }


class HomeAssistantBridge:
    def __init__(self, engine: Engine, publish: Publish) -> None:
        self.engine = engine
        self.publish = publish
        self._announced: set[str] = set()
        self._states: dict[str, str] = {}

    def sync(self) -> int:
        """Announce new nodes and publish changed states; returns how many messages went out."""
        sent = 0
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(select(nodes.c.id, nodes.c.kind, nodes.c.place,
                                                                  nodes.c.grid, nodes.c.state))]
            open_kinds: dict[str, set[str]] = {}
            for node, kind in conn.execute(select(alarms.c.node, alarms.c.kind).where(alarms.c.state != "resolved")):
                open_kinds.setdefault(node, set()).add(kind)
        for node in rows:
            if node["kind"] not in ENTITIES or node["state"] == "removed":
                continue
            for entity, (_, _, kinds) in ENTITIES[node["kind"]].items():
                key = f"{node['id']}/{entity}"
                if key not in self._announced:
                    payload = {k: v for k, v in discovery_payload(node, entity).items() if v is not None}
                    payload["device"] = {k: v for k, v in payload["device"].items() if v is not None}
                    self.publish(Topics.ha_discovery("binary_sensor", node["id"], entity),
                                 json.dumps(payload).encode(), 1, True)
                    self._announced.add(key)
                    sent += 1
                state = "ON" if open_kinds.get(node["id"], set()) & set(kinds) else "OFF"
                if self._states.get(key) != state:
                    self.publish(Topics.ha_state(node["id"], entity), state.encode(), 1, True)
                    self._states[key] = state
                    sent += 1
        return sent
