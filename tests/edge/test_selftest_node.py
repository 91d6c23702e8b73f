"""A real node process (MockFactory pins, synthetic camera, simulated acoustic loop) against a real
mosquitto: ``selftest.run`` published past the hub is obeyed once, answered with every check, and
queued as one ``selftest.result`` event; a forged one is refused."""

from __future__ import annotations

import json
import sqlite3
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.protocol import Command, Event, Topics
from hub.transport.broker import Broker
from tests.conftest import wait_for

KEY = "selftest-node-key-0123456789abcdef"


def _replies_to(broker: Broker, node: str, cmds: list[Command]) -> list[bytes]:
    got: list[bytes] = []
    spy = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"spy-{time.monotonic_ns()}", protocol=mqtt.MQTTv311)
    spy.on_message = lambda c, u, m: got.append(m.payload)
    subscribed: list[bool] = []
    spy.on_subscribe = lambda *a: subscribed.append(True)
    spy.connect("127.0.0.1", broker.port)
    spy.loop_start()
    try:
        spy.subscribe(Topics.replies(node), qos=1)
        wait_for(lambda: subscribed, 5, 0.02, "the spy's SUBACK")
        for cmd in cmds:
            spy.publish(Topics.commands(node), cmd.to_bytes(), qos=1).wait_for_publish(5)
        wait_for(lambda: len(got) >= len(cmds), 30, message=f"the node's {len(cmds)} replies")
    finally:
        spy.disconnect()
        spy.loop_stop()
    return got


def test_a_node_runs_its_self_test_on_a_signed_command(broker: Broker, node_factory) -> None:
    node = node_factory("pole-st1", broker.url, KEY, pins={"button_test_drive": 5})
    run = Command.make("pole-st1", "selftest.run", {}, operator="wang").signed(KEY.encode())
    forged = Command.make("pole-st1", "selftest.run", {}).signed(b"not-the-key")
    replies = [json.loads(p) for p in _replies_to(broker, "pole-st1", [run, forged])]
    by_id = {r["command_id"]: r for r in replies}
    assert by_id[forged.id]["ok"] is False and "bad signature" in by_id[forged.id]["detail"]
    reply = by_id[run.id]
    assert reply["ok"] is True, reply
    checks = {c["name"]: c for c in reply["data"]["checks"]}
    assert checks["button_loop"]["status"] == "pass" and checks["audio_loop"]["status"] == "pass"
    assert checks["camera"]["status"] == "pass" and checks["siren_feedback"]["status"] == "skipped"
    assert reply["data"]["trigger"] == "command" and reply["data"]["command_id"] == run.id
    db = sqlite3.connect(node.data_dir / "outbox.db")
    try:
        events = [Event.model_validate_json(p) for (k, p) in db.execute("SELECT key, payload FROM outbox")
                  if k.startswith("e:")]
    finally:
        db.close()
    kinds = [e.kind for e in events]
    assert kinds.count("selftest.result") == 1 and "alarm.pressed" not in kinds
    assert "command.refused" in kinds
