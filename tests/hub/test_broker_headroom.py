"""The broker's open-file limit against the fleet (issue 21, hub/nodes/broker_headroom.py): a real mosquitto
past its limit leaves nodes unconnected without a word in its log, so the hub's /api/health and
`pingan-hub broker config` must say so first; a broker with room is reported as enough."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from hub.app import create_app
from hub.config import load_settings
from hub.nodes import broker_headroom
from hub.transport.broker import Broker

LOW = 40  # open files: ~8 of them the broker's own (stdio, listener, epoll, log), the rest clients


def connect_many(port: int, count: int, wait_s: float = 3.0) -> int:
    """Sends ``count`` MQTT CONNECTs at once and counts the CONNACKs that accept them (what a node waits for)."""
    socks = []
    for i in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=2)  # the kernel's backlog accepts the TCP part
        cid = f"node-{i}".encode()
        variable = b"\x00\x04MQTT\x04\x02\x00\x3c"  # MQTT 3.1.1, clean session, keepalive 60 s
        payload = len(cid).to_bytes(2, "big") + cid
        s.sendall(bytes([0x10, len(variable) + len(payload)]) + variable + payload)
        socks.append(s)
    accepted, waiting = 0, set(socks)
    deadline = wait_s
    while waiting and deadline > 0:
        ready, _, _ = select.select(list(waiting), [], [], 0.2)
        deadline -= 0.2
        for s in ready:
            waiting.discard(s)
            try:
                accepted += s.recv(4) == b"\x20\x02\x00\x00"
            except ConnectionResetError:  # refused: the node retries, and is refused again
                pass
    for s in socks:
        s.close()
    return accepted


def health(tmp: Path, broker: Broker, registered: int) -> dict:
    settings = load_settings(data_dir=tmp, mqtt_enabled=False, broker_dir=broker.data_dir)
    app = create_app(settings)
    for i in range(registered):
        app.state.hub.service.register_node(f"door-{i:03d}", kind="rental_door")
    with TestClient(app) as client:
        r = client.get("/api/health")
    assert r.status_code == 200, r.text
    return r.json()


def test_a_broker_at_its_open_file_limit_refuses_nodes_and_the_hub_says_so(tmp_path: Path, mosquitto_exe) -> None:
    broker = Broker(tmp_path / "broker", kind="mosquitto", open_files=LOW).start()
    try:
        assert broker.proc is not None
        assert broker_headroom.open_files_limit(broker.proc.pid) == LOW
        accepted = connect_many(broker.port, 50)
        assert 20 < accepted < 50, accepted  # what the warning is about: the rest got no CONNACK at all
        body = health(tmp_path / "hub", broker, registered=50)
        assert body["broker"] == {"open_files_limit": LOW, "nodes": 50, "needed": 50 + 10 + 100, "enough": False}
    finally:
        broker.stop()


def test_a_broker_with_room_is_enough_and_the_test_broker_gets_the_hard_limit(tmp_path: Path, mosquitto_exe) -> None:
    import resource

    with Broker(tmp_path / "broker", kind="mosquitto") as broker:
        assert broker.proc is not None
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        assert broker_headroom.open_files_limit(broker.proc.pid) == min(hard, 1 << 20)
        assert connect_many(broker.port, 50) == 50
        body = health(tmp_path / "hub", broker, registered=5)
        assert body["broker"]["enough"] is (hard >= 5 + 1 + 100), body


def test_no_broker_section_when_the_broker_is_not_on_this_box(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, mqtt_enabled=False, mqtt_url="mqtt://broker.district.lan:1883",
                             broker_dir=tmp_path / "no-such-folder")
    with TestClient(create_app(settings)) as client:
        assert client.get("/api/health").json()["broker"] is None


def test_broker_config_warns_when_the_running_broker_is_short_of_files(tmp_path: Path, mosquitto_exe) -> None:
    env = {**os.environ, "PINGAN_DATA_DIR": str(tmp_path / "hub")}
    out = tmp_path / "b"
    for limit, expect in ((LOW, "warning: the broker may open 40 files"), (None, "enough for 0 nodes")):
        with Broker(tmp_path / f"broker-{limit}", kind="mosquitto", open_files=limit) as broker:
            assert broker.proc is not None
            (out / "data").mkdir(parents=True, exist_ok=True)
            (out / "data" / "mosquitto.pid").write_text(f"{broker.proc.pid}\n")  # as if it ran from `out`
            run = subprocess.run([sys.executable, "-m", "hub.cli", "broker", "config", "--out", str(out),
                                  "--port", "0", "--tls-port", "0", "--bind", "127.0.0.1"],
                                 env=env, capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        assert expect in run.stdout + run.stderr, run.stdout + run.stderr
        if limit is not None:
            assert "LimitNOFILE" in run.stderr and "Traceback" not in run.stderr
