"""schemathesis against the hub's own OpenAPI: whatever a client sends that fits (or nearly fits)
the schema, the hub answers without a server error, and every answer whose status the schema
documents matches it: its media type, and its body against the route's response model
(hub/api/models). Authenticated as an admin, so the requests reach the handlers rather than stopping
at the login check.

The store first holds one of each kind of row a route returns, made through the hub's own code (an
alarm acknowledged with the node's reply, its picture and burst, an escalated alarm, an outage
incident with its nodes, heartbeats, a block with a door, a tenant enrolled by the door, a config
push the node applied, a live session), so list routes answer with real rows and
``test_each_route_answers_a_real_row_as_documented`` asks every id route for a row that exists (the
fuzzer's own ids seldom do). A key a service returns that its model does not declare is a 500
(extra keys are forbidden), so both tests catch drift between the services and the schema.
"""

from __future__ import annotations

import os
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance
from sqlalchemy import select
from starlette.testclient import TestClient

from edge.protocol import Event, Heartbeat, Reply, Topics, utcnow
from hub.app import create_app
from hub.config import load_settings
from hub.ingest.writer import BatchResult, Incoming, Processor
from hub.nodes.config_push import push_config
from hub.sensitive.profile import DetectionProfile
from hub.store.schema import commands, live_sessions

_tmp = Path(tempfile.mkdtemp(prefix="pingan-openapi-"))
app = create_app(load_settings(data_dir=_tmp, mqtt_enabled=False, metrics_token="t", outage_min_nodes=2))
_state = app.state.hub
_state.auth.add_user("fuzz", "fuzz password 123", "admin")
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64 + b"\xff\xd9"
CONFIG = "node:\n  id: pole-01\n  kind: alarm_post\n  place: Market\nheartbeat_s: 5\n"
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def _feed(topic: str, payload: bytes, at_offset_s: float = 0) -> BatchResult:
    """One message through ingest's Processor, committed, as the writer thread would."""
    out = BatchResult()
    with _state.engine.begin() as conn:
        Processor(_state.settings).process(
            conn, Incoming(topic, payload, 1, 1, utcnow() + timedelta(seconds=at_offset_s)), out)
    return out


def _reply(node: str, command_id: str, data: dict[str, Any] | None = None) -> None:
    _feed(Topics.replies(node), Reply(command_id=command_id, ok=True, data=data or {}).to_bytes())


def _seed() -> dict[str, str]:
    """One row of each kind; returns the ids the id routes are asked for."""
    service, doors = _state.service, _state.doors
    for node in ("pole-01", "pole-02", "pole-03"):
        service.register_node(node, grid="G01", place=f"Lane {node[-1]}")
        _feed(Topics.heartbeat(node), Heartbeat(ts=utcnow(), uptime_s=12.5, outbox_depth=0, cpu_temp_c=48.0)
              .to_bytes())
    service.register_node("door-01", kind="rental_door", grid="G01")

    pressed = Event.make("pole-01", "alarm.pressed")
    _feed(Topics.events("pole-01"), pressed.to_bytes())
    _feed(Topics.snapshot("pole-01", str(pressed.id)), JPEG)
    for n in (0, 1):
        _feed(Topics.clip("pole-01", str(pressed.id), n), JPEG)
    service.advance(str(pressed.id), "acknowledged", "fuzz", note="on my way")
    ack = _last_command("pole-01", "alarm.ack")
    _reply("pole-01", ack, {"stage": "acknowledged"})

    tamper = Event.make("pole-02", "tamper.opened")
    _feed(Topics.events("pole-02"), tamper.to_bytes())
    _state.escalator.check(utcnow() + timedelta(hours=1))  # nobody acknowledged it: escalated

    doors.add_block("b1", name="Block 1", units_=["101", "102"], actor="fuzz")
    doors.add_door("door-01", "b1", name="Front door", actor="fuzz")
    tenant = doors.add_tenant(name="Li Lei", phone="13800000000", id_number="35020319900101123X", block="b1",
                              unit="101", lease_start=utcnow(), lease_end=utcnow() + timedelta(days=365),
                              actor="fuzz")
    enrolment = doors.enrol(tenant["id"], "door-01", "fuzz")
    _reply("door-01", enrolment["command_id"], {"slot": 3})
    doors.on_reply(enrolment["command_id"])
    granted = Event.make("door-01", "door.granted", {"slot": 3, "tenant_id": tenant["id"], "score": 120})
    _feed(Topics.events("door-01"), granted.to_bytes())

    pushed = push_config(service, "pole-01", CONFIG, "fuzz")
    _reply("pole-01", pushed["command_id"])
    _feed(Topics.events("pole-01"), Event.make("pole-01", "config.applied", {
        "command_id": pushed["command_id"], "boots": 1, "sha256": pushed["sha256"]}).to_bytes())

    with _state.engine.begin() as conn:
        conn.execute(live_sessions.insert().values(id="s" * 32, node="pole-01", username="fuzz", kind="live",
                                                   started=utcnow(), ended=utcnow(), duration_s=4.2,
                                                   end_reason="stopped"))
    # a sensitive period with its pushes (pole-01's config has no zones: skipped, said) and a daily report
    period = _state.periods.create(start=None, end=(utcnow() + timedelta(days=2)).isoformat(), grids=None,
                                   reason="fuzz", actor="fuzz", profile=DetectionProfile(loiter_s=20))
    _state.sensitive.tick(utcnow() + timedelta(days=1, seconds=1))

    with _state.engine.begin() as conn:  # the poles and the door fall silent together: one outage incident
        Processor(_state.settings).raise_offline(conn, utcnow() + timedelta(hours=2), BatchResult())
    return {"event_id": str(pressed.id), "alarm_id": str(pressed.id), "escalated_id": str(tamper.id),
            "tenant_id": tenant["id"], "command_id": enrolment["command_id"], "node": "pole-01",
            "period_id": period["id"]}


