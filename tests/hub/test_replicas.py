"""Hub replicas behind one mosquitto, on one PostgreSQL (real servers): shared subscriptions split the
ingest and store each event once; a killed replica loses nothing (the nodes' resends); a console on
one replica sees what another stored; commands to a node go out once."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import websockets
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select

from edge.protocol import Command, Event, HubStatus, Receipt, Topics
from hub.store.engine import make_engine
from hub.store.schema import commands, events
from hub.transport.broker import Broker
from tests.conftest import wait_for
from tests.replicas import Crowd, prepare_postgres, start_replicas

pytestmark = pytest.mark.slow
EVENTS = 5000


def _stored(url: str) -> tuple[int, int]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return tuple(conn.execute(select(func.count(), func.count(events.c.id.distinct()))).one())  # type: ignore
    finally:
        engine.dispose()


@pytest.fixture()
def cluster(tmp_path: Path, broker: Broker, pg_url: str):
    prepare_postgres(pg_url)
    made = []

    def start(n: int = 2, **settings: str):
        made.extend(start_replicas(tmp_path, broker.url, pg_url, n, **settings))
        return made

    yield start
    for r in made:
        r.stop()


def test_two_replicas_split_5000_events_and_store_each_once(cluster, broker: Broker, pg_url: str) -> None:
    a, b = cluster(2)
    assert {a.get("/api/health")["leader"], b.get("/api/health")["leader"]} == {True, False}
    crowd = Crowd(broker.port, nodes=50, resend_s=300)  # no resends: each message delivered once
    try:
        crowd.send(EVENTS)
        wait_for(lambda: crowd.unreceipted() == 0, 120, 0.2, "every event receipted")
    finally:
        crowd.close()
    assert _stored(pg_url) == (EVENTS, EVENTS)
    stored_a = a.counter("pingan_hub_ingested_total", channel="events")
    stored_b = b.counter("pingan_hub_ingested_total", channel="events")
    assert stored_a + stored_b == EVENTS, (stored_a, stored_b)  # no event stored by both
    assert stored_a > EVENTS * 0.2 and stored_b > EVENTS * 0.2, (stored_a, stored_b)  # both did a share
    # the broker gave each message to one replica: neither saw the other's events as resends
    assert a.counter("pingan_hub_duplicates_total") == b.counter("pingan_hub_duplicates_total") == 0
    assert crowd.resent == 0


def test_killing_a_replica_mid_stream_loses_nothing(cluster, broker: Broker, pg_url: str) -> None:
    a, b = cluster(2)
    crowd = Crowd(broker.port, nodes=50, resend_s=3)
    sender = threading.Thread(target=crowd.send, args=(EVENTS, 800.0))  # ~6 s of traffic
    try:
        sender.start()
        wait_for(lambda: _stored(pg_url)[0] >= EVENTS // 4, 60, 0.1, "a quarter stored")
        b.kill()  # SIGKILL: whatever b had in flight is gone with its clean session
        sender.join()
        wait_for(lambda: crowd.unreceipted() == 0, 120, 0.2, "every event receipted after the kill")
    finally:
        crowd.close()
    assert _stored(pg_url) == (EVENTS, EVENTS)
    assert a.get("/api/health")["mqtt"] == "connected"
    # b's last will said the hub is offline; a, still serving, says online again (nodes keep resending)
    assert wait_for(lambda: _retained_hub_status(broker.port) == "online", 10, 0.2, "hub status online")
    # a took over the singleton jobs
    wait_for(lambda: a.get("/api/health")["leader"], 10, 0.2, "replica a leads")


def _retained_hub_status(port: int) -> str | None:
    got: list[str] = []
    done = threading.Event()

    def on_message(client, userdata, msg) -> None:
        got.append(HubStatus.model_validate_json(msg.payload).state)
        done.set()

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"status-probe-{time.time_ns()}", protocol=mqtt.MQTTv311)
    c.on_message = on_message
    c.connect("127.0.0.1", port)
    c.subscribe(Topics.HUB_STATUS, 1)
    c.loop_start()
    done.wait(3)
    c.disconnect()
    c.loop_stop()
    return got[-1] if got else None


async def _collect_alarm_ids(url: str, want: set[str], seen: set[str], ready: threading.Event,
                             sent_all: threading.Event) -> None:
    """Alarm ids pushed on one console's /api/live, until every alarm sent has been seen (or 60 s)."""
    deadline = time.monotonic() + 60
    async with websockets.connect(url) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "hello"
        ready.set()
        while not (sent_all.is_set() and want <= seen) and time.monotonic() < deadline:
            try:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
            except TimeoutError:
                continue
            if msg.get("type") == "event" and msg.get("alarm"):
                seen.add(msg["alarm"]["id"])


