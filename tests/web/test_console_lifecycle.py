"""Working an alarm from the console: stage order (409 on invalid steps), times per stage, and
escalation of unacknowledged alarms with an injected clock and a real local webhook receiver."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from hub.app import create_app
from hub.config import load_settings
from hub.store.schema import alarms

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


class Receiver:
    """A webhook endpoint on 127.0.0.1 that records what it is sent."""

    def __init__(self, status: int = 200) -> None:
        got: list[dict] = []
        self.got = got
        code = status

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                got.append({"path": self.path, "type": self.headers["Content-Type"], "body": json.loads(body)})
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture()
def console(tmp_path: Path, receiver: Receiver):
    settings = load_settings(data_dir=tmp_path, mqtt_enabled=False, escalate_after_s=60,
                             escalation_webhook=receiver.url)
    app = create_app(settings)
    state = app.state.hub
    state.auth.add_user("wang", "operator-pass-1", "operator")
    state.service.register_node("pole-01", grid="G01", place="Market")
    pushed: list[dict] = []
    state.escalator.publish = pushed.extend
    with TestClient(app) as client:
        token = client.post("/api/login", json={"username": "wang", "password": "operator-pass-1"}).json()["token"]
        client.headers["Authorization"] = f"Bearer {token}"
        client.cookies.clear()
        yield SimpleNamespace(state=state, client=client, pushed=pushed)


def _alarm(state, kind: str = "alarm.pressed", at: datetime = T0) -> str:
    aid = str(uuid.uuid4())
    with state.engine.begin() as conn:
        conn.execute(alarms.insert().values(id=aid, node="pole-01", kind=kind, state="open", count=1,
                                            node_ts=at, raised_at=at))
    return aid


def test_stages_in_order_with_times_and_409_on_invalid_steps(console) -> None:
    state, client = console.state, console.client
    aid = _alarm(state, at=datetime.now(UTC))
    assert client.post(f"/api/alarms/{aid}/dispatch", json={}).status_code == 422  # dispatch needs "to"
    assert client.post(f"/api/alarms/{aid}/resolve", json={"outcome": "maybe"}).status_code == 422
    r = client.post(f"/api/alarms/{aid}/ack", json={})
    assert r.status_code == 200 and r.json()["state"] == "acknowledged" and r.json()["acked_at"]
    assert client.post(f"/api/alarms/{aid}/ack", json={}).status_code == 409
    r = client.post(f"/api/alarms/{aid}/dispatch", json={"to": "网格 G01 巡逻队"})
    assert r.status_code == 200 and r.json()["dispatched_to"] == "网格 G01 巡逻队"
    assert client.post(f"/api/alarms/{aid}/ack", json={}).status_code == 409  # no going back
    assert client.post(f"/api/alarms/{aid}/on_scene", json={}).json()["on_scene_at"]
    r = client.post(f"/api/alarms/{aid}/resolve", json={"outcome": "assisted", "note": "elderly man helped home"})
    body = r.json()
    assert r.status_code == 200 and body["state"] == "resolved" and body["outcome"] == "assisted"
    assert body["acked_at"] <= body["dispatched_at"] <= body["on_scene_at"] <= body["resolved_at"]
    for step in ("ack", "dispatch", "on_scene", "resolve"):
        r = client.post(f"/api/alarms/{aid}/{step}", json={"to": "x", "outcome": "other"})
        assert r.status_code == 409, step
    assert client.post("/api/alarms/nope/ack", json={}).status_code == 404
    assert client.get("/api/alarms").json() == []


def test_unacknowledged_alarm_escalates_once_with_webhook(console, receiver: Receiver) -> None:
    state, client, pushed = console.state, console.client, console.pushed
    esc = state.escalator
    late = _alarm(state, "alarm.pressed", T0)
    acked = _alarm(state, "tamper.opened", T0)
    test = _alarm(state, "alarm.test", T0)
    fresh = _alarm(state, "door.forced", T0 + timedelta(seconds=30))
    with state.engine.begin() as conn:
        conn.execute(alarms.update().where(alarms.c.id == acked).values(state="acknowledged", acked_at=T0))

    assert esc.check(T0 + timedelta(seconds=59)) == []
    out = esc.check(T0 + timedelta(seconds=60))
    assert [a["id"] for a in out] == [late]
    assert esc.check(T0 + timedelta(seconds=61)) == []  # once only
    out = esc.check(T0 + timedelta(seconds=95))
    assert [a["id"] for a in out] == [fresh]

    assert [g["body"]["alarm"]["id"] for g in receiver.got] == [late, fresh]
    first = receiver.got[0]
    assert first["path"] == "/hook" and first["type"] == "application/json"
    assert first["body"]["type"] == "alarm.escalated" and first["body"]["alarm"]["grid"] == "G01"
    assert [m["alarm"]["id"] for m in pushed] == [late, fresh] and all(m["escalated"] for m in pushed)

    listed = {a["id"]: a for a in client.get("/api/alarms").json()}
    assert listed[late]["escalated"] is True and listed[fresh]["escalated"] is True
    assert listed[acked]["escalated"] is False and listed[test]["escalated"] is False
    with state.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT alarm_id, webhook_status FROM alarm_escalations").all()
        audited = conn.exec_driver_sql("SELECT target FROM audit WHERE action = 'alarm.escalate'").all()
    assert dict(rows) == {late: 200, fresh: 200}
    assert {t for (t,) in audited} == {late, fresh}


def test_a_dead_webhook_does_not_stop_escalation(tmp_path: Path) -> None:
    from hub.transport.broker import free_port

    settings = load_settings(data_dir=tmp_path, mqtt_enabled=False,
                             escalation_webhook=f"http://127.0.0.1:{free_port()}/nobody")
    state = create_app(settings).state.hub
    state.service.register_node("pole-01")
    aid = _alarm(state, "alarm.pressed", T0)
    assert [a["id"] for a in state.escalator.check(T0 + timedelta(minutes=2))] == [aid]
    with state.engine.connect() as conn:
        status, error = conn.exec_driver_sql("SELECT webhook_status, webhook_error FROM alarm_escalations").one()
    assert status is None and error


def test_the_queue_puts_unacknowledged_first_escalated_first_then_loudest_then_oldest(console) -> None:
    """issue 17: an acknowledged alarm stayed above unacknowledged and escalated ones (sorted by kind first)."""
    state, client = console.state, console.client
    acked_press = _alarm(state, "alarm.pressed", T0)
    with state.engine.begin() as conn:
        conn.execute(alarms.update().where(alarms.c.id == acked_press).values(state="acknowledged", acked_at=T0))
    old_loiter = _alarm(state, "detection.loitering", T0)  # unacknowledged for long: it escalates
    tamper = _alarm(state, "tamper.opened", T0 + timedelta(seconds=50))
    press_new = _alarm(state, "alarm.pressed", T0 + timedelta(seconds=55))
    press_old = _alarm(state, "alarm.pressed", T0 + timedelta(seconds=40))
    assert [a["id"] for a in state.escalator.check(T0 + timedelta(seconds=70))] == [old_loiter]
    order = [a["id"] for a in client.get("/api/alarms").json()]
    assert order == [old_loiter, press_old, press_new, tamper, acked_press]


def test_resolving_needs_an_outcome_and_skipped_stages_stay_skipped(console) -> None:
    """issue 17: resolving an alarm nobody acknowledged stamped acked_at with the resolve time."""
    state, client = console.state, console.client
    aid = _alarm(state, at=datetime.now(UTC) - timedelta(seconds=217.8))
    assert client.post(f"/api/alarms/{aid}/resolve", json={}).status_code == 422  # no default outcome
    assert client.post(f"/api/alarms/{aid}/resolve", json={"outcome": None}).status_code == 422
    body = client.post(f"/api/alarms/{aid}/resolve", json={"outcome": "false_alarm"}).json()
    assert body["state"] == "resolved" and body["resolved_at"] and body["outcome"] == "false_alarm"
    assert body["acked_at"] is None and body["acked_by"] is None and body["dispatched_at"] is None
    assert body["skipped"] == ["acknowledged", "dispatched", "on_scene"]
    other = _alarm(state, at=datetime.now(UTC))
    body = client.post(f"/api/alarms/{other}/dispatch", json={"to": "G01"}).json()
    assert body["acked_at"] is None and body["dispatched_at"] and body["skipped"] == ["acknowledged"]
    assert client.get("/api/alarms").json()[0]["skipped"] == ["acknowledged"]
