"""The hub's ingest rules and API on a real SQLite file (the MQTT side is in test_e2e/test_faults)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from edge.protocol import Event, Receipt, Topics, utcnow
from hub.app import create_app
from hub.config import load_settings
from hub.ingest.writer import Incoming, Ingest
from hub.transport.mqtt import Received
from tests.fake_transport import FakeTransport


@pytest.fixture()
def hub(tmp_path: Path):
    settings = load_settings(data_dir=tmp_path, mqtt_enabled=True, offline_after_s=5, offline_grace_s=0,
                             metrics_token=METRICS_TOKEN)
    fake = FakeTransport()  # no network: batches are fed by hand
    app = create_app(settings, transport=fake)
    state = app.state.hub
    state.auth.add_user("li", "correct horse battery", "admin")  # the on-duty staff member of these tests
    ingest: Ingest = state.ingest
    live: list[dict] = []
    ingest.notify = live.extend
    with TestClient(app) as client:
        token = client.post("/api/login", json={"username": "li", "password": "correct horse battery"}).json()["token"]
        client.headers["Authorization"] = f"Bearer {token}"
        yield SimpleNamespace(state=state, ingest=ingest, fake=fake, live=live, client=client)


METRICS_TOKEN = "scrape-token-for-tests"


def scrape(client: TestClient) -> str:
    return client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text


_mid = iter(range(1, 1_000_000))


def feed(ingest: Ingest, *messages: tuple[str, bytes]) -> None:
    ingest.handle_batch([Incoming(t, p, next(_mid), 1, utcnow()) for t, p in messages])


def receipts(fake: FakeTransport, node: str) -> list[Receipt]:
    return [Receipt.model_validate_json(p) for t, p in fake.published if t == Topics.receipts(node)]


def test_event_stored_once_and_receipted_after_commit(hub) -> None:
    ingest, fake, live, client = hub.ingest, hub.fake, hub.live, hub.client
    ev = Event.make("pole-01", "alarm.pressed", {"count": 1}, snapshot=True)
    feed(ingest, (Topics.events("pole-01"), ev.to_bytes()))
    feed(ingest, (Topics.events("pole-01"), ev.to_bytes()))  # a resend
    events = client.get("/api/events").json()
    assert [e["id"] for e in events] == [str(ev.id)]
    assert events[0]["ts"].endswith("+00:00")
    assert [r.ids for r in receipts(fake, "pole-01")] == [[str(ev.id)], [str(ev.id)]]
    assert len(fake.acked) == 2
    alarms = client.get("/api/alarms").json()
    assert alarms[0]["id"] == str(ev.id) and alarms[0]["state"] == "open"
    assert [m["type"] for m in live].count("event") == 1


def test_late_event_is_marked_delayed_with_its_node_time(hub) -> None:
    ingest, client = hub.ingest, hub.client
    old = Event.make("pole-01", "detection.person", ts=utcnow() - timedelta(minutes=5))
    feed(ingest, (Topics.events("pole-01"), old.to_bytes()))
    row = client.get("/api/events").json()[0]
    assert row["delayed"] is True and row["ts"] == old.ts.isoformat()


@pytest.mark.parametrize("payload, reason", [
    (b"{not json", "invalid event"),
    (b'{"id": "6b1f4a52-0000-4000-8000-000000000001", "node": "pole-01", "kind": 5, "ts": "x"}', "invalid event"),
    (json.dumps({"id": "6b1f4a52-0000-4000-8000-000000000002", "pad": "x" * 70000}).encode(), "oversized"),
    (Event.make("pole-02", "alarm.pressed").to_bytes(), "node mismatch"),
    (Event.make("pole-01", "node.offline").to_bytes(), "raised by the hub only"),
])
def test_bad_events_are_refused_with_a_negative_receipt(hub, payload, reason) -> None:
    ingest, fake, client = hub.ingest, hub.fake, hub.client
    feed(ingest, (Topics.events("pole-01"), payload))
    assert client.get("/api/events").json() == []
    rejected = [item for r in receipts(fake, "pole-01") for item in r.rejected]
    has_id = b"6b1f4a52" in payload or b'"id":"' in payload
    if has_id:
        assert len(rejected) == 1 and reason in rejected[0].reason
    assert len(fake.acked) == 1  # acked so the broker does not redeliver it forever
    metrics = scrape(client)
    assert "pingan_hub_rejected_total" in metrics


def test_unknown_kind_is_quarantined_not_dropped(hub) -> None:
    state, ingest, fake = hub.state, hub.ingest, hub.fake
    ev = Event.make("pole-01", "smoke.detected", {"ppm": 300})
    feed(ingest, (Topics.events("pole-01"), ev.to_bytes()))
    assert receipts(fake, "pole-01")[0].ids == [str(ev.id)]
    with state.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT reason FROM quarantine").all()
    assert rows == [("unknown kind smoke.detected",)]


def test_snapshot_before_or_after_event_and_keyed_by_topic_node(hub) -> None:
    ingest, fake, client = hub.ingest, hub.fake, hub.client
    ev = Event.make("pole-01", "alarm.pressed", snapshot=True)
    jpeg = b"\xff\xd8\xff\xe0fakejpeg"
    feed(ingest, (Topics.snapshot("pole-01", str(ev.id)), jpeg))  # the picture may come first
    feed(ingest, (Topics.events("pole-01"), ev.to_bytes()))
    r = client.get(f"/api/events/{ev.id}/snapshot.jpg")
    assert r.status_code == 200 and r.content == jpeg and r.headers["content-type"] == "image/jpeg"
    assert receipts(fake, "pole-01")[0].snapshots == [str(ev.id)]
    feed(ingest, (Topics.snapshot("pole-02", str(ev.id)), b"\xff\xd8other"))  # another node's topic
    assert client.get(f"/api/events/{ev.id}/snapshot.jpg").content == jpeg
    assert client.get("/api/events/00000000-0000-4000-8000-000000000000/snapshot.jpg").status_code == 404


def test_alarm_lifecycle_is_audited_and_checked(hub) -> None:
    state, ingest, fake, client = hub.state, hub.ingest, hub.fake, hub.client
    key = state.service.register_node("pole-01", grid="G01", place="Market")
    assert key
    ev = Event.make("pole-01", "alarm.pressed")
    feed(ingest, (Topics.events("pole-01"), ev.to_bytes()))
    aid = str(ev.id)
    assert client.post(f"/api/alarms/{aid}/resolve", json={"outcome": "nonsense"}).status_code == 422
    r = client.post(f"/api/alarms/{aid}/ack", json={"operator": "li"})
    assert r.status_code == 200 and r.json()["acked_by"] == "li"
    assert client.post(f"/api/alarms/{aid}/ack", json={}).status_code == 409
    assert client.post(f"/api/alarms/{aid}/dispatch", json={"to": "grid G01 team"}).json()["state"] == "dispatched"
    assert client.post(f"/api/alarms/{aid}/on_scene", json={}).json()["on_scene_at"]
    done = client.post(f"/api/alarms/{aid}/resolve", json={"outcome": "assisted", "note": "lost child"}).json()
    assert done["state"] == "resolved" and done["outcome"] == "assisted"
    assert client.get("/api/alarms").json() == []
    assert client.post("/api/alarms/nope/ack", json={}).status_code == 404
    sent = [json.loads(p) for t, p in fake.published if t == Topics.commands("pole-01")]
    assert [c["args"]["stage"] for c in sent] == ["acknowledged", "dispatched", "on_scene", "resolved"]
    assert all(c["sig"] and c["operator"] for c in sent)
    with state.engine.connect() as conn:
        actions = [a for (a,) in conn.exec_driver_sql(
            "SELECT action FROM audit WHERE action NOT IN ('user.add', 'login') ORDER BY seq")]
    assert actions == ["node.register", "alarm.acknowledged", "alarm.dispatched", "alarm.on_scene", "alarm.resolved"]


def test_alarm_ack_is_resent_until_the_node_replies(hub) -> None:
    state, ingest, fake, client = hub.state, hub.ingest, hub.fake, hub.client
    state.service.register_node("pole-01")
    ev = Event.make("pole-01", "alarm.pressed")
    feed(ingest, (Topics.events("pole-01"), ev.to_bytes()))
    client.post(f"/api/alarms/{ev.id}/ack", json={})
    first = [json.loads(p) for t, p in fake.published if t == Topics.commands("pole-01")]
    assert state.service.resend_unanswered(older_than_s=0) == 1
    cmds = [json.loads(p) for t, p in fake.published if t == Topics.commands("pole-01")]
    assert len(cmds) == 2 and cmds[1]["nonce"] != cmds[0]["nonce"]  # freshly signed, not a replay
    reply = {"command_id": cmds[1]["id"], "ok": True, "detail": "showing help_coming"}
    feed(ingest, (Topics.replies("pole-01"), json.dumps(reply).encode()))
    assert state.service.resend_unanswered(older_than_s=0) == 0
    assert client.get(f"/api/alarms/{ev.id}").json()["node_stage"] == "acknowledged"
    assert first


def test_silent_node_raises_one_offline_alarm_and_recovers(hub) -> None:
    state, ingest, client = hub.state, hub.ingest, hub.client
    feed(ingest, (Topics.status("pole-05"), b'{"state": "online", "kind": "alarm_post"}'))
    later = utcnow() + timedelta(seconds=10)
    for _ in range(3):
        with state.engine.begin() as conn:
            from hub.ingest.writer import BatchResult

            ingest.processor.raise_offline(conn, later, BatchResult())
    alarms = client.get("/api/alarms").json()
    assert [(a["kind"], a["node"]) for a in alarms] == [("node.offline", "pole-05")]
    hb = {"ts": utcnow().isoformat(), "uptime_s": 5, "outbox_depth": 0}
    feed(ingest, (Topics.heartbeat("pole-05"), json.dumps(hb).encode()))
    assert client.get("/api/alarms").json() == []
    assert client.get("/api/nodes").json()[0]["state"] == "online"


def test_a_writer_that_is_behind_keeps_only_each_nodes_newest_heartbeat(hub) -> None:
    """Heartbeats are QoS 0, so the broker's in-flight limit does not hold them back: a slow writer must
    not let them pile up (the soak saw the queue grow by 200 a second). Events are never dropped."""

    ingest, fake, client = hub.ingest, hub.fake, hub.client
    ingest._stop.set()  # the writer falls behind: messages wait in the queue
    ingest._writer.join(timeout=5)

    def arrive(topic: str, payload: bytes, qos: int) -> None:
        ingest.receive(Received(topic, payload, next(_mid), qos))

    events = [Event.make("door-07", "door.granted", {"slot": 3}) for _ in range(3)]
    for uptime in range(1, 51):
        for node in ("pole-01", "door-07"):
            hb = {"ts": utcnow().isoformat(), "uptime_s": uptime, "outbox_depth": uptime}
            arrive(Topics.heartbeat(node), json.dumps(hb).encode(), 0)
        if uptime % 20 == 0:
            arrive(Topics.events("door-07"), events[uptime // 20 - 1].to_bytes(), 1)
    arrive(Topics.events("door-07"), events[2].to_bytes(), 1)
    assert ingest.queue.qsize() == 2 + 3  # one heartbeat per node, every event
    ingest.handle_batch(ingest.queue.get_batch(500, timeout=1))
    nodes = {n["id"]: n for n in client.get("/api/nodes").json()}
    assert {nodes[n]["heartbeat"]["uptime_s"] for n in ("pole-01", "door-07")} == {50}  # the newest one won
    assert sorted(fake.acked)[-3:] == sorted(fake.acked) and len(fake.acked) == 3  # each event acked, after commit
    assert len(client.get("/api/events", params={"node": "door-07"}).json()) == 3
    assert "pingan_hub_heartbeats_superseded_total 98.0" in scrape(client)


def test_a_last_will_shows_offline_at_once_but_alarms_only_after_the_silence(hub) -> None:
    """A broker restart delivers every node's will at once and the nodes are back seconds later: that must
    not raise an alarm per node (design.md); a node that stays silent still gets one."""
    state, ingest, client = hub.state, hub.ingest, hub.client
    feed(ingest, (Topics.status("pole-06"), b'{"state": "online", "kind": "alarm_post"}'))
    feed(ingest, (Topics.status("pole-06"), b'{"state": "offline", "kind": "alarm_post"}'))  # its last will
    from hub.ingest.writer import BatchResult

    def check(after_s: float) -> None:
        with state.engine.begin() as conn:
            ingest.processor.raise_offline(conn, utcnow() + timedelta(seconds=after_s), BatchResult())

    check(1)
    assert client.get("/api/nodes").json()[0]["state"] == "offline"  # the console shows it at once
    assert client.get("/api/alarms").json() == []
    check(10)  # offline_after_s is 5: still silent, so now it is an outage
    assert [(a["kind"], a["node"]) for a in client.get("/api/alarms").json()] == [("node.offline", "pole-06")]


def test_no_offline_checks_while_the_hub_has_no_broker_nor_just_after_it_returns(hub) -> None:
    ingest, fake = hub.ingest, hub.fake
    ingest.settings.offline_grace_s = 30
    fake.connected, fake.connected_since = False, 1000.0
    assert not ingest.offline_check_allowed(now=5000.0)  # it hears nobody: it cannot tell who is silent
    fake.connected = True
    assert not ingest.offline_check_allowed(now=1010.0)  # reconnected 10 s ago: births still coming in
    assert ingest.offline_check_allowed(now=1031.0)


def test_alarms_are_sorted_loudest_first(hub) -> None:
    ingest, client = hub.ingest, hub.client
    for kind in ("detection.loitering", "tamper.opened", "alarm.pressed", "door.forced"):
        feed(ingest, (Topics.events("pole-01"), Event.make("pole-01", kind).to_bytes()))
    kinds = [a["kind"] for a in client.get("/api/alarms").json()]
    assert kinds == ["alarm.pressed", "door.forced", "tamper.opened", "detection.loitering"]


def test_named_alarms_come_as_the_queue_shows_them_in_any_state(hub) -> None:
    """?ids= is a console's patch after a live message: the alarms named, resolved ones too, with the queue's
    columns and the kind's rank, the queue's own sort key."""
    ingest, client = hub.ingest, hub.client
    made = {}
    for kind in ("detection.loitering", "alarm.pressed", "door.forced"):
        ev = Event.make("pole-01", kind)
        feed(ingest, (Topics.events("pole-01"), ev.to_bytes()))
        made[kind] = str(ev.id)
    assert client.post(f"/api/alarms/{made['door.forced']}/resolve", json={"outcome": "test"}).status_code == 200
    queue = {a["id"]: a for a in client.get("/api/alarms").json()}
    assert [a["rank"] for a in queue.values()] == sorted(a["rank"] for a in queue.values())
    r = client.get("/api/alarms", params={"ids": f"{made['door.forced']},{made['alarm.pressed']},no-such-alarm"})
    assert r.status_code == 200, r.text
    named = {a["id"]: a for a in r.json()}
    assert set(named) == {made["door.forced"], made["alarm.pressed"]}
    assert named[made["door.forced"]]["state"] == "resolved"
    assert named[made["alarm.pressed"]] == queue[made["alarm.pressed"]]  # the same row the queue lists
    assert client.get("/api/alarms", params={"ids": ",".join(["x"] * 201)}).status_code == 200  # the same id
    too_many = client.get("/api/alarms", params={"ids": ",".join(f"a{i}" for i in range(201))})
    assert too_many.status_code == 422 and too_many.json()["detail"] == "at most 200 ids at a time"
    assert client.get("/api/alarms", params={"ids": "a, b"}).status_code == 422  # not an id list


def test_live_websocket_pushes_and_catches_up(hub) -> None:
    state, ingest, client = hub.state, hub.ingest, hub.client
    ingest.notify = state.live.publish_threadsafe
    first = Event.make("pole-01", "alarm.pressed")
    feed(ingest, (Topics.events("pole-01"), first.to_bytes()))
    with client.websocket_connect("/api/live?since=0") as ws:
        replay = ws.receive_json()
        assert replay["event"]["id"] == str(first.id) and replay["replay"] is True
        assert ws.receive_json()["type"] == "hello"
        second = Event.make("pole-01", "tamper.opened")
        feed(ingest, (Topics.events("pole-01"), second.to_bytes()))
        msg = ws.receive_json()
        assert msg["event"]["id"] == str(second.id) and msg["alarm"]["kind"] == "tamper.opened"
        assert msg["cursor"] > replay["cursor"]


def test_health_docs_and_dashboard(hub) -> None:
    client = hub.client
    assert client.get("/api/health").json()["status"] == "ok"
    assert "/api/alarms/{alarm_id}/ack" in client.get("/openapi.json").json()["paths"]
    assert "平安" in client.get("/").text


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_show_kinds_lag_nodes_and_response_times(hub) -> None:
    state, ingest, client = hub.state, hub.ingest, hub.client
    before = scrape(client)
    state.service.register_node("pole-01")
    ev = Event.make("pole-01", "alarm.pressed")
    feed(ingest, (Topics.events("pole-01"), ev.to_bytes()))
    hb = {"ts": utcnow().isoformat(), "uptime_s": 5, "outbox_depth": 7}
    feed(ingest, (Topics.heartbeat("pole-01"), json.dumps(hb).encode()))
    client.post(f"/api/alarms/{ev.id}/ack", json={})
    text = scrape(client)
    for name, delta in (('pingan_hub_events_total{kind="alarm.pressed"}', 1),
                        ("pingan_hub_ingest_lag_seconds_count", 2),
                        ('pingan_hub_alarm_response_seconds_count{stage="acknowledged"}', 1)):
        assert _metric(text, name) - _metric(before, name) == delta, name
    assert _metric(text, 'pingan_node_outbox_depth{node="pole-01"}') == 7
    assert _metric(text, 'pingan_hub_nodes{state="online"}') == 1
    assert _metric(text, 'pingan_hub_alarms_open{kind="alarm.pressed"}') == 1


# Keys Home Assistant's MQTT binary_sensor discovery schema accepts (MQTT_RO_SCHEMA + entity common schema).
HA_BINARY_SENSOR_KEYS = {
    "name", "unique_id", "object_id", "default_entity_id", "device_class", "state_topic", "value_template",
    "payload_on", "payload_off", "off_delay", "expire_after", "force_update", "availability_topic",
    "availability_template", "availability_mode", "availability", "payload_available", "payload_not_available",
    "qos", "device", "entity_category", "icon", "json_attributes_topic", "json_attributes_template",
    "enabled_by_default", "encoding",
}
HA_DEVICE_KEYS = {"identifiers", "connections", "name", "manufacturer", "model", "sw_version", "hw_version",
                  "suggested_area", "via_device", "configuration_url", "serial_number", "model_id"}
HA_BINARY_SENSOR_CLASSES = {"safety", "tamper", "door", "problem", "connectivity", "lock", "motion", "occupancy"}


def test_home_assistant_discovery_and_states(hub) -> None:
    from hub.alarms.homeassistant import HomeAssistantBridge

    state, ingest, client = hub.state, hub.ingest, hub.client
    state.service.register_node("pole-01", grid="G01", place="Market")
    out: list[tuple[str, bytes, bool]] = []
    bridge = HomeAssistantBridge(state.engine, lambda t, p, q, r: out.append((t, p, r)))
    bridge.sync()
    configs = {t: json.loads(p) for t, p, r in out if t.endswith("/config")}
    assert set(configs) == {"homeassistant/binary_sensor/pingan_pole_01/alarm/config",
                            "homeassistant/binary_sensor/pingan_pole_01/tamper/config"}
    for payload in configs.values():
        assert set(payload) <= HA_BINARY_SENSOR_KEYS and "state_topic" in payload
        assert set(payload["device"]) <= HA_DEVICE_KEYS
        assert payload["device_class"] in HA_BINARY_SENSOR_CLASSES
        assert payload["availability_topic"] == Topics.status("pole-01")
    assert all(r for _, _, r in out)  # retained
    assert (Topics.ha_state("pole-01", "alarm"), b"OFF", True) in out
    out.clear()
    ev = Event.make("pole-01", "alarm.pressed")
    feed(ingest, (Topics.events("pole-01"), ev.to_bytes()))
    bridge.sync()
    assert out == [(Topics.ha_state("pole-01", "alarm"), b"ON", True)]
    out.clear()
    client.post(f"/api/alarms/{ev.id}/resolve", json={"outcome": "assisted"})
    bridge.sync()
    assert out == [(Topics.ha_state("pole-01", "alarm"), b"OFF", True)]


def test_the_hub_loads_no_video_libraries_until_someone_watches() -> None:
    """aiortc, PyAV and OpenCV cost a hub ~60 MB; a centre that never opens MJPEG must not pay for them."""
    import subprocess
    import sys

    code = ("import sys, hub.app, hub.cli; "
            "print(sorted(m for m in ('av', 'aiortc', 'cv2', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def _online(ingest: Ingest, *nodes: str) -> None:
    feed(ingest, *((Topics.status(n), b'{"state": "online", "kind": "rental_door"}') for n in nodes))


def _check_offline(state, ingest: Ingest, after_s: float) -> None:
    from hub.ingest.writer import BatchResult

    out = BatchResult()
    with state.engine.begin() as conn:
        ingest.processor.raise_offline(conn, utcnow() + timedelta(seconds=after_s), out)
    ingest._send_receipts(out)


def test_many_nodes_silent_together_are_one_incident_until_the_last_is_back(hub) -> None:
    """design.md: many nodes going offline at once is one incident, not thousands (a street's uplink or power).
    Each node still shows offline and still counts its own downtime; staff see, and escalation sees, one alarm."""
    state, ingest, fake, client = hub.state, hub.ingest, hub.fake, hub.client
    street = [f"door-{i:02d}" for i in range(12)]  # outage_min_nodes is 10
    _online(ingest, *street)
    published_before = len(fake.published)
    _check_offline(state, ingest, 10)  # offline_after_s is 5: all twelve went silent together
    _check_offline(state, ingest, 11)  # the next check adds nothing
    listed = client.get("/api/alarms").json()
    assert [(a["kind"], a["node"], a["count"], a["nodes_back"]) for a in listed] == [("nodes.offline", "hub", 12, 0)]
    assert listed[0]["nodes"] == street
    incident = listed[0]["id"]
    nodes = client.get("/api/nodes").json()
    assert {n["id"]: n["state"] for n in nodes} == dict.fromkeys(street, "offline")
    assert all(n["open_alarm"] for n in nodes)  # each node's own offline alarm, inside the incident
    assert len(fake.published) == published_before  # no receipts for what the hub raised itself
    assert [a["id"] for a in state.escalator.check(utcnow() + timedelta(hours=1))] == [incident]

    for node in street[:-1]:
        hb = {"ts": utcnow().isoformat(), "uptime_s": 5, "outbox_depth": 0}
        feed(ingest, (Topics.heartbeat(node), json.dumps(hb).encode()))
    still = client.get(f"/api/alarms/{incident}").json()
    assert (still["state"], still["nodes_back"]) == ("open", 11)
    feed(ingest, (Topics.status(street[-1]), b'{"state": "online", "kind": "rental_door"}'))
    done = client.get(f"/api/alarms/{incident}").json()
    assert (done["state"], done["outcome"], done["resolved_by"]) == ("resolved", "recovered", "system")
    assert client.get("/api/alarms").json() == []


def test_a_few_silent_nodes_alarm_alone_and_a_late_one_joins_the_outage(hub) -> None:
    state, ingest, client = hub.state, hub.ingest, hub.client
    _online(ingest, *(f"pole-{i:02d}" for i in range(3)))
    _check_offline(state, ingest, 10)  # three is below outage_min_nodes: an alarm each, as before
    assert sorted(a["kind"] for a in client.get("/api/alarms").json()) == ["node.offline"] * 3

    _online(ingest, *(f"door-{i:02d}" for i in range(10)))
    _check_offline(state, ingest, 10)
    listed = client.get("/api/alarms").json()
    assert sorted((a["kind"], a["count"]) for a in listed) == [("node.offline", 1)] * 3 + [("nodes.offline", 10)]
    _online(ingest, "door-99")  # silent a little later, within offline_after_s of the incident: it joins
    _check_offline(state, ingest, 12)
    outage = next(a for a in client.get("/api/alarms").json() if a["kind"] == "nodes.offline")
    assert outage["count"] == 11 and "door-99" in outage["nodes"]


def test_staff_resolving_an_outage_does_not_raise_its_nodes_again(hub) -> None:
    state, ingest, client = hub.state, hub.ingest, hub.client
    _online(ingest, *(f"door-{i:02d}" for i in range(10)))
    _check_offline(state, ingest, 10)
    incident = client.get("/api/alarms").json()[0]["id"]
    r = client.post(f"/api/alarms/{incident}/resolve", json={"outcome": "other", "note": "ISP fault, ticket 88"})
    assert r.status_code == 200, r.text
    _check_offline(state, ingest, 60)  # still silent: their own alarms stay open inside the closed incident
    assert client.get("/api/alarms").json() == []
    assert all(n["open_alarm"] for n in client.get("/api/nodes").json())  # their downtime still runs
    _online(ingest, *(f"door-{i:02d}" for i in range(10)))
    assert not any(n["open_alarm"] for n in client.get("/api/nodes").json())
    closed = client.get(f"/api/alarms/{incident}").json()
    assert (closed["state"], closed["outcome"], closed["nodes_back"]) == ("resolved", "other", 10)


def test_nodes_cannot_send_or_be_named_what_only_the_hub_raises(hub) -> None:
    state, ingest, fake, client = hub.state, hub.ingest, hub.fake, hub.client
    forged = Event.make("pole-01", "nodes.offline", {"nodes": ["pole-02"]})
    feed(ingest, (Topics.events("pole-01"), forged.to_bytes()))
    assert receipts(fake, "pole-01")[-1].rejected[0].reason == "nodes.offline is raised by the hub only"
    assert client.get("/api/alarms").json() == []
    from hub.errors import Conflict

    with pytest.raises(Conflict, match="the hub's own name"):
        state.service.register_node("hub", kind="alarm_post")


def test_a_retained_status_is_acked_at_once_and_events_only_after_commit(hub) -> None:
    """The broker gives a retained status again on every subscribe, so it need not hold one of the hub's
    in-flight slots until committed; an event must (it exists nowhere else once acknowledged)."""

    ingest, fake, client = hub.ingest, hub.fake, hub.client
    ingest._stop.set()
    ingest._writer.join(timeout=5)

    def arrive(topic: str, payload: bytes) -> int:
        mid = next(_mid)
        ingest.receive(Received(topic, payload, mid, 1))
        return mid

    birth = arrive(Topics.status("pole-08"), b'{"state": "online", "kind": "alarm_post"}')
    press = arrive(Topics.events("pole-08"), Event.make("pole-08", "alarm.pressed").to_bytes())
    assert fake.acked == [birth]  # the press waits for its commit
    ingest.handle_batch(ingest.queue.get_batch(500, timeout=1))
    assert fake.acked == [birth, press]  # and the birth is not acked twice
    assert client.get("/api/nodes").json()[0]["state"] == "online"


def test_commands_are_published_only_after_their_transaction_commits(hub) -> None:
    """A node can reply within a millisecond; the reply must find its command row. Published inside the
    transaction (as before), another connection could not see the row yet when the command went out."""
    from sqlalchemy import select

    from hub.store.schema import commands

    state, fake = hub.state, hub.fake
    state.service.register_node("pole-77", kind="alarm_post")
    visible: list[bool] = []
    publish = fake.publish

    def look_then_publish(topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> bool:
        if topic == Topics.commands("pole-77"):
            with state.engine.connect() as conn:  # what the ingest writer would see for a fast reply
                cid = json.loads(payload)["id"]
                visible.append(conn.execute(select(commands.c.id).where(commands.c.id == cid)).first() is not None)
        return publish(topic, payload, qos, retain)

    fake.publish = look_then_publish
    assert state.service.send_command("pole-77", "siren.set", {"on": True}, "li") is not None
    assert visible == [True]
