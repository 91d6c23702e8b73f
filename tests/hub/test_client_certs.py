"""Nodes that log in with a client certificate from the hub's CA, against a real mosquitto: the broker's
certificate listener takes the node id from the certificate, the ACL's %u confines it, a certificate
from another CA (or none) is refused, a removed node's certificate is revoked, and a real node process
installed from an `--auth cert` bundle comes online and delivers a press to a real hub."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from edge.installer.bundle import install_bundle
from edge.protocol import Event, Topics
from hub.app import HubState
from hub.config import load_settings
from hub.nodes.fleet import Fleet
from hub.nodes.pki import ensure_ca, issue_client_cert
from hub.store.schema import audit, nodes
from hub.transport.broker import free_port, port_open
from tests.conftest import NodeProc, wait_for
from tests.mqtt_client import close, mqtt_connect


@pytest.fixture()
def cert_broker(tmp_path: Path, mosquitto_exe: str):
    state = HubState(load_settings(data_dir=tmp_path / "hub", mqtt_enabled=False))
    fleet = Fleet(state.engine, state.service)
    broker_dir = tmp_path / "broker"
    ensure_ca(broker_dir)
    a = fleet.add("pole-31", kind="alarm_post", ca_dir=broker_dir)
    b = fleet.add("pole-32", kind="alarm_post", ca_dir=broker_dir)
    assert a.mqtt_password is None and a.client_key and b"BEGIN CERTIFICATE" in (a.client_cert or b"")
    port, cert_port = free_port(), free_port()
    conf = fleet.write_broker_config(broker_dir, port=port, bind="127.0.0.1", cert_port=cert_port, broker_user="root")
    text = conf.read_text()
    assert "require_certificate true" in text and "use_identity_as_username true" in text
    proc = subprocess.Popen([mosquitto_exe, "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    wait_for(lambda: port_open("127.0.0.1", port) and port_open("127.0.0.1", cert_port), 10, message="mosquitto up")
    hub_user = fleet.hub_user("1", broker_dir)
    yield SimpleNamespace(fleet=fleet, port=port, cert_port=cert_port, a=a, b=b, hub_login=hub_user,
                          broker_dir=broker_dir)
    proc.terminate()
    out = proc.communicate(timeout=10)[0].decode(errors="replace")
    assert "Error:" not in out, out
    state.engine.dispose()


def test_node_certificate_logs_in_as_the_node_and_is_confined(tmp_path: Path, cert_broker) -> None:
    c = cert_broker
    port, cert_port, a, broker_dir = c.port, c.cert_port, c.a, c.broker_dir
    hub_user, hub_pw = c.hub_login
    got: list[str] = []
    hub, rc = mqtt_connect(port, user=hub_user, password=hub_pw, client_id=hub_user)
    assert rc == 0
    hub.on_message = lambda c, u, m: got.append(m.topic)
    hub.subscribe("pingan/v1/nodes/+/events", qos=1)
    time.sleep(0.3)
    # no username sent: the broker takes "pole-31" from the certificate
    node, rc = mqtt_connect(cert_port, ca=broker_dir / "ca.crt", cert=(a.client_key, a.client_cert), tmp=tmp_path,
                        client_id="pole-31")
    assert rc == 0
    for target in ("pole-32", "pole-31"):  # tries to speak for pole-32 too
        node.publish(Topics.events(target), Event.make(target, "alarm.pressed").to_bytes(), qos=1).wait_for_publish(5)
    wait_for(lambda: Topics.events("pole-31") in got, message="pole-31's own event delivered")
    time.sleep(0.3)
    assert got == [Topics.events("pole-31")]  # the spoofed one was PUBACKed but never delivered
    close(hub, node)


def test_other_ca_or_no_certificate_is_refused(tmp_path: Path, cert_broker) -> None:
    port, cert_port, broker_dir = cert_broker.port, cert_broker.cert_port, cert_broker.broker_dir
    other = tmp_path / "other-ca"
    ensure_ca(other, name="Somebody else's CA")
    key, crt, _ = issue_client_cert(other, "pole-31")  # right name, wrong issuer
    c, rc = mqtt_connect(cert_port, ca=broker_dir / "ca.crt", cert=(key, crt), tmp=tmp_path)
    assert rc != 0
    c2, rc = mqtt_connect(cert_port, ca=broker_dir / "ca.crt")  # TLS without a client certificate
    assert rc != 0
    c3, rc = mqtt_connect(cert_port, ca=broker_dir / "ca.crt", user="pole-31", password="guess")  # a password won't do
    assert rc != 0
    c4, rc = mqtt_connect(port, user="pole-31", password="anything")  # and a cert node has no password user
    assert rc != 0
    for client in (c, c2, c3, c4):
        client.loop_stop()


def test_removed_nodes_certificate_is_revoked(tmp_path: Path, cert_broker) -> None:
    fleet, port, cert_port = cert_broker.fleet, cert_broker.port, cert_broker.cert_port
    a, b, broker_dir = cert_broker.a, cert_broker.b, cert_broker.broker_dir
    c, rc = mqtt_connect(cert_port, ca=broker_dir / "ca.crt", cert=(b.client_key, b.client_cert), tmp=tmp_path)
    assert rc == 0
    close(c)
    fleet.remove("pole-32")
    fleet.write_broker_config(broker_dir, port=port, bind="127.0.0.1", cert_port=cert_port, broker_user="root")
    # mosquitto re-reads certificates and the CRL on SIGHUP
    assert Fleet.reload_broker(broker_dir)
    wait_for(lambda: mqtt_connect(cert_port, ca=broker_dir / "ca.crt", cert=(b.client_key, b.client_cert),
                              tmp=tmp_path)[1] != 0, 10, message="the revoked certificate refused")
    c, rc = mqtt_connect(cert_port, ca=broker_dir / "ca.crt", cert=(a.client_key, a.client_cert), tmp=tmp_path)
    assert rc == 0
    close(c)


def test_real_node_from_a_cert_bundle_reaches_the_hub(tmp_path: Path, cert_broker, hub_factory, sim_dir) -> None:
    c = cert_broker
    port, cert_port, broker_dir = c.port, c.cert_port, c.broker_dir
    hub_user, hub_pw = c.hub_login
    hub = hub_factory(f"mqtt://127.0.0.1:{port}", mqtt_username=hub_user, mqtt_password=hub_pw)
    out = subprocess.run([sys.executable, "-m", "hub.cli", "nodes", "add", "pole-41", "--auth", "cert",
                          "--ca", str(broker_dir / "ca.crt"), "--broker-url", f"mqtts://127.0.0.1:{cert_port}",
                          "--out", str(tmp_path / "bundles")], env=hub.env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    root = tmp_path / "root"
    written = install_bundle(tmp_path / "bundles" / "pole-41.bundle.tar.gz", root)
    etc = root / "etc" / "pingan"
    assert etc / "mqtt-client.crt" in written and not (etc / "credentials" / "mqtt-password").exists()
    dropin = (root / "etc/systemd/system/pingan-edge.service.d/00-client-cert.conf").read_text()
    assert "PINGAN_MQTT_CLIENT_KEY:/etc/pingan/credentials/mqtt-client-key" in dropin
    node = NodeProc(tmp_path, "pole-41", f"mqtts://127.0.0.1:{cert_port}", sim_dir,
                    (etc / "credentials" / "node-key").read_text(),
                    mqtt={"ca_file": str(etc / "ca.crt"), "client_cert": str(etc / "mqtt-client.crt")})
    node.env["PINGAN_MQTT_CLIENT_KEY"] = (etc / "credentials" / "mqtt-client-key").read_text()
    try:
        node.start()
        hub.wait_online("pole-41")
        node.control(cmd="press")
        wait_for(lambda: hub.event_ids(node="pole-41", kind="alarm.pressed"), message="the press at the hub")
    finally:
        node.stop()
    assert "refused the connection" not in node.output()


def test_broker_config_cli_writes_the_certificate_listener(tmp_path: Path) -> None:
    env = {**os.environ, "PINGAN_DATA_DIR": str(tmp_path / "hub")}
    out = subprocess.run([sys.executable, "-m", "hub.cli", "broker", "config", "--out", str(tmp_path / "b"),
                          "--port", "1883", "--tls-port", "8883", "--cert-port", "8884"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    conf = (tmp_path / "b" / "mosquitto.conf").read_text()
    cert_listener = conf.split("listener 8884")[1].split("allow_anonymous")[0]
    assert "require_certificate true" in cert_listener and "use_identity_as_username true" in cert_listener
    assert f"crlfile {tmp_path / 'b' / 'crl.pem'}" in cert_listener
    assert "require_certificate" not in conf.split("listener 8884")[0]  # the password listeners are unchanged
    assert "nodes add --auth cert" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "hub.cli", "nodes", "add", "pole-51", "--auth", "cert",
                          "--out", str(tmp_path / "bundles")], env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--auth cert needs --ca" in bad.stderr and "Traceback" not in bad.stderr


def _cert(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def _cn(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def test_renewed_certificate_keeps_the_node_id_and_is_accepted(tmp_path: Path, cert_broker) -> None:
    """`nodes renew-cert`: the same CN from the same CA, a later end, accepted by the running broker as it is
    (no reload); the old one keeps working until revoked with --revoke-old, then the CRL refuses it."""
    c = cert_broker
    fleet, port, cert_port, a, broker_dir = c.fleet, c.port, c.cert_port, c.a, c.broker_dir
    hub_user, hub_pw = c.hub_login
    ca = _cert((broker_dir / "ca.crt").read_bytes())
    old = _cert(a.client_cert or b"")
    env = {**os.environ, "PINGAN_DATA_DIR": str(tmp_path / "hub")}
    out = subprocess.run([sys.executable, "-m", "hub.cli", "nodes", "renew-cert", "pole-31", "--ca",
                          str(broker_dir / "ca.crt"), "--days", "1000", "--out", str(tmp_path / "renew")],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    folder = tmp_path / "renew" / "pole-31.client-cert"
    key_path, crt_path = folder / "credentials" / "mqtt-client-key", folder / "mqtt-client.crt"
    assert key_path.stat().st_mode & 0o777 == 0o600 and folder.stat().st_mode & 0o777 == 0o700
    new = _cert(crt_path.read_bytes())
    assert _cn(new) == "pole-31" and new.issuer == ca.subject and new.serial_number != old.serial_number
    new.verify_directly_issued_by(ca)  # signed by the hub's CA
    assert new.not_valid_after_utc > old.not_valid_after_utc
    assert "mqtt.client_cert" in out.stdout and "mqtt.client_key_env" in out.stdout
    assert "/etc/pingan/credentials/mqtt-client-key" in out.stdout
    renewed = (key_path.read_bytes(), crt_path.read_bytes())
    c, rc = mqtt_connect(cert_port, ca=broker_dir / "ca.crt", cert=renewed, tmp=tmp_path, client_id="pole-31")
    assert rc == 0  # the running broker takes it as pole-31: its ACL still applies
    got: list[str] = []
    hub, rc = mqtt_connect(port, user=hub_user, password=hub_pw, client_id=hub_user)
    hub.on_message = lambda cl, u, m: got.append(m.topic)
    hub.subscribe("pingan/v1/nodes/+/events", qos=1)
    time.sleep(0.3)
    c.publish(Topics.events("pole-32"), Event.make("pole-32", "alarm.pressed").to_bytes(), qos=1).wait_for_publish(5)
    c.publish(Topics.events("pole-31"), Event.make("pole-31", "alarm.pressed").to_bytes(), qos=1).wait_for_publish(5)
    wait_for(lambda: Topics.events("pole-31") in got, message="the renewed node's event delivered")
    assert got == [Topics.events("pole-31")]
    close(c, hub)
    c, rc = mqtt_connect(cert_port, ca=broker_dir / "ca.crt", cert=(a.client_key, a.client_cert), tmp=tmp_path)
    assert rc == 0  # not revoked: the node stays online until the installer swaps the files
    close(c)
    with fleet.engine.connect() as conn:
        actions = [r.action for r in conn.execute(select(audit).where(audit.c.target == "pole-31"))]
    assert "node.cert_renew" in actions

    key2, crt2, _ = fleet.renew_cert("pole-31", broker_dir, revoke_old=True)  # a stolen key
    fleet.write_broker_config(broker_dir, port=port, bind="127.0.0.1", cert_port=cert_port, broker_user="root")
    assert Fleet.reload_broker(broker_dir)
    for earlier in ((a.client_key, a.client_cert), renewed):
        wait_for(lambda e=earlier: mqtt_connect(cert_port, ca=broker_dir / "ca.crt", cert=e, tmp=tmp_path)[1] != 0,
                 10, message="an earlier certificate refused after --revoke-old")
    c, rc = mqtt_connect(cert_port, ca=broker_dir / "ca.crt", cert=(key2, crt2), tmp=tmp_path)
    assert rc == 0
    close(c)


def test_renew_cert_refuses_unknown_password_and_removed_nodes(tmp_path: Path) -> None:
    env = {**os.environ, "PINGAN_DATA_DIR": str(tmp_path / "hub")}
    state = HubState(load_settings(data_dir=tmp_path / "hub", mqtt_enabled=False))
    fleet = Fleet(state.engine, state.service)
    broker_dir = tmp_path / "broker"
    ensure_ca(broker_dir)
    fleet.add("pole-61", kind="alarm_post")  # an MQTT password
    fleet.add("pole-62", kind="alarm_post", ca_dir=broker_dir)
    fleet.remove("pole-62")
    state.engine.dispose()

    def renew(node: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "hub.cli", "nodes", "renew-cert", node, "--ca",
                               str(broker_dir / "ca.crt"), "--out", str(tmp_path / "renew")],
                              env=env, capture_output=True, text=True, timeout=60)

    for node, says in (("pole-99", "no node pole-99"), ("pole-61", "logs in with an MQTT password"),
                       ("pole-62", "was removed")):
        got = renew(node)
        assert got.returncode == 2, got.stdout
        assert says in got.stderr and "Traceback" not in got.stderr, got.stderr
    assert not (tmp_path / "renew").exists()  # nothing was written for any of them


def test_rotate_key_changes_the_command_signing_key(tmp_path: Path) -> None:
    env = {**os.environ, "PINGAN_DATA_DIR": str(tmp_path / "hub")}
    state = HubState(load_settings(data_dir=tmp_path / "hub", mqtt_enabled=False))
    old = Fleet(state.engine, state.service).add("pole-71", kind="alarm_post").signing_key
    got = subprocess.run([sys.executable, "-m", "hub.cli", "nodes", "rotate-key", "pole-71", "--out",
                          str(tmp_path / "keys")], env=env, capture_output=True, text=True, timeout=60)
    assert got.returncode == 0, got.stderr
    path = tmp_path / "keys" / "pole-71.node-key" / "node-key"
    new = path.read_text()
    assert new != old and path.stat().st_mode & 0o777 == 0o600
    with state.engine.connect() as conn:
        sealed = conn.execute(select(nodes.c.key_enc).where(nodes.c.id == "pole-71")).scalar()
    assert state.service.vault.open(sealed).decode() == new  # the hub now signs commands with it
    unknown = subprocess.run([sys.executable, "-m", "hub.cli", "nodes", "rotate-key", "pole-98"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 2 and "no node pole-98" in unknown.stderr and "Traceback" not in unknown.stderr
    state.engine.dispose()
