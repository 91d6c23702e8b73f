"""The broker files of `pingan-hub broker config` (issue 16): TLS for nodes by default with plain MQTT on
loopback only, size limits that a real mosquitto enforces before it buffers a packet, bounded queues,
a broker that drops root; `nodes add` bundles default to mqtts://; the hub refuses an oversized payload
before it queues it."""

from __future__ import annotations

import ipaddress
import os
import pwd
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml

from hub.app import HubState
from hub.config import load_settings
from hub.nodes.fleet import Fleet
from hub.transport.broker import free_port, mosquitto_config, port_open
from tests.conftest import wait_for
from tests.mqtt_client import close, mqtt_connect


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hub.cli", *args], env=env, capture_output=True, text=True,
                          timeout=60)


def _listeners(conf: str) -> dict[str, list[str]]:
    """Each listener line ("listener PORT ADDR") with the lines that configure it (up to the next one)."""
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in conf.splitlines():
        if line.startswith("listener "):
            current = blocks.setdefault(line, [])
        elif current is not None and line.split(" ")[0] in ("cafile", "certfile", "keyfile", "tls_version",
                                                            "require_certificate", "use_identity_as_username",
                                                            "crlfile"):
            current.append(line)
        elif not line.startswith("#"):
            current = None
    return blocks


def _loopback(host: str) -> bool:
    return host == "localhost" or ipaddress.ip_address(host).is_loopback


def _settings_of(conf: str) -> dict[str, str]:
    return {k: v for k, _, v in (line.partition(" ") for line in conf.splitlines() if not line.startswith("#"))}


def test_broker_config_by_default_tls_for_nodes_plain_only_on_loopback_limits_and_no_root(tmp_path: Path) -> None:
    env = {**os.environ, "PINGAN_DATA_DIR": str(tmp_path / "hub")}
    out = _cli(env, "broker", "config", "--out", str(tmp_path / "b"), "--hostname", "hub.district.lan")
    assert out.returncode == 0, out.stderr
    conf = (tmp_path / "b" / "mosquitto.conf").read_text()
    listeners = _listeners(conf)
    assert "listener 1883 127.0.0.1" in listeners and not listeners["listener 1883 127.0.0.1"]  # the hub's
    assert any(f"certfile {tmp_path / 'b' / 'broker.crt'}" in lines for name, lines in listeners.items()
               if name == "listener 8883 0.0.0.0")  # nodes: TLS
    for name, lines in listeners.items():  # nothing in clear beyond loopback
        assert _loopback(name.split()[2]) or any(x.startswith("certfile") for x in lines), name
    values = _settings_of(conf)
    assert 0 < int(values["max_packet_size"]) <= 1024 * 1024
    assert 0 < int(values["max_queued_bytes"]) <= 1024**3 and int(values["max_queued_messages"]) > 0
    assert 0 < int(values["max_inflight_bytes"])
    assert values["user"] == "mosquitto" and "user root" not in conf
    # the test/demo broker carries the same size limits
    test_broker = _settings_of(mosquitto_config(1883, tmp_path))
    assert all(test_broker.get(k) == values[k] for k in ("max_packet_size", "max_inflight_bytes", "max_queued_bytes"))

    lan = _cli(env, "broker", "config", "--out", str(tmp_path / "lan"), "--insecure-plain-lan")
    assert lan.returncode == 0, lan.stderr
    assert "listener 1883 0.0.0.0" in (tmp_path / "lan" / "mosquitto.conf").read_text()
    assert "not encrypted" in lan.stderr and "Traceback" not in lan.stderr


