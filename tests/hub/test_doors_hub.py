"""The hub's rental-block side on a real SQLite file: tenants, enrolments and template forwarding,
revoke, remote unlock, roles, and the audit log with its CSV export. MQTT is a fake here (the wire is
in test_e2e_door); replies are fed to ingest as a door would send them."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from edge.protocol import Command, Event, Reply, Topics, utcnow
from hub.app import create_app
from hub.config import load_settings
from hub.doors.service import csv_cell
from hub.ingest.writer import Incoming, Ingest
from hub.store.schema import commands, enrolments
from tests.fake_transport import FakeTransport

A, B, C = "door-b01-01", "door-b01-02", "door-b02-01"
_mid = iter(range(1, 1_000_000))


@pytest.fixture()
def hub(tmp_path: Path):
    fake = FakeTransport()
    app = create_app(load_settings(data_dir=tmp_path, mqtt_enabled=True, offline_grace_s=0), transport=fake)
    state = app.state.hub
    for user, role in (("li", "admin"), ("wang", "operator"), ("zhao", "installer")):
        state.auth.add_user(user, f"{user}-password-123", role)
    ingest: Ingest = state.ingest
    keys = {n: state.service.register_node(n, kind="rental_door", grid="G01") for n in (A, B, C)}
    state.service.register_node("pole-01", kind="alarm_post")
    with TestClient(app) as client:
        def login(user: str) -> dict[str, str]:
            r = client.post("/api/login", json={"username": user, "password": f"{user}-password-123"})
            return {"Authorization": f"Bearer {r.json()['token']}"}

        heads = {u: login(u) for u in ("li", "wang", "zhao")}
        client.headers.update(heads["li"])
        yield SimpleNamespace(state=state, ingest=ingest, fake=fake, client=client, heads=heads, keys=keys)


def feed(ingest: Ingest, topic: str, payload: bytes) -> None:
    ingest.handle_batch([Incoming(topic, payload, next(_mid), 1, utcnow())])


def sent(fake: FakeTransport, node: str, name: str | None = None) -> list[Command]:
    out = [Command.model_validate_json(p) for t, p in fake.published if t == Topics.commands(node)]
    return [c for c in out if name is None or c.name == name]


def setup_block(client: TestClient, heads) -> str:
    assert client.post("/api/doors/blocks", json={"id": "b01", "name": "Block 1", "units": ["101", "102"]},
                       headers=heads["zhao"]).status_code == 201
    assert client.post("/api/doors/blocks", json={"id": "b02"}).status_code == 201
    for node, block in ((A, "b01"), (B, "b01"), (C, "b02")):
        assert client.post("/api/doors", json={"node": node, "block": block}, headers=heads["zhao"]).status_code == 201
    now = datetime.now(UTC)
    r = client.post("/api/doors/tenants", headers=heads["wang"], json={
        "name": "Chen Jing", "phone": "13800000001", "block": "b01", "unit": "101",
        "lease_start": (now - timedelta(days=1)).isoformat(), "lease_end": (now + timedelta(days=90)).isoformat()})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_blocks_doors_and_tenants_are_checked(hub) -> None:
    client, heads = hub.client, hub.heads
    tid = setup_block(client, heads)
    assert [b["doors"] for b in client.get("/api/doors/blocks").json()] == [[A, B], [C]]
    r = client.post("/api/doors", json={"node": "pole-01", "block": "b01"})
    assert r.status_code == 409 and "not a rental_door" in r.json()["detail"]
    assert client.post("/api/doors", json={"node": "door-zz", "block": "b01"}).status_code == 404
    assert client.post("/api/doors", json={"node": A, "block": "b99"}).status_code == 404
    now = datetime.now(UTC).isoformat()
    bad = {"name": "X", "phone": "13800000002", "block": "b01", "lease_start": now, "lease_end": now}
    r = client.post("/api/doors/tenants", json=bad)
    assert r.status_code == 422 and r.json()["detail"]["errors"][0]["code"] == "lease_order"
    r = client.post("/api/doors/tenants", json={**bad, "lease_end": "2030-01-01T00:00:00"})  # a time, no zone
    assert r.status_code == 422 and r.json()["detail"]["errors"][0]["code"] == "zone_missing"
    r = client.post("/api/doors/tenants", json={**bad, "unit": "999", "lease_end": "2099-01-01T00:00:00+08:00"})
    assert r.status_code == 422 and r.json()["detail"]["errors"][0]["code"] == "unit_unknown"
    # a tenant of block 1 cannot be enrolled at block 2's door
    r = client.post(f"/api/doors/tenants/{tid}/enrol", json={"door": C})
    assert r.status_code == 409 and "b02" in r.json()["detail"]
    # roles: installers place doors, operators register tenants; not the other way round
    assert client.post("/api/doors/tenants", json=bad, headers=heads["zhao"]).status_code == 403
    assert client.post("/api/doors", json={"node": A, "block": "b01"}, headers=heads["wang"]).status_code == 403


def test_enrol_forwards_sealed_template_to_the_block_and_revoke_drops_it(hub) -> None:
    state, ingest, fake, client, heads, keys = hub.state, hub.ingest, hub.fake, hub.client, hub.heads, hub.keys
    tid = setup_block(client, heads)
    r = client.post(f"/api/doors/tenants/{tid}/enrol", json={"door": A}, headers=heads["wang"])
    assert r.status_code == 202 and r.json()["state"] == "pending"
    (cmd,) = sent(fake, A, "access.enrol")
    assert cmd.signature_ok(keys[A].encode()) and cmd.operator == "wang"
    assert cmd.args["tenant_id"] == tid and cmd.args["valid_until"] and cmd.args["version"] == 1
    assert "template_enc" not in cmd.args
    sealed = "UFQx" + "A" * 700  # opaque to the hub: only the block's doors can open it
    feed(ingest, Topics.replies(A), Reply(command_id=cmd.id, ok=True, detail="enrolled",
                                          data={"slot": 7, "tenant_id": tid, "template_enc": sealed}).to_bytes())
    rows = {e["door"]: e for e in client.get("/api/doors/enrolments", params={"tenant": tid}).json()}
    assert rows[A]["state"] == "enrolled" and rows[A]["slot"] == 7 and rows[A]["template_synced"] is True
    assert rows[B]["state"] == "pending" and rows[B]["source"] == "sync" and C not in rows
    (fwd,) = sent(fake, B, "access.enrol")
    assert fwd.args["template_enc"] == sealed and fwd.signature_ok(keys[B].encode())
    with state.engine.connect() as conn:
        stored = {r.id: r for r in conn.execute(select(commands)).all()}
    assert stored[fwd.id].args["template_enc"].startswith("(")  # the hub's copy of what it sent: no template
    assert stored[cmd.id].data["template_enc"].startswith("(")  # nor of what the door replied
    feed(ingest, Topics.replies(B), Reply(command_id=fwd.id, ok=True, data={"slot": 0}).to_bytes())
    assert {e["state"] for e in client.get("/api/doors/enrolments", params={"tenant": tid}).json()} == {"enrolled"}

    r = client.post(f"/api/doors/tenants/{tid}/revoke", json={}, headers=heads["wang"])
    assert r.status_code == 202 and r.json()["state"] == "revoked"
    revokes = {n: sent(fake, n, "access.revoke") for n in (A, B)}
    assert all(len(v) == 1 and v[0].args["tenant_id"] == tid for v in revokes.values())
    with state.engine.connect() as conn:
        assert conn.execute(select(enrolments.c.template_enc).where(
            enrolments.c.template_enc.is_not(None))).all() == []
    for n, (rc,) in revokes.items():
        feed(ingest, Topics.replies(n), Reply(command_id=rc.id, ok=True).to_bytes())
    assert {e["state"] for e in client.get("/api/doors/enrolments", params={"tenant": tid}).json()} == {"revoked"}
    assert client.post(f"/api/doors/tenants/{tid}/enrol", json={"door": A}).status_code == 409


def test_failed_enrolment_is_recorded_and_not_forwarded(hub) -> None:
    ingest, fake, client, heads = hub.ingest, hub.fake, hub.client, hub.heads
    tid = setup_block(client, heads)
    client.post(f"/api/doors/tenants/{tid}/enrol", json={"door": B})
    (cmd,) = sent(fake, B, "access.enrol")
    feed(ingest, Topics.replies(B), Reply(command_id=cmd.id, ok=False, detail="the two scans were not the same "
                                          "finger: try again", data={"reason": "mismatch"}).to_bytes())
    (row,) = client.get("/api/doors/enrolments", params={"tenant": tid}).json()
    assert row["state"] == "failed" and "try again" in row["detail"]
    assert sent(fake, A) == []


def test_remote_unlock_is_signed_short_lived_and_for_operators(hub) -> None:
    ingest, fake, client, heads, keys = hub.ingest, hub.fake, hub.client, hub.heads, hub.keys
    setup_block(client, heads)
    assert client.post(f"/api/doors/{A}/unlock", json={"operator": "zhao"}, headers=heads["zhao"]).status_code == 403
    assert client.post("/api/doors/pole-01/unlock", json={"operator": "wang"}).status_code == 404
    r = client.post(f"/api/doors/{A}/unlock", json={"operator": "ignored", "reason": "locked out"},
                    headers=heads["wang"])
    assert r.status_code == 202
    (cmd,) = sent(fake, A, "door.unlock")
    assert cmd.id == r.json()["command_id"] and cmd.operator == "wang"  # the logged-in user, not the body
    assert cmd.signature_ok(keys[A].encode()) and not cmd.signature_ok(keys[B].encode())
    assert cmd.expires_at - cmd.issued_at <= timedelta(seconds=10)
    feed(ingest, Topics.replies(A), Reply(command_id=cmd.id, ok=True, detail="released").to_bytes())
    assert client.get(f"/api/doors/commands/{cmd.id}").json()["ok"] is True


def test_audit_log_by_door_tenant_time_and_csv_escaping(hub) -> None:
    ingest, client, heads = hub.ingest, hub.client, hub.heads
    setup_block(client, heads)
    now = datetime.now(UTC)
    r = client.post("/api/doors/tenants", json={
        "name": "=cmd|' /C calc'!A0", "phone": "+8613800000003", "block": "b01", "unit": "102",
        "lease_start": now.isoformat(), "lease_end": (now + timedelta(days=30)).isoformat()})
    evil = r.json()["id"]
    granted = Event.make(A, "door.granted", {"slot": 3, "tenant_id": evil, "remote": False})
    denied = Event.make(B, "door.denied", {"reason": "@SUM(1+1)", "failures": 1})
    old = Event.make(A, "door.forced", {}, ts=now - timedelta(days=3))
    for ev in (granted, denied, old):
        feed(ingest, Topics.events(ev.node), ev.to_bytes())
    log = client.get("/api/doors/audit", params={"door": A}).json()
    assert {x["kind"] for x in log if x["source"] == "door"} == {"door.granted", "door.forced"}
    by_tenant = client.get("/api/doors/audit", params={"tenant": evil}).json()
    assert {(x["source"], x["kind"]) for x in by_tenant} == {("door", "door.granted"), ("staff", "tenant.add")}
    recent = client.get("/api/doors/audit", params={"since": (now - timedelta(days=1)).isoformat(),
                                                     "door": A}).json()
    assert "door.forced" not in {x["kind"] for x in recent}
    r = client.get("/api/doors/audit.csv")
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))
    cells = [v for row in rows for v in row.values() if v]
    assert all(c[0] not in "=+-@" for c in cells), [c for c in cells if c[0] in "=+-@"]
    assert any(c == "'=cmd|' /C calc'!A0" for c in cells)
    assert any(c == "failures=1; reason=@SUM(1+1)" for c in cells)  # not at the start: nothing to run


def test_csv_cell() -> None:
    assert [csv_cell(v) for v in ("=1+2", "+86", "-3", "@A1", "\tx", "plain", None, 5)] == \
        ["'=1+2", "'+86", "'-3", "'@A1", "'\tx", "plain", "", "5"]
