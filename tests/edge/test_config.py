"""Node configs: the shipped examples are valid; a bad file is one clear error, exit 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge.config import load_node_config
from edge.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_example_vision_config_is_valid() -> None:
    cfg = load_node_config(ROOT / "firmware_config" / "alarm_post_vision.example.yaml")
    assert cfg.vision is not None and cfg.vision.zones[0].loiter_s == 120 and cfg.vision.masks


def test_example_alarm_post_config_is_valid() -> None:
    cfg = load_node_config(ROOT / "firmware_config" / "alarm_post.example.yaml")
    assert cfg.node.id == "pole-07" and cfg.alarm.receipt_timeout_s == 15 and cfg.heartbeat_s == 10


@pytest.mark.parametrize("text, expected", [
    ("node:\n  id: Pole 7\n  kind: alarm_post\n", "node.id (line 2)"),
    ("node:\n  id: pole-1\n  kind: alarm_post\npins:\n  alarm_button: seventeen\n", "pins.alarm_button (line 5)"),
    ("node:\n  id: pole-1\n  kind: alarm_post\npins:\n  alarm_buton: 17\n", "pins.alarm_buton (line 5): unknown field"),
    ("node:\n  id: pole-1\n  kind: alarm_post\npins:\n  siren: 17\n", "both use GPIO17"),
    ("node:\n  id: pole-1\n  kind: toaster\n", "node.kind (line 3)"),
    ("node:\n  kind: alarm_post\n", "node.id (line 1): required field is missing"),
    ("node: [1, 2\n", "not valid YAML"),
    ("", "empty"),
    ("- a\n- b\n", "must be a mapping"),
    ("node:\n  id: pole-1\n  kind: alarm_post\nmqtt:\n  url: http://x\n", "mqtt.url (line 5)"),
])
def test_bad_config_names_field_and_line(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "node.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_node_config(path)
    assert expected in str(err.value)


def test_cli_reports_config_error_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "node.yaml"
    path.write_text("node:\n  id: pole-1\n  kind: alarm_post\nalarm:\n  debounce_ms: -4\n")
    for args in (["run", str(path)], ["check", str(path)], ["run", str(tmp_path / "missing.yaml")]):
        out = subprocess.run([sys.executable, "-m", "edge.cli", *args], capture_output=True, text=True, timeout=60)
        assert out.returncode == 2, out
        assert "Traceback" not in out.stderr and out.stderr.startswith("error: ")
    assert "alarm.debounce_ms (line 5)" in out.stderr or "no such config file" in out.stderr


def test_hub_settings_error_is_one_line(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PINGAN_MQTT_URL": "ftp://nowhere", "PINGAN_DATA_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "hub.cli", "serve"], capture_output=True, text=True, env=env,
                         timeout=60)
    assert out.returncode == 2 and "PINGAN_MQTT_URL" in out.stderr and "Traceback" not in out.stderr


def test_sim_press_without_a_node_says_what_to_do(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PINGAN_SIM_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "edge.cli", "sim", "press", "pole-99"], capture_output=True,
                         text=True, env=env, timeout=60)
    assert out.returncode == 1 and "no simulated node listens" in out.stderr and "Traceback" not in out.stderr


def test_example_rental_door_config_is_valid() -> None:
    cfg = load_node_config(ROOT / "firmware_config" / "rental_door.example.yaml")
    assert cfg.node.kind == "rental_door" and cfg.door is not None and cfg.reader is not None
    assert cfg.door.mode == "fail_secure" and cfg.door.unlock_s == 5 and cfg.door.held_open_s == 30
    assert cfg.door.lockout_after == 5 and cfg.door.lockout_s == 60
    assert cfg.reader.port == "/dev/serial0" and cfg.reader.baudrate == 57600 and cfg.reader.address == 0xFFFFFFFF
    assert cfg.wants_camera is False


_DOOR = "node:\n  id: door-1\n  kind: rental_door\n"
_DOOR_OK = _DOOR + "door:\n  lock_relay: 24\nreader:\n  port: /dev/serial0\n"


@pytest.mark.parametrize("text, expected", [
    (_DOOR, "needs the door and reader section(s)"),
    (_DOOR + "door: {}\n", "needs the reader section(s)"),
    ("node:\n  id: pole-1\n  kind: alarm_post\ndoor: {}\n", "door section is for rental_door nodes"),
    ("node:\n  id: pole-1\n  kind: alarm_post\nreader: {}\n", "reader section is for rental_door nodes"),
    (_DOOR_OK + "pins:\n  siren: 5\n", "pins.siren is an alarm-pole pin"),
    (_DOOR_OK + "alarm:\n  debounce_ms: 50\n", "alarm section is for alarm_post"),
    (_DOOR + "door:\n  lock_relay: 25\nreader: {}\n", "door.door_contact and door.lock_relay both use GPIO25"),
    (_DOOR + "door:\n  fire_input: 16\nreader: {}\n", "door.fire_input and door.exit_button both use GPIO16"),
    (_DOOR + "door:\n  mode: fail_open\nreader: {}\n", "door.mode (line 5)"),
    (_DOOR + "door:\n  unlock_s: 0\nreader: {}\n", "door.unlock_s (line 5)"),
    (_DOOR + "door: {}\nreader:\n  baudrate: 1200\n", "reader.baudrate (line 6)"),
    (_DOOR + "door: {}\nreader:\n  port: sim\n", "needs simulated pins"),
])
def test_bad_door_config(tmp_path: Path, text: str, expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    path = tmp_path / "node.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_node_config(path)
    assert expected in str(err.value)


def test_door_defaults_and_sim_reader(tmp_path: Path) -> None:
    path = tmp_path / "node.yaml"
    path.write_text(_DOOR + "pins: {factory: mock}\ndoor: {}\nreader: {port: sim}\n")
    cfg = load_node_config(path)
    assert cfg.door.unlock_s == 5 and cfg.door.lockout_s == 60 and cfg.reader.timeout == 1.0


def test_json_schema_in_firmware_config_is_in_sync() -> None:
    """firmware_config/node-config.schema.json is generated: `pingan-edge schema > firmware_config/...`."""
    import json

    from edge.cli import config_schema_text

    committed = (ROOT / "firmware_config" / "node-config.schema.json").read_text()
    assert committed == config_schema_text(), "regenerate: pingan-edge schema > firmware_config/node-config.schema.json"
    schema = json.loads(committed)
    assert {"node", "mqtt", "pins", "door", "reader", "vision"} <= set(schema["properties"])
