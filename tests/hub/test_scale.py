"""Issue 21 (one hub box for a city), the correctness parts; the figures are bench/district_load.py's.

- A batch's heartbeats and statuses are stored in bulk and still mean what they meant one at a time.
- Replicas on PostgreSQL: a console's ``?since=`` replay includes an event that committed after a later one
  (another replica's transaction was still open when the console saw the later event).
- Replicas: node statuses are stored by the leader only, and a new leader takes over the retained ones.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion

from edge.protocol import Event, NodeStatus, Topics, utcnow
from hub.app import create_app
from hub.config import load_settings
from hub.ingest.writer import BatchResult, Incoming, Ingest
from hub.transport.broker import Broker
from tests.conftest import ADMIN, wait_for
from tests.fake_transport import FakeTransport
from tests.replicas import prepare_postgres, start_replicas

_mid = iter(range(1, 1_000_000))


def feed(ingest: Ingest, *messages: tuple[str, bytes]) -> BatchResult:
    return ingest.handle_batch([Incoming(t, p, next(_mid), 1, utcnow()) for t, p in messages])


def hb(uptime: float = 5) -> bytes:
    return json.dumps({"ts": utcnow().isoformat(), "uptime_s": uptime, "outbox_depth": 0}).encode()


@pytest.fixture()
def sqlite_hub(tmp_path: Path):
    settings = load_settings(data_dir=tmp_path, mqtt_enabled=True, offline_after_s=5, offline_grace_s=0)
    app = create_app(settings, transport=FakeTransport())
    state = app.state.hub
    state.auth.add_user(*ADMIN, "admin")
    with TestClient(app) as client:
        token = client.post("/api/login", json=dict(zip(("username", "password"), ADMIN, strict=True))).json()["token"]
        client.headers["Authorization"] = f"Bearer {token}"
        yield state, state.ingest, client


def test_a_batch_of_heartbeats_and_statuses_is_stored_as_one_at_a_time_would(sqlite_hub) -> None:
    state, ingest, client = sqlite_hub
    out = feed(ingest, *[(Topics.status(f"door-{i}"), NodeStatus(state="online", kind="rental_door",
                                                                   version="1.2").to_bytes()) for i in range(300)],
               *[(Topics.heartbeat(f"door-{i}"), hb(i)) for i in range(300)],
               (Topics.heartbeat("door-bad"), b'{"uptime_s": -1}'),  # refused, the rest stored
               (Topics.status("door-7"), NodeStatus(state="offline").to_bytes()))  # a will behind its heartbeat
    nodes = {n["id"]: n for n in client.get("/api/nodes").json()}
    assert len(nodes) == 300 and "door-bad" not in nodes
    assert nodes["door-3"]["state"] == "online" and nodes["door-3"]["kind"] == "rental_door"
    assert nodes["door-3"]["version"] == "1.2" and nodes["door-3"]["heartbeat"]["uptime_s"] == 3
    assert nodes["door-7"]["state"] == "offline"  # the will came last: it wins, as it did one at a time
    assert nodes["door-7"]["kind"] == "rental_door" and nodes["door-7"]["version"] == "1.2"  # a will names neither
    states = [i for i in out.live if i["type"] == "node" and i["node"] == "door-7"]
    assert states[-1]["state"] == "offline"
    # 300 nodes silent together are one outage incident; their heartbeats in one batch resolve it
    with state.engine.begin() as conn:
        ingest.processor.raise_offline(conn, utcnow() + timedelta(seconds=10), BatchResult())
    assert [a["kind"] for a in client.get("/api/alarms").json()] == ["nodes.offline"]
    feed(ingest, *[(Topics.heartbeat(f"door-{i}"), hb(100 + i)) for i in range(300)])
    assert client.get("/api/alarms").json() == []
    assert {n["state"] for n in client.get("/api/nodes").json()} == {"online"}


def test_a_status_naming_another_kind_than_the_registered_one_still_raises_one_fault(sqlite_hub) -> None:
    state, ingest, client = sqlite_hub
    from hub.store.schema import nodes

    with state.engine.begin() as conn:
        conn.execute(nodes.insert().values(id="pole-09", kind="alarm_post", key_enc="x", state="unknown",
                                           created=utcnow()))
    for _ in range(2):  # the retained status comes again on every reconnect
        feed(ingest, (Topics.status("pole-09"), NodeStatus(state="online", kind="camera").to_bytes()),
             (Topics.heartbeat("pole-09"), hb()))
    node = next(n for n in client.get("/api/nodes").json() if n["id"] == "pole-09")
    assert node["kind"] == "alarm_post" and node["state"] == "online"
    faults = [a for a in client.get("/api/alarms").json() if a["kind"] == "node.fault"]
    assert len(faults) == 1


@pytest.fixture()
def pg_hub(tmp_path: Path, pg_url: str):
    prepare_postgres(pg_url)
    settings = load_settings(data_dir=tmp_path, database_url=pg_url, mqtt_enabled=True, offline_grace_s=0,
                             secret_key=Fernet.generate_key().decode())
    app = create_app(settings, transport=FakeTransport())
    state = app.state.hub
    with TestClient(app) as client:
        token = client.post("/api/login", json=dict(zip(("username", "password"), ADMIN, strict=True))).json()["token"]
        client.headers["Authorization"] = f"Bearer {token}"
        yield state, state.ingest, client, pg_url


def test_a_replay_since_a_cursor_includes_an_event_another_replica_committed_late(pg_hub) -> None:
    state, ingest, client, pg_url = pg_hub
    late = Event.make("pole-02", "alarm.pressed")
    conninfo = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo) as other:  # another replica's writer: its transaction is still open
        late_seq = other.execute(
            "INSERT INTO events (id, node, kind, ts, received_at, data, snapshot, delayed) "
            "VALUES (%s, 'pole-02', 'alarm.pressed', now(), now(), '{}', false, false) RETURNING seq",
            (str(late.id),)).fetchone()[0]
        seen = Event.make("pole-01", "detection.person", {"zone": "gate"})
        feed(ingest, (Topics.events("pole-01"), seen.to_bytes()))
        cursor = client.get("/api/events", params={"node": "pole-01"}).json()[0]["seq"]
        assert cursor > late_seq  # the console has seen a later seq than the open transaction's
        other.commit()
    with client.websocket_connect(f"/api/live?since={cursor}") as ws:
        replayed = []
        while (msg := ws.receive_json())["type"] != "hello":
            replayed.append(msg["event"]["id"])
    assert str(late.id) in replayed
    assert str(late.id) in [e["id"] for e in client.get("/api/events", params={"after": cursor}).json()]
    # an event stored once no other transaction is open: a cursor at it replays neither again
    feed(ingest, (Topics.events("pole-01"), Event.make("pole-01", "detection.person", {"zone": "gate"}).to_bytes()))
    quiet = client.get("/api/events", params={"node": "pole-01"}).json()[0]["seq"]
    assert client.get("/api/events", params={"after": quiet}).json() == []


@pytest.mark.slow
def test_replicas_store_node_statuses_once_and_a_new_leader_takes_the_retained_ones(
        tmp_path: Path, broker: Broker, pg_url: str) -> None:
    prepare_postgres(pg_url)
    a, b = start_replicas(tmp_path, broker.url, pg_url, 2)  # a starts first: it leads
    node = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="pole-31", protocol=mqtt.MQTTv311)
    node.connect("127.0.0.1", broker.port)
    node.loop_start()
    try:
        node.publish(Topics.status("pole-31"), NodeStatus(state="online", kind="alarm_post").to_bytes(), qos=1,
                     retain=True).wait_for_publish(5)

        def state_on(replica) -> str | None:  # noqa: ANN001
            return next((n["state"] for n in replica.get("/api/nodes") if n["id"] == "pole-31"), None)

        wait_for(lambda: state_on(a) == "online", 20, 0.1, "the leader stored the birth")
        wait_for(lambda: b.counter("pingan_hub_status_skipped_total") >= 1, 20, 0.1, "b heard it and left it")
        assert a.counter("pingan_hub_status_skipped_total") == 0
        a.stop()  # the leader goes; b takes the lock within seconds and asks for the retained statuses again
        node.publish(Topics.status("pole-31"), NodeStatus(state="offline", kind="alarm_post").to_bytes(), qos=1,
                     retain=True).wait_for_publish(5)
        wait_for(lambda: b.get("/api/health")["leader"], 20, 0.2, "b leads")
        wait_for(lambda: state_on(b) == "offline", 20, 0.2, "the new leader stored the status")
    finally:
        node.loop_stop()
        node.disconnect()
        for r in (a, b):
            r.stop()
