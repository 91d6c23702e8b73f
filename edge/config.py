"""The node's config: one pydantic model, validated when the agent starts.

The example files in ``firmware_config/`` are checked against these models by the tests, so
what an installer copies is always valid.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edge.errors import ConfigError
from edge.protocol import NODE_ID_PATTERN
from edge.yamlconfig import load_yaml_model


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Location(_Section):
    lat: float = Field(ge=-90, le=90, description="Latitude in degrees (WGS84)")
    lon: float = Field(ge=-180, le=180, description="Longitude in degrees (WGS84)")


class NodeIdentity(_Section):
    id: str = Field(pattern=NODE_ID_PATTERN, description="Node id: lowercase letters, digits, '-'")
    kind: Literal["alarm_post", "rental_door"] = Field(description="What this node is")
    place: str = Field(default="", max_length=200, description="Where it stands, as staff say it")
    grid: str = Field(default="", max_length=32, description="The grid (网格) it belongs to")
    location: Location | None = Field(default=None, description="Position for the console's map")


class MqttSettings(_Section):
    url: str = Field(default="mqtt://127.0.0.1:1883", description="mqtt://host:port or mqtts://")
    username: str | None = Field(default=None, description="Broker user (defaults to the node id)")
    password_env: str = Field(default="PINGAN_MQTT_PASSWORD",
                              description="Environment variable (or credential file) with the password")
    ca_file: Path | None = Field(default=None, description="CA certificate for mqtts://")
    keepalive_s: int = Field(default=15, ge=5, le=300, description="MQTT keepalive in seconds")
    protocol: Literal["3.1.1", "5"] = Field(default="3.1.1", description="MQTT protocol version")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        u = urlparse(v)
        if u.scheme not in ("mqtt", "mqtts") or not u.hostname:
            raise ValueError("must look like mqtt://host:port or mqtts://host:port")
        return v

    @property
    def host(self) -> str:
        return urlparse(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        u = urlparse(self.url)
        return u.port or (8883 if u.scheme == "mqtts" else 1883)

    @property
    def tls(self) -> bool:
        return urlparse(self.url).scheme == "mqtts"


class Pins(_Section):
    factory: Literal["auto", "mock"] = Field(
        default="auto", description="'mock' uses gpiozero's MockFactory (simulated pins)")
    alarm_button: int = Field(default=17, ge=0, le=27, description="BCM pin of the one-key button")
    button_pull_up: bool = Field(default=True, description="Button wired to ground with pull-up")
    status_led: int = Field(default=27, ge=0, le=27, description="BCM pin of the status LED")
    siren: int = Field(default=22, ge=0, le=27, description="BCM pin of the siren/strobe relay")
    siren_active_high: bool = Field(default=True, description="Relay energised on a high level")
    tamper_switch: int | None = Field(default=23, ge=0, le=27,
                                      description="BCM pin of the enclosure switch (closed = shut)")


class AlarmSettings(_Section):
    debounce_ms: int = Field(default=50, ge=5, le=1000, description="Ignore edges closer than this")
    coalesce_window_s: float = Field(default=30, ge=1, le=600,
                                     description="Presses within this window fold into one alarm")
    stuck_after_s: float = Field(default=10, ge=2, le=600,
                                 description="A button held this long is reported stuck")
    receipt_timeout_s: float = Field(default=15, ge=2, le=300,
                                     description="No hub receipt by then: show 'not delivered'")
    siren_on_press: bool = Field(default=False, description="Sound the siren locally on a press")


class CameraSettings(_Section):
    source: str = Field(default="synthetic",
                        description="'synthetic', or a path to an image or video file")
    width: int = Field(default=640, ge=64, le=4096)
    height: int = Field(default=480, ge=48, le=4096)
    jpeg_quality: int = Field(default=80, ge=10, le=100)


class OutboxSettings(_Section):
    max_bytes: int = Field(default=64 * 1024 * 1024, ge=64 * 1024,
                           description="Bound on queued bytes; telemetry is evicted first, alarms never")
    resend_after_s: float = Field(default=10, ge=0.5, le=600,
                                  description="Resend an entry with no hub receipt after this")
    window: int = Field(default=64, ge=1, le=1000,
                        description="Messages handed to the broker but not yet PUBACKed")
    reserve_bytes: int = Field(default=1024 * 1024, ge=0,
                               description="Disk kept in reserve for alarms when the disk fills")


class SimSettings(_Section):
    control_socket: Path | None = Field(
        default=None,
        description="Unix socket for 'pingan-edge sim'; default $PINGAN_SIM_DIR/<node id>.sock")


class NodeConfig(_Section):
    node: NodeIdentity
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    pins: Pins = Field(default_factory=Pins)
    alarm: AlarmSettings = Field(default_factory=AlarmSettings)
    camera: CameraSettings = Field(default_factory=CameraSettings)
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    sim: SimSettings = Field(default_factory=SimSettings)
    heartbeat_s: float = Field(default=10, ge=1, le=3600, description="Heartbeat period")
    data_dir: Path = Field(default=Path("/var/lib/pingan"),
                           description="Where the outbox and state live (on the SD card)")
    key_env: str = Field(default="PINGAN_NODE_KEY",
                         description="Env variable or credential file with the command-signing key")

    @model_validator(mode="after")
    def _pins_distinct(self) -> NodeConfig:
        used = [("alarm_button", self.pins.alarm_button), ("status_led", self.pins.status_led),
                ("siren", self.pins.siren), ("tamper_switch", self.pins.tamper_switch)]
        seen: dict[int, str] = {}
        for name, pin in used:
            if pin is None:
                continue
            if pin in seen:
                raise ValueError(f"pins.{name} and pins.{seen[pin]} both use GPIO{pin}")
            seen[pin] = name
        return self

    @property
    def control_socket(self) -> Path:
        return self.sim.control_socket or sim_socket_path(self.node.id)

    def secret(self, name: str) -> str | None:
        """A secret from the environment or systemd's $CREDENTIALS_DIRECTORY, never the YAML."""
        if os.environ.get(name):
            return os.environ[name]
        cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
        if cred_dir:
            for candidate in (name, name.lower(), name.lower().replace("_", "-")):
                p = Path(cred_dir) / candidate
                if p.is_file():
                    return p.read_text().strip()
        return None

    def signing_key(self) -> bytes | None:
        value = self.secret(self.key_env)
        return value.encode() if value else None


def sim_socket_path(node_id: str) -> Path:
    """Where a simulated node listens for 'pingan-edge sim' (one folder per demo or test run)."""
    return Path(os.environ.get("PINGAN_SIM_DIR", "/tmp/pingan-sim")) / f"{node_id}.sock"


def load_node_config(path: str | os.PathLike[str]) -> NodeConfig:
    cfg = load_yaml_model(path, NodeConfig)
    if cfg.node.kind != "alarm_post":
        raise ConfigError(f"{path}: node.kind {cfg.node.kind!r} is not supported by this build yet")
    return cfg