def test_nodes_add_defaults_to_mqtts_and_refuses_plain_mqtt_beyond_loopback(tmp_path: Path) -> None:
    env = {**os.environ, "PINGAN_DATA_DIR": str(tmp_path / "hub")}
    made = _cli(env, "nodes", "add", "pole-61", "--out", str(tmp_path / "bundles"))
    assert made.returncode == 0, made.stderr
    with tarfile.open(tmp_path / "bundles" / "pole-61.bundle.tar.gz") as tar:
        config = yaml.safe_load(tar.extractfile("pole-61/node.yaml").read())  # type: ignore[union-attr]
    assert config["mqtt"]["url"].startswith("mqtts://") and config["mqtt"]["url"].endswith(":8883")

    plain = _cli(env, "nodes", "add", "pole-62", "--broker-url", "mqtt://10.20.0.1:1883", "--out",
                 str(tmp_path / "bundles"))
    assert plain.returncode == 2 and "plain MQTT" in plain.stderr and "Traceback" not in plain.stderr
    assert not (tmp_path / "bundles" / "pole-62.bundle.tar.gz").exists()
    asked = _cli(env, "nodes", "add", "pole-62", "--broker-url", "mqtt://10.20.0.1:1883", "--insecure-plain",
                 "--out", str(tmp_path / "bundles"))
    assert asked.returncode == 0, asked.stderr
    local = _cli(env, "nodes", "add", "pole-63", "--broker-url", "mqtt://127.0.0.1:1883", "--out",
                 str(tmp_path / "bundles"))
    assert local.returncode == 0, local.stderr


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_real_broker_drops_oversized_publishes_from_a_node_before_buffering_them(tmp_path: Path,
                                                                                    mosquitto_exe: str) -> None:
    state = HubState(load_settings(data_dir=tmp_path / "hub", mqtt_enabled=False))
    fleet = Fleet(state.engine, state.service)
    node = fleet.add("pole-21", kind="alarm_post")
    port = free_port()
    conf = fleet.write_broker_config(tmp_path / "broker", port=port, bind="127.0.0.1",
                                     broker_user="root")  # pytest's 0700 tmp dirs
    proc = subprocess.Popen([mosquitto_exe, "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: port_open("127.0.0.1", port), 10, message="mosquitto up")
        hub_user, hub_pw = fleet.hub_user("1", tmp_path / "broker")
        got: list[tuple[str, int]] = []
        hub, rc = mqtt_connect(port, user=hub_user, password=hub_pw, client_id=hub_user)
        assert rc == 0
        hub.on_message = lambda c, u, m: got.append((m.topic, len(m.payload)))
        hub.subscribe("pingan/v1/nodes/+/snapshots/+", qos=1)
        time.sleep(0.3)
        base = _peak_rss_kib(proc.pid)

        def publish(event: str, size: int) -> mqtt.Client:
            c, rc = mqtt_connect(port, user="pole-21", password=node.mqtt_password)
            assert rc == 0
            info = c.publish(f"pingan/v1/nodes/pole-21/snapshots/{event}", b"\xff\xd8" + b"x" * (size - 2), qos=1)
            try:
                info.wait_for_publish(10)
            except RuntimeError:
                pass  # disconnected by the broker
            return c

        topic = "pingan/v1/nodes/pole-21/snapshots/"
        close(publish("big", 64 * 1024 * 1024))  # one stolen credential, a 64 MiB publish
        close(publish("over", 2 * 1024 * 1024))  # just over the limit
        close(publish("normal", 250 * 1024))  # a real snapshot gets through
        wait_for(lambda: (topic + "normal", 250 * 1024) in got, message="the normal snapshot delivered")
        time.sleep(0.3)
        assert got == [(topic + "normal", 250 * 1024)]
        assert _peak_rss_kib(proc.pid) - base < 16 * 1024  # the 64 MiB were never buffered
        close(hub)
    finally:
        proc.terminate()
        output = proc.communicate(timeout=10)[0].decode(errors="replace")
        state.engine.dispose()
    assert "oversize packet" in output


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping root needs root")
def test_the_generated_broker_drops_root_and_still_reads_its_files_on_reload(tmp_path: Path,
                                                                            mosquitto_exe: str) -> None:
    try:
        broker_uid = pwd.getpwnam("mosquitto").pw_uid
    except KeyError:
        pytest.skip("no user mosquitto on this machine")
    base = Path(tempfile.mkdtemp(prefix="pingan-broker-", dir="/tmp"))  # pytest's tmp dirs are 0700
    base.chmod(0o755)
    state = HubState(load_settings(data_dir=tmp_path / "hub", mqtt_enabled=False))
    fleet = Fleet(state.engine, state.service)
    a = fleet.add("pole-21", kind="alarm_post")
    b = fleet.add("pole-22", kind="alarm_post")
    port, tls_port = free_port(), free_port()
    broker_dir = base / "broker"
    proc: subprocess.Popen[bytes] | None = None
    try:
        conf = fleet.write_broker_config(broker_dir, port=port, bind="127.0.0.1", tls_port=tls_port)
        assert "user mosquitto" in conf.read_text() and "user root" not in conf.read_text()
        proc = subprocess.Popen([mosquitto_exe, "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        wait_for(lambda: port_open("127.0.0.1", port) and port_open("127.0.0.1", tls_port), 10,
                 message="mosquitto up")
        uid = next(int(line.split()[2]) for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                   if line.startswith("Uid:"))  # effective uid
        assert uid == broker_uid
        c, rc = mqtt_connect(tls_port, user="pole-22", password=b.mqtt_password, ca=broker_dir / "ca.crt")
        assert rc == 0
        close(c)
        fleet.remove("pole-22")
        fleet.write_broker_config(broker_dir, port=port, bind="127.0.0.1", tls_port=tls_port)
        assert Fleet.reload_broker(broker_dir)  # re-read as the user mosquitto
        wait_for(lambda: mqtt_connect(tls_port, user="pole-22", password=b.mqtt_password,
                                      ca=broker_dir / "ca.crt")[1] != 0, 10, message="removed node refused")
        c, rc = mqtt_connect(tls_port, user="pole-21", password=a.mqtt_password, ca=broker_dir / "ca.crt")
        assert rc == 0
        close(c)
        for secret in ("ca.key", "pingan-hub-1.password"):  # the broker never needs these
            st = (broker_dir / secret).stat()
            assert st.st_uid == 0 and st.st_mode & 0o077 == 0, secret
    finally:
        output = ""
        if proc is not None:
            proc.terminate()
            output = proc.communicate(timeout=10)[0].decode(errors="replace")
        state.engine.dispose()
        shutil.rmtree(base, ignore_errors=True)
    assert "Error" not in output, output


def test_the_hub_refuses_a_payload_larger_than_any_node_sends_before_queueing_it(tmp_path: Path) -> None:
    from hub.transport.mqtt import MqttTransport

    transport = MqttTransport(load_settings(data_dir=tmp_path))
    acked: list[int] = []
    handed_over: list[object] = []

    class Client:
        def ack(self, mid: int, qos: int) -> None:
            acked.append(mid)

    transport.client = Client()  # type: ignore[assignment]
    transport._on_message = handed_over.append
    msg = mqtt.MQTTMessage(mid=7, topic=b"pingan/v1/nodes/pole-21/snapshots/x")
    msg.payload, msg.qos = b"\xff\xd8" + b"x" * (2 * 1024 * 1024), 1
    transport._message(transport.client, None, msg)  # type: ignore[arg-type]
    assert handed_over == [] and acked == [7]  # never handed to ingest; acked so the broker forgets it
