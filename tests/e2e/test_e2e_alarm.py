"""End to end on real servers: button press → node → mosquitto → hub → /api/alarms and /api/live."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
import websockets

from hub.transport.broker import Broker
from tests.conftest import wait_for


async def _next_alarm_message(ws_url: str, trigger) -> dict:
    async with websockets.connect(ws_url) as ws:
        hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert hello["type"] == "hello"
        await asyncio.to_thread(trigger)
        while True:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 20))
            if msg["type"] == "event" and msg.get("alarm"):
                return msg


def _press_to_ack(broker_url: str, hub_factory, node_factory) -> None:
    hub = hub_factory(broker_url)
    key = hub.register("pole-07")
    node = node_factory("pole-07", broker_url, key)
    hub.wait_online("pole-07")

    msg = asyncio.run(_next_alarm_message(hub.ws_url(), lambda: node.control(cmd="press")))
    assert msg["event"]["kind"] == "alarm.pressed"
    assert msg["event"]["node"] == "pole-07"
    assert msg["event"]["data"]["grid"] == "G01"
    alarm_id = msg["alarm"]["id"]

    alarms = hub.get("/api/alarms")
    assert [a["id"] for a in alarms] == [alarm_id]
    assert alarms[0]["state"] == "open" and alarms[0]["place"] == "Test street"
    snap_url = f"{hub.url}/api/events/{alarm_id}/snapshot.jpg"
    snap = wait_for(lambda: (r := httpx.get(snap_url, headers=hub.headers)).status_code == 200
                    and r, message="snapshot stored")
    assert snap.headers["content-type"] == "image/jpeg" and snap.content[:2] == b"\xff\xd8"

    # the hub's receipt turns the LED from "sending" to "received"
    wait_for(lambda: node.control(cmd="state")["state"]["led"] == "received", message="LED received")
    r = hub.post(f"/api/alarms/{alarm_id}/ack", {"operator": "wang"})
    assert r.status_code == 200 and r.json()["state"] == "acknowledged"
    state = wait_for(lambda: (s := node.control(cmd="state")["state"])["led"] == "seen" and s,
                     message="LED shows the alarm is seen")
    assert state["led"] == "seen"  # a long blink; "help coming" (steady) waits for a responder (issue 18)
    wait_for(lambda: hub.get(f"/api/alarms/{alarm_id}")["node_stage"] == "acknowledged",
             message="node's reply recorded")

    r = hub.post(f"/api/alarms/{alarm_id}/resolve", {"operator": "wang", "outcome": "assisted"})
    assert r.status_code == 200
    wait_for(lambda: node.control(cmd="state")["state"]["led"] == "idle", message="LED back to idle")
    assert hub.get("/api/alarms") == []


def test_press_reaches_operator_and_ack_lights_led(broker: Broker, hub_factory, node_factory) -> None:
    _press_to_ack(broker.url, hub_factory, node_factory)


def test_press_to_ack_on_embedded_amqtt_broker(tmp_path: Path, hub_factory, node_factory) -> None:
    pytest.importorskip("amqtt")
    b = Broker(tmp_path / "amqtt", kind="amqtt").start()
    try:
        _press_to_ack(b.url, hub_factory, node_factory)
    finally:
        b.stop()


def test_ten_presses_are_one_alarm_with_a_count(broker: Broker, hub_factory, node_factory) -> None:
    hub = hub_factory(broker.url)
    node = node_factory("pole-09", broker.url, hub.register("pole-09"),
                        alarm={"coalesce_window_s": 3})
    node.control(cmd="press", times=10, hold_s=0.05)
    alarm = wait_for(lambda: (a := hub.get("/api/alarms")) and a[0]["count"] == 10 and a[0],
                     message="one alarm with count 10")
    assert len(hub.get("/api/alarms")) == 1
    assert len(hub.event_ids(kind="alarm.pressed")) == 1
    assert alarm["kind"] == "alarm.pressed"


def test_tamper_and_offline_raise_alarms(broker: Broker, hub_factory, node_factory) -> None:
    hub = hub_factory(broker.url, offline_after_s="5")
    node = node_factory("pole-03", broker.url, hub.register("pole-03"))
    node.control(cmd="tamper", open=True)
    wait_for(lambda: any(a["kind"] == "tamper.opened" for a in hub.get("/api/alarms")), message="tamper alarm")
    node.kill()  # the broker publishes its last will: offline
    alarm = wait_for(lambda: [a for a in hub.get("/api/alarms") if a["kind"] == "node.offline"],
                     message="node.offline alarm")
    assert alarm[0]["node"] == "pole-03"
    node.start()
    wait_for(lambda: not [a for a in hub.get("/api/alarms") if a["kind"] == "node.offline"],
             message="offline alarm resolved when the node returns")
