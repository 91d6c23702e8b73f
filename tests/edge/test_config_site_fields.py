"""Red-team finding 1 (issue 16): a pushed config.update must never move a node or read its secrets
from elsewhere. Where a node connects (broker URL, username, CA and certificate files) and where its
secrets come from (every ``*_env`` field, ``data_dir``) are site fields: the hub refuses a push that
names them (422, each field with its line), and the node refuses one that changes them and takes
them from the installer's file (the e2e half is in tests/e2e/test_config_update.py)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from fastapi.testclient import TestClient
from pydantic import ValidationError

from edge.agent.configstore import ConfigStore
from edge.config import SITE_FIELDS, NodeConfig, load_node_config, pushed_config_from_text
from edge.errors import ConfigError
from hub.app import create_app
from hub.config import load_settings
from hub.store.schema import commands

SITE = {"node": {"id": "door-01", "kind": "rental_door"}, "pins": {"factory": "mock"},
        "mqtt": {"url": "mqtts://hub.district.lan:8883", "username": "door-01", "password_env": "PINGAN_MQTT_PASSWORD"},
        "door": {"block_key_env": "PINGAN_BLOCK_KEY"}, "reader": {"port": "sim"}, "key_env": "PINGAN_NODE_KEY"}


@pytest.fixture()
def site(tmp_path: Path) -> tuple[Path, NodeConfig]:
    path = tmp_path / "node.yaml"
    path.write_text(yaml.safe_dump({**SITE, "data_dir": str(tmp_path / "data")}))
    return path, load_node_config(path)


def _push(**changes) -> str:
    cfg = {"node": {"id": "door-01", "kind": "rental_door", "place": "Block 7"}, "pins": {"factory": "mock"},
           "door": {"unlock_s": 3}, "reader": {"port": "sim"}}
    for key, value in changes.items():
        cfg.setdefault(key, {}).update(value) if isinstance(value, dict) else cfg.__setitem__(key, value)
    return yaml.safe_dump(cfg)


def test_a_push_takes_every_site_field_from_the_installers_file(site) -> None:
    _, base = site
    cfg = pushed_config_from_text(_push(), base)
    assert cfg.door.unlock_s == 3 and cfg.node.place == "Block 7"  # what the push may change
    for field in SITE_FIELDS:  # not the defaults: the site's own values
        assert cfg.site_value(field) == base.site_value(field), field
    assert cfg.mqtt.url == "mqtts://hub.district.lan:8883" and cfg.mqtt.username == "door-01"


@pytest.mark.parametrize("change, field", [
    ({"mqtt": {"url": "mqtt://203.0.113.9:1883"}}, "mqtt.url"),
    ({"mqtt": {"password_env": "PINGAN_NODE_KEY"}}, "mqtt.password_env"),
    ({"mqtt": {"username": "pole-02"}}, "mqtt.username"),
    ({"mqtt": {"client_key_env": "PINGAN_NODE_KEY"}}, "mqtt.client_key_env"),
    ({"key_env": "PINGAN_MQTT_PASSWORD"}, "key_env"),
    ({"door": {"block_key_env": "PINGAN_NODE_KEY"}}, "door.block_key_env"),
    ({"data_dir": "/tmp/elsewhere"}, "data_dir"),
])
def test_the_node_refuses_a_push_that_changes_a_site_field(site, change, field) -> None:
    _, base = site
    with pytest.raises(ConfigError, match=rf"{field} cannot be changed remotely"):
        pushed_config_from_text(_push(**change), base)


def test_the_same_value_is_harmless(site) -> None:
    _, base = site
    cfg = pushed_config_from_text(_push(mqtt={"url": base.mqtt.url}), base)
    assert cfg.mqtt.url == base.mqtt.url


@pytest.mark.parametrize("name", ["../../../etc/hostname", "/etc/shadow", "pingan_node_key", "KEY/../X", "", "1KEY"])
def test_secret_names_are_names_never_paths(tmp_path: Path, monkeypatch, name: str) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    (tmp_path / "hostname").write_text("a file outside the credentials folder\n")
    with pytest.raises(ValidationError, match="never a path"):
        NodeConfig.model_validate({"node": {"id": "pole-01", "kind": "alarm_post"}, "mqtt": {"password_env": name}})
    cfg = NodeConfig.model_validate({"node": {"id": "pole-01", "kind": "alarm_post"}})
    with pytest.raises(ConfigError, match="refusing to read it"):
        cfg.secret("../hostname")  # the check holds in secret() too, not only in the model


def test_a_pending_file_that_moves_the_node_is_rolled_back_at_start(tmp_path: Path, site) -> None:
    """A pending config left by an older agent (or written by hand) is checked again at start."""
    base_path, base = site
    store = ConfigStore(base_path, base.data_dir)
    store.stage(_push(mqtt={"url": "mqtt://203.0.113.9:1883"}), "cmd-evil")
    boot = store.boot(base)
    assert boot.trial is None and boot.cfg.mqtt.url == base.mqtt.url
    [(kind, data)] = boot.reports
    assert kind == "config.rolled_back" and "mqtt.url cannot be changed remotely" in data["reason"]


def test_a_confirmed_config_keeps_the_site_fields_of_the_installers_file(tmp_path: Path, site) -> None:
    base_path, base = site
    store = ConfigStore(base_path, base.data_dir)
    store.stage(_push(), "cmd-1")
    assert store.boot(base).trial is not None
    store.promote()
    again = store.boot(base)
    assert again.cfg.door.unlock_s == 3 and again.cfg.mqtt.url == base.mqtt.url and again.cfg.key_env == base.key_env


# --- the hub: 422 naming the fields, nothing signed or sent -----------------------------------
GOOD = "node:\n  id: pole-01\n  kind: alarm_post\n  place: Market\nheartbeat_s: 5\n"


@pytest.fixture()
def hub(tmp_path: Path):
    app = create_app(load_settings(data_dir=tmp_path, mqtt_enabled=False))
    state = app.state.hub
    state.auth.add_user("li", "installer-password", "installer")
    state.service.register_node("pole-01", grid="G01")
    with TestClient(app) as client:
        token = client.post("/api/login", json={"username": "li", "password": "installer-password"}).json()["token"]
        client.cookies.clear()
        yield SimpleNamespace(state=state, client=client, heads={"Authorization": f"Bearer {token}"})


def test_the_hub_refuses_an_installers_push_that_would_move_the_node(hub) -> None:
    state, client, h = hub.state, hub.client, hub.heads
    theft = GOOD + "mqtt:\n  url: mqtt://203.0.113.9:1883\n  password_env: PINGAN_NODE_KEY\nkey_env: PINGAN_X\n"
    r = client.post("/api/nodes/pole-01/config", json={"yaml": theft}, headers=h)
    assert r.status_code == 422, r.text
    problems = {".".join(p["loc"]): p for p in r.json()["detail"]}
    assert problems["mqtt.url"]["line"] == 7 and problems["mqtt.password_env"]["line"] == 8
    assert problems["key_env"]["line"] == 9
    assert "set on site" in problems["mqtt.url"]["msg"] and "pingan-edge install" in problems["mqtt.url"]["msg"]
    r = client.post("/api/nodes/pole-01/config", json={"config": {
        "node": {"id": "pole-01", "kind": "alarm_post"}, "mqtt": {"ca_file": "/tmp/evil-ca.pem"}}}, headers=h)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["mqtt", "ca_file"], r.text
    r = client.post("/api/nodes/pole-01/config", json={"yaml": GOOD + "mqtt:\n  password_env: ../../../etc/hostname\n"},
                    headers=h)
    assert r.status_code == 422, r.text
    with state.engine.connect() as conn:
        assert conn.execute(commands.select()).all() == []  # nothing was signed or sent
    assert client.post("/api/nodes/pole-01/config", json={"yaml": GOOD + "mqtt:\n  keepalive_s: 30\n"},
                       headers=h).status_code in (202, 503)  # the rest of mqtt stays pushable (503: no broker here)