def test_console_on_one_replica_sees_alarms_stored_by_the_other(cluster, broker: Broker, pg_url: str) -> None:
    a, b = cluster(2)
    crowd = Crowd(broker.port, nodes=4, resend_s=30, kind="alarm.pressed", prefix="alarm")
    ids: list[str] = []
    seen_a: set[str] = set()
    seen_b: set[str] = set()
    want: set[str] = set()
    try:
        # send alarms one by one until each replica has stored at least one (the broker round-robins)
        by: dict[str, set[str]] = {"a": set(), "b": set()}
        ready_a, ready_b = threading.Event(), threading.Event()
        for _ in range(20):
            before = {r.name: r.counter("pingan_hub_events_total", kind="alarm.pressed") for r in (a, b)}
            (event_id,) = crowd.send(1)
            ids.append(event_id)
            wait_for(lambda: crowd.unreceipted() == 0, 20, 0.05, "alarm receipted")
            after = {r.name: r.counter("pingan_hub_events_total", kind="alarm.pressed") for r in (a, b)}
            (stored_by,) = [n for n in after if after[n] > before[n]]
            by[stored_by].add(event_id)
            if by["a"] and by["b"] and len(ids) >= 4:
                break
        assert by["a"] and by["b"], by
        # now both consoles connect and two more alarms, one per replica, must reach both of them
        sent_all = threading.Event()
        threads = [threading.Thread(target=asyncio.run,
                                    args=(_collect_alarm_ids(r.ws_url(), want, seen, ev, sent_all),))
                   for r, seen, ev in ((a, seen_a, ready_a), (b, seen_b, ready_b))]
        for t in threads:
            t.start()
        assert ready_a.wait(10) and ready_b.wait(10)
        stored_on = {"a": 0, "b": 0}
        for _ in range(20):
            before = {r.name: r.counter("pingan_hub_events_total", kind="alarm.pressed") for r in (a, b)}
            (event_id,) = crowd.send(1)
            want.add(event_id)
            wait_for(lambda: crowd.unreceipted() == 0, 20, 0.05, "alarm receipted")
            after = {r.name: r.counter("pingan_hub_events_total", kind="alarm.pressed") for r in (a, b)}
            for n in after:
                stored_on[n] += int(after[n] > before[n])
            if stored_on["a"] and stored_on["b"]:
                break
        sent_all.set()
        for t in threads:
            t.join(30)
    finally:
        crowd.close()
    assert stored_on["a"] and stored_on["b"], stored_on
    assert want <= seen_a, "console on replica a missed alarms stored by b"
    assert want <= seen_b, "console on replica b missed alarms stored by a"


def test_operator_ack_on_one_replica_reaches_the_other_console_and_the_node_once(
        cluster, broker: Broker, pg_url: str, node_factory) -> None:
    a, b = cluster(2)
    key = a.register("pole-07")
    node = node_factory("pole-07", broker.url, key)
    wait_for(lambda: any(n["id"] == "pole-07" and n["state"] == "online" for n in b.get("/api/nodes")),
             message="pole-07 online")
    wire: list[Command] = []
    spy = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"spy-{time.time_ns()}", protocol=mqtt.MQTTv311)
    spy.on_message = lambda c, u, m: wire.append(Command.model_validate_json(m.payload))
    spy.connect("127.0.0.1", broker.port)
    spy.subscribe(Topics.commands("pole-07"), 1)
    spy.loop_start()
    try:
        node.control(cmd="press")
        alarm = wait_for(lambda: a.get("/api/alarms"), message="alarm stored")[0]

        async def ack_seen_on_b() -> dict:
            async with websockets.connect(b.ws_url()) as ws:
                assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "hello"
                r = await asyncio.to_thread(a.post, f"/api/alarms/{alarm['id']}/ack", {"operator": "wang"})
                assert r.status_code == 200
                while True:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 20))
                    if msg.get("type") == "alarm" and msg["alarm"]["state"] == "acknowledged":
                        return msg

        assert asyncio.run(ack_seen_on_b())["alarm"]["id"] == alarm["id"]
        wait_for(lambda: node.control(cmd="state")["state"]["led"] == "seen", message="LED: seen by an operator")
        wait_for(lambda: b.get(f"/api/alarms/{alarm['id']}")["node_stage"] == "acknowledged", message="reply")
        time.sleep(3)  # three resend rounds (PINGAN_ACK_RESEND_S=1) in which nothing more may go out
    finally:
        spy.disconnect()
        spy.loop_stop()
    acks = [c for c in wire if c.name == "alarm.ack"]
    assert len(acks) == 1 and acks[0].args["stage"] == "acknowledged", [(c.id, c.args) for c in acks]


