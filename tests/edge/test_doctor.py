"""pingan-edge doctor and install, against mock pins, a real camera file and a real mosquitto."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from edge.installer.bundle import install_bundle
from edge.installer.doctor import Doctor
from hub.nodes.fleet import node_config_for, write_bundle
from hub.transport.broker import free_port
from tests.hub.test_fleet import fleet_broker  # noqa: F401 - the fixture

pytestmark = pytest.mark.usefixtures("fleet_broker")


@pytest.fixture()
def node_setup(tmp_path: Path, fleet_broker, monkeypatch):  # noqa: F811
    port, a = fleet_broker.port, fleet_broker.a
    watchdog = tmp_path / "watchdog"
    watchdog.write_text("")
    system_conf = tmp_path / "system.conf"
    system_conf.write_text("[Manager]\nRuntimeWatchdogSec=14\n")
    monkeypatch.setenv("PINGAN_NODE_KEY", a.signing_key)
    monkeypatch.setenv("PINGAN_MQTT_PASSWORD", a.mqtt_password)
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")

    def write(**overrides) -> Path:
        cfg = {"node": {"id": "pole-21", "kind": "alarm_post"}, "mqtt": {"url": f"mqtt://127.0.0.1:{port}"},
               "pins": {"factory": "mock"}, "data_dir": str(tmp_path / "data")}
        for k, v in overrides.items():
            cfg[k] = {**cfg.get(k, {}), **v} if isinstance(v, dict) else v
        path = tmp_path / "node.yaml"
        path.write_text(yaml.safe_dump(cfg))
        return path

    def doctor(path: Path, **kw) -> dict[str, object]:
        findings = Doctor(path, watchdog_device=watchdog, system_conf=system_conf, **kw).run()
        return {f.name: f for f in findings}

    return SimpleNamespace(write=write, doctor=doctor, watchdog=watchdog, monkeypatch=monkeypatch)


def test_healthy_node_passes(node_setup) -> None:
    write, doctor = node_setup.write, node_setup.doctor
    found = doctor(write())
    failed = {n: f.detail for n, f in found.items() if f.status == "fail"}
    assert failed == {}
    assert found["broker"].status == "ok" and found["camera"].status == "ok" and found["pins"].status == "ok"


@pytest.mark.parametrize("inject, check, fix_words", [
    ("wrong_password", "broker", "reinstall its bundle"),
    ("broker_down", "broker", "check the network"),
    ("camera_missing", "camera", "camera.source"),
    ("no_secrets", "secrets", "pingan-edge install"),
    ("no_watchdog", "watchdog", "dtparam=watchdog=on"),
    ("disk_full", "disk", "free space"),
])
def test_each_failure_gets_its_fix(node_setup, inject: str, check: str, fix_words: str) -> None:
    write, doctor = node_setup.write, node_setup.doctor
    watchdog, monkeypatch = node_setup.watchdog, node_setup.monkeypatch
    kw: dict[str, object] = {}
    path = write()
    if inject == "wrong_password":
        monkeypatch.setenv("PINGAN_MQTT_PASSWORD", "not-the-password")
    elif inject == "broker_down":
        path = write(mqtt={"url": f"mqtt://127.0.0.1:{free_port()}"})
    elif inject == "camera_missing":
        path = write(camera={"source": "/nonexistent/cam.mp4"})
    elif inject == "no_secrets":
        monkeypatch.delenv("PINGAN_NODE_KEY")
    elif inject == "no_watchdog":
        watchdog.unlink()
    elif inject == "disk_full":
        kw["min_free_bytes"] = 1 << 60
    found = doctor(path, **kw)
    assert found[check].status == "fail", found[check]
    assert fix_words in found[check].fix
    others = [n for n, f in found.items() if f.status == "fail" and n != check]
    assert others == [], others


def test_bad_config_and_exit_code(tmp_path: Path) -> None:
    path = tmp_path / "node.yaml"
    path.write_text("node:\n  id: pole-21\n  kind: alarm_post\npins:\n  siren: 99\n")
    out = subprocess.run([sys.executable, "-m", "edge.cli", "doctor", str(path)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 1 and "FAIL config" in out.stdout and "pins.siren (line 5)" in out.stdout
    assert "Traceback" not in out.stdout + out.stderr


def test_install_puts_bundle_files_in_place(tmp_path: Path, fleet_broker) -> None:  # noqa: F811
    port, a = fleet_broker.port, fleet_broker.a
    cfg = node_config_for("pole-21", "alarm_post", "G07", "Market", None, None, f"mqtt://127.0.0.1:{port}")
    bundle = write_bundle(a, cfg, tmp_path / "bundles")
    root = tmp_path / "root"
    written = install_bundle(bundle, root)
    assert (root / "etc/pingan/node.yaml").exists() and (root / "etc/systemd/system/pingan-edge.service").exists()
    key = root / "etc/pingan/credentials/node-key"
    assert key.read_text() == a.signing_key and key.stat().st_mode & 0o777 == 0o600
    assert len(written) >= 4
    with pytest.raises(Exception, match="not a node bundle"):
        (tmp_path / "junk.tar.gz").write_bytes(b"junk")
        install_bundle(tmp_path / "junk.tar.gz", root)


def test_door_bundle_carries_the_block_key_and_a_unit_dropin(tmp_path: Path, fleet_broker) -> None:  # noqa: F811
    from hub.nodes.fleet import ensure_block_key

    fleet, port = fleet_broker.fleet, fleet_broker.port
    made = fleet.add("door-b01-01", kind="rental_door", grid="G07")
    key_file = tmp_path / "B01.block-key"
    key = ensure_block_key(key_file)
    assert ensure_block_key(key_file) == key  # the block's other doors get the same key
    cfg = node_config_for("door-b01-01", "rental_door", "G07", "Gate", None, None, f"mqtt://127.0.0.1:{port}")
    root = tmp_path / "root"
    install_bundle(write_bundle(made, cfg, tmp_path / "b", block_key=key), root)
    assert (root / "etc/pingan/credentials/block-key").read_text() == key
    assert "PINGAN_BLOCK_KEY" in (root / "etc/systemd/system/pingan-edge.service.d/block-key.conf").read_text()


def test_doctor_checks_a_door_relay_and_reader(tmp_path: Path, fleet_broker, monkeypatch) -> None:  # noqa: F811
    from edge.sim.reader import ReaderSimulator

    fleet, port = fleet_broker.fleet, fleet_broker.port
    made = fleet.add("door-b01-09", kind="rental_door")
    monkeypatch.setenv("PINGAN_NODE_KEY", made.signing_key)
    monkeypatch.setenv("PINGAN_MQTT_PASSWORD", made.mqtt_password)
    monkeypatch.setenv("PINGAN_BLOCK_KEY", "block-key-for-tests")
    sim = ReaderSimulator(enrolled=3).start()
    try:
        cfg = node_config_for("door-b01-09", "rental_door", "G01", "Gate", None, None, f"mqtt://127.0.0.1:{port}")
        cfg["pins"] = {"factory": "mock"}
        cfg["reader"] = {"port": sim.port}
        cfg["data_dir"] = str(tmp_path / "data")
        path = tmp_path / "door.yaml"
        path.write_text(yaml.safe_dump(cfg))
        watchdog, conf = tmp_path / "wd", tmp_path / "system.conf"
        watchdog.write_text("")
        conf.write_text("RuntimeWatchdogSec=14\n")
        asked: list[str] = []

        def no_click(question: str) -> bool:
            asked.append(question)
            return False

        found = {f.name: f for f in Doctor(path, watchdog_device=watchdog, system_conf=conf).run()}
        assert found["reader"].status == "ok" and "3 fingerprints" in found["reader"].detail
        assert found["pins"].status == "ok" and "camera" not in found
        found = {f.name: f for f in Doctor(path, watchdog_device=watchdog, system_conf=conf, confirm=no_click).run()}
        assert asked and found["pins"].status == "fail" and "lock_active_high" in found["pins"].fix
        sim.silent = True
        found = {f.name: f for f in Doctor(path, watchdog_device=watchdog, system_conf=conf).run()}
        assert found["reader"].status == "fail" and "TX/RX" in found["reader"].fix
    finally:
        sim.stop()