def _last_command(node: str, name: str) -> str:
    with _state.engine.connect() as conn:
        return str(conn.execute(select(commands.c.id).where(commands.c.node == node, commands.c.name == name)
                                .order_by(commands.c.issued_at.desc())).scalar())


IDS = _seed()
TOKEN = TestClient(app).post("/api/login", json={"username": "fuzz", "password": "fuzz password 123"}).json()["token"]
AUTH = {"Authorization": f"Bearer {TOKEN}"}
schema = schemathesis.openapi.from_asgi("/openapi.json", app)
EXAMPLES = int(os.environ.get("PINGAN_OPENAPI_EXAMPLES", "20"))  # ~20 s on 2 cores; CI may raise it


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_answers_are_as_documented(case) -> None:
    if case.path in ("/api/logout",):
        return  # would end the fuzzer's own session
    case.call_and_validate(headers=AUTH, checks=CHECKS)


# every id route, asked for a row that exists (the fuzzer's random ids mostly get a 404)
REAL = [
    ("GET", "/api/events/{event_id}/clips", {"event_id": IDS["event_id"]}),
    ("GET", "/api/events/{event_id}/snapshot.jpg", {"event_id": IDS["event_id"]}),
    ("GET", "/api/events/{event_id}/clips/{n}.jpg", {"event_id": IDS["event_id"], "n": 1}),
    ("GET", "/api/alarms/{alarm_id}", {"alarm_id": IDS["alarm_id"]}),
    ("GET", "/api/alarms/{alarm_id}", {"alarm_id": IDS["escalated_id"]}),
    ("GET", "/api/doors/tenants/{tenant_id}", {"tenant_id": IDS["tenant_id"]}),
    ("GET", "/api/doors/commands/{command_id}", {"command_id": IDS["command_id"]}),
    ("GET", "/api/nodes/{node}/config/updates", {"node": IDS["node"]}),
    ("GET", "/api/sensitive-periods/{period_id}", {"period_id": IDS["period_id"]}),
]


@pytest.mark.parametrize(("method", "path", "params"), REAL, ids=[f"{m} {p}" for m, p, _ in REAL])
def test_each_route_answers_a_real_row_as_documented(method: str, path: str, params: dict[str, Any]) -> None:
    response = schema[path][method].Case(path_parameters=params).call_and_validate(headers=AUTH, checks=CHECKS)
    assert response.status_code == 200, response.text


def test_the_seeded_rows_are_what_the_lists_return() -> None:
    """The lists the fuzzer reads hold the seeded kinds of row (else it validates empty lists)."""
    client = TestClient(app)
    alarms = client.get("/api/alarms?state=all", headers=AUTH).json()
    incident = next(a for a in alarms if a["kind"] == "nodes.offline")
    assert len(incident["nodes"]) >= 2 and "nodes_back" in incident
    assert all("nodes" not in a for a in alarms if a["kind"] != "nodes.offline")  # absent, not null
    assert any(a["escalated"] for a in alarms) and any(a["has_snapshot"] for a in alarms)
    assert any(a["node_stage"] == "acknowledged" for a in alarms)
    nodes = {n["id"]: n for n in client.get("/api/nodes", headers=AUTH).json()}
    assert nodes["pole-01"]["heartbeat"]["cpu_temp_c"] == 48.0 and nodes["pole-01"]["provisioned"]
    update = client.get("/api/nodes/pole-01/config/updates", headers=AUTH).json()[0]
    assert update["state"] == "applied" and update["boots"] == 1
    audit = client.get("/api/doors/audit", headers=AUTH).json()
    assert {"door", "staff"} <= {row["source"] for row in audit}
    enrolment = client.get("/api/doors/enrolments", headers=AUTH).json()[0]
    assert enrolment["state"] == "enrolled" and enrolment["slot"] == 3
    period = client.get(f"/api/sensitive-periods/{IDS['period_id']}", headers=AUTH).json()
    assert period["state"] == "active" and period["reports"] and period["pushes"][0]["state"] == "skipped"