def test_a_silent_node_gets_acks_resent_by_the_leader_only(cluster, broker: Broker, pg_url: str) -> None:
    """No reply: alarm.ack is resent every PINGAN_ACK_RESEND_S, by one replica, so attempts never pair up."""
    a, b = cluster(2)
    a.register("pole-08")
    crowd = Crowd(broker.port, resend_s=30, kind="alarm.pressed", names=["pole-08"])
    try:
        (alarm_id,) = crowd.send(1)
        wait_for(lambda: crowd.unreceipted() == 0, 20, 0.05, "alarm receipted")
        assert b.post(f"/api/alarms/{alarm_id}/ack", {"operator": "li"}).status_code == 200
        time.sleep(6)
    finally:
        crowd.close()
    engine = make_engine(pg_url)
    try:
        with engine.connect() as conn:
            issued = [r.issued_at for r in conn.execute(select(commands.c.issued_at).where(
                commands.c.node == "pole-08", commands.c.name == "alarm.ack").order_by(commands.c.issued_at))]
    finally:
        engine.dispose()
    assert len(issued) >= 3, issued  # the first send and resends
    gaps = [(y - x).total_seconds() for x, y in zip(issued, issued[1:], strict=False)]
    assert min(gaps) >= 0.9, gaps  # two leaders would resend the same attempt within milliseconds


def test_replicas_share_ingest_under_the_fleet_broker_acl(tmp_path: Path, pg_url: str, mosquitto_exe: str) -> None:
    """`pingan-hub broker config --replica a --replica b`: anonymous off, a broker user per replica, and the
    ACL lets them read `$share/pingan-hub/...`; a node with its own credentials gets every event stored."""
    import subprocess

    from cryptography.fernet import Fernet

    from hub.app import HubState
    from hub.config import load_settings
    from hub.nodes.fleet import Fleet
    from hub.transport.broker import free_port, port_open
    from tests.replicas import ReplicaProc

    prepare_postgres(pg_url)
    key = Fernet.generate_key().decode()
    state = HubState(load_settings(database_url=pg_url, data_dir=tmp_path / "cli", mqtt_enabled=False,
                                   secret_key=key))
    fleet = Fleet(state.engine, state.service)
    made = fleet.add("pole-21", kind="alarm_post", grid="G07")
    port = free_port()
    conf = fleet.write_broker_config(tmp_path / "broker", port=port, bind="127.0.0.1", replicas=("a", "b"),
                                     broker_user="root")  # pytest's 0700 tmp dirs
    state.engine.dispose()
    proc = subprocess.Popen([mosquitto_exe, "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    replicas: list[ReplicaProc] = []
    node = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="pole-21", protocol=mqtt.MQTTv311)
    try:
        wait_for(lambda: port_open("127.0.0.1", port), 10, message="mosquitto up")
        for name in ("a", "b"):
            password = (tmp_path / "broker" / f"pingan-hub-{name}.password").read_text().strip()
            replicas.append(ReplicaProc(tmp_path, name, f"mqtt://127.0.0.1:{port}", pg_url, key,
                                        mqtt_username=f"pingan-hub-{name}", mqtt_password=password).start())
        receipted: set[str] = set()
        node.on_message = lambda c, u, m: receipted.update(Receipt.model_validate_json(m.payload).ids)
        node.username_pw_set("pole-21", made.mqtt_password)
        node.connect("127.0.0.1", port)
        node.subscribe(Topics.receipts("pole-21"), 1)
        node.loop_start()
        time.sleep(0.3)  # the subscription is in place before the first receipt can come
        sent = []
        for i in range(40):
            event = Event.make("pole-21", "detection.person", {"n": i})
            sent.append(str(event.id))
            node.publish(Topics.events("pole-21"), event.to_bytes(), qos=1)
        wait_for(lambda: set(sent) <= receipted, 30, 0.1, "every event receipted through the ACL")
        counts = [r.counter("pingan_hub_ingested_total", channel="events") for r in replicas]
        assert sum(counts) == 40 and min(counts) > 0, counts
        assert _stored(pg_url) == (40, 40)
    finally:
        node.disconnect()
        node.loop_stop()
        for r in replicas:
            r.stop()
        proc.terminate()
        out = proc.communicate(timeout=10)[0].decode(errors="replace")
    assert "Error:" not in out and "denied" not in out.lower(), out
