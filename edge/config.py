"""The node's config: one pydantic model, validated when the agent starts.

The example files in ``firmware_config/`` are checked against these models by the tests, so
what an installer copies is always valid.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edge.errors import ConfigError
from edge.protocol import NODE_ID_PATTERN
from edge.shared.yamlconfig import load_yaml_model, load_yaml_text
from edge.vision.config import VisionSettings

# A secret's name: an environment variable or a file directly in $CREDENTIALS_DIRECTORY, never a path
SECRET_NAME_PATTERN = r"^[A-Z][A-Z0-9_]*$"
_SECRET_NAME = re.compile(SECRET_NAME_PATTERN)

# Where a node connects and where its secrets come from: set on site by the installer's bundle
# (/etc/pingan/node.yaml), never by a pushed config.update (design.md, "Remote config never moves a
# node"): a push that could name another broker and the key's variable as its password would hand
# the node's command-signing key to whoever runs that broker.
SITE_FIELDS: tuple[str, ...] = (
    "mqtt.url", "mqtt.username", "mqtt.password_env", "mqtt.ca_file", "mqtt.client_cert",
    "mqtt.client_key_env", "key_env", "door.block_key_env", "data_dir",
)


def _secret_name(value: str) -> str:
    if not _SECRET_NAME.match(value):
        raise ValueError("a secret's name is an environment variable or credential name matching "
                         f"{SECRET_NAME_PATTERN} (e.g. PINGAN_NODE_KEY), never a path")
    return value


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
    client_cert: Path | None = Field(default=None, description=(
        "Client certificate from the hub's CA (a node added with --auth cert): the broker takes the node id "
        "from it and no password is used; needs mqtts://"))
    client_key_env: str = Field(default="PINGAN_MQTT_CLIENT_KEY", description=(
        "Env variable or credential file with the client certificate's private key (PEM)"))
    keepalive_s: int = Field(default=15, ge=5, le=300, description="MQTT keepalive in seconds")
    protocol: Literal["3.1.1", "5"] = Field(default="3.1.1", description="MQTT protocol version")

    @field_validator("password_env", "client_key_env")
    @classmethod
    def _secret_names(cls, v: str) -> str:
        return _secret_name(v)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        u = urlparse(v)
        if u.scheme not in ("mqtt", "mqtts") or not u.hostname:
            raise ValueError("must look like mqtt://host:port or mqtts://host:port")
        return v

    @model_validator(mode="after")
    def _cert_needs_tls(self) -> MqttSettings:
        if self.client_cert is not None and not self.tls:
            raise ValueError("client_cert needs TLS: use an mqtts:// url (the broker's certificate listener)")
        return self

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
    button_test_drive: int | None = Field(
        default=None, ge=0, le=27, description="BCM output driving the optocoupler across the button for the "
        "self-test's button loop (docs/selftest.md); unset = the button loop is skipped")
    siren_feedback: int | None = Field(
        default=None, ge=0, le=27, description="BCM input closed while the siren/strobe draws current "
        "(its feedback contact); unset = the siren check is skipped")


class AlarmSettings(_Section):
    debounce_ms: int = Field(default=50, ge=5, le=1000, description="Ignore edges closer than this")
    coalesce_window_s: float = Field(default=30, ge=1, le=600, description=(
        "Presses while the pole's alarm is open fold into it; its count is sent at once, then at most once "
        "per this window"))
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
    fps: float = Field(default=5, gt=0, le=30, description="Frames read per second (detection, burst, snapshots)")
    burst_s: float = Field(default=5, ge=0, le=30,
                           description="Seconds of frames before a press sent with the alarm (0: none)")


class OutboxSettings(_Section):
    max_bytes: int = Field(default=64 * 1024 * 1024, ge=64 * 1024,
                           description="Bound on queued bytes; telemetry is evicted first, alarms never")
    resend_after_s: float = Field(default=10, ge=0.5, le=600,
                                  description="Resend an entry with no hub receipt after this")
    window: int = Field(default=64, ge=1, le=1000,
                        description="Messages handed to the broker but not yet PUBACKed")
    reserve_bytes: int = Field(default=1024 * 1024, ge=0,
                               description="Disk kept in reserve for alarms when the disk fills")


class DoorSettings(_Section):
    """The door of a rental block: lock relay, contacts, and the rules for opening it."""

    lock_relay: int = Field(default=24, ge=0, le=27, description=(
        "BCM pin of the lock relay. Pick it by its boot pull (GPIO0-8 pull up, 9-27 pull down) and set "
        "its boot level in config.txt (gpio=N=op,dl or dh) so a booting Pi leaves the lock de-energised"))
    lock_active_high: bool = Field(default=True, description="Relay energised on a high level")
    mode: Literal["fail_secure", "fail_safe"] = Field(default="fail_secure", description=(
        "What the de-energised lock does: fail_secure stays locked without power (strike), fail_safe "
        "opens without power (maglock); the building code decides per door"))
    door_contact: int = Field(default=25, ge=0, le=27,
                              description="BCM pin of the door contact (closed to GND while the door is shut)")
    exit_button: int = Field(default=16, ge=0, le=27,
                             description="BCM pin of the request-to-exit button (to GND, pull-up)")
    fire_input: int = Field(default=20, ge=0, le=27,
                            description="BCM pin of the fire-alarm panel's contact (to GND while in alarm)")
    unlock_s: float = Field(default=5, ge=1, le=60, description="Seconds the lock stays released after a grant")
    held_open_s: float = Field(default=30, ge=5, le=3600, description="Door open this long: door.held_open")
    lockout_after: int = Field(default=5, ge=1, le=100,
                               description="Consecutive refused fingers before the reader is locked out")
    lockout_s: float = Field(default=60, ge=1, le=3600, description="How long a lockout ignores the reader")
    debounce_ms: int = Field(default=50, ge=5, le=1000, description="Ignore contact edges closer than this")
    block_key_env: str = Field(default="PINGAN_BLOCK_KEY", description=(
        "Env variable or credential file with the block key that encrypts fingerprint templates "
        "synced between the block's doors (the hub never holds it in clear)"))

    @field_validator("block_key_env")
    @classmethod
    def _secret_names(cls, v: str) -> str:
        return _secret_name(v)

    @property
    def pins(self) -> dict[str, int]:
        return {"door.lock_relay": self.lock_relay, "door.door_contact": self.door_contact,
                "door.exit_button": self.exit_button, "door.fire_input": self.fire_input}


class ReaderSettings(_Section):
    """The fingerprint reader (R30x / AS608 family) on a serial port."""

    port: str = Field(default="/dev/serial0", min_length=1, description=(
        "Serial port: /dev/serial0 (the Pi's UART), /dev/ttyUSB0 (USB adapter), or 'sim' for the "
        "built-in simulated reader (mock pins only)"))
    baudrate: int = Field(default=57600, ge=9600, le=115200, description="The reader's baud rate")
    address: int = Field(default=0xFFFFFFFF, ge=0, le=0xFFFFFFFF, description="The reader's module address")
    password: int = Field(default=0, ge=0, le=0xFFFFFFFF, description="The reader's password (factory 0)")
    timeout: float = Field(default=1.0, ge=0.05, le=10, description="Seconds to wait for one answer packet")
    poll_s: float = Field(default=0.05, ge=0.01, le=2, description="How often the glass is checked for a finger")
    enrol_wait_s: float = Field(default=15, ge=2, le=120,
                                description="How long an enrolment waits for the finger at each scan")
    sim_enrolled: int = Field(default=0, ge=0, le=300,
                              description="With port 'sim': fingers 0..N-1 pre-enrolled in slots 0..N-1")


class LiveSettings(_Section):
    """Live view and talk-back (WebRTC, signalled over the command channel; see docs/live-view.md)."""

    enabled: bool = Field(default=True, description="Answer live.start from the hub (alarm poles with a camera)")
    fps: float = Field(default=15, ge=1, le=30, description="Frames per second of the live video")
    bitrate_kbps: int = Field(default=800, ge=100, le=8000, description="Target H.264 bitrate of the live video")
    keyframe_s: float = Field(default=2, ge=0.5, le=10,
                              description="Seconds between keyframes (a new viewer also gets one at once)")
    max_session_s: float = Field(default=600, ge=10, le=7200,
                                 description="A live or talk session ends by itself after this long")
    keepalive_timeout_s: float = Field(default=20, ge=3, le=300, description=(
        "A session ends when the hub's live.keepalive has not come for this long (the viewer left)"))
    max_viewers: int = Field(default=4, ge=1, le=16, description="Concurrent sessions this node accepts")
    overlay_boxes: bool = Field(default=True, description=(
        "Draw the detector's boxes on the live picture (software encoder only; see live.encoder)"))
    encoder: Literal["auto", "picamera2", "software"] = Field(default="auto", description=(
        "H.264 encoder of the live view: 'picamera2' (the Pi camera's own H264Encoder: hardware on a Pi 4, "
        "no detection boxes), 'software' (libx264 on the CPU, boxes drawn) or 'auto' (picamera2 when "
        "camera.source is picamera2, else software)"))
    audio_in: str = Field(default="auto", pattern=r"^(auto|alsa:\S+|tone:\d+(\.\d+)?)$", description=(
        "The pole's microphone: 'alsa:<device>' (e.g. alsa:default, alsa:plughw:1,0), 'tone:<Hz>' "
        "(a test tone) or 'auto' (alsa:default when /dev/snd exists, else tone:440)"))
    audio_out: str = Field(default="auto", pattern=r"^(auto|alsa:\S+|analyse)$", description=(
        "The pole's speaker: 'alsa:<device>', 'analyse' (keep what arrives to measure it, off the Pi) "
        "or 'auto' (alsa:default when /dev/snd exists, else analyse)"))
    talk_prompt: Path | None = Field(default=None, description=(
        "Audio file played on the pole's speaker when the centre starts talking (e.g. a recorded "
        "'help is coming'); made locally, no cloud"))


class SelftestSettings(_Section):
    """The node's self-test (docs/selftest.md): daily, at ``start`` local time plus this node's fixed offset
    inside ``window_min`` (a hash of its id), so a district's poles do not test at once."""

    enabled: bool = Field(default=True, description="Run the self-test every day (selftest.run works anyway)")
    start: str = Field(default="03:00", description="Local time HH:MM the self-test window opens")
    window_min: int = Field(default=60, description="Minutes the window lasts; each node has its own minute in it")
    check_timeout_s: float = Field(default=10, ge=1, le=120, description="A check still running then has "
                                   "failed: timeout (it never holds up an alarm)")
    tone_hz: float = Field(default=1000, ge=200, le=7000, description="Frequency of the speaker test tone")
    tone_min_dbfs: float = Field(default=-40, ge=-90, le=0,
                                 description="Level the microphone must hear the tone at (dBFS)")
    disk_max_pct: float = Field(default=90, ge=10, le=100, description="Fullest the data disk may be")
    cpu_temp_max_c: float = Field(default=80, ge=40, le=110, description="Hottest the CPU may be")
    outbox_max: int = Field(default=100, ge=1, description="Most unsent events before the outbox check fails")
    retry_after_min: float = Field(default=10, ge=0, le=120, description=(
        "A failed scheduled self-test runs its failed checks again this many minutes later, once, before the "
        "hub raises node.fault (0: no retry; a passing one-off glitch is not a fault)"))
    uplink_limit_s: float = Field(default=5, ge=0.5, le=60, description=(
        "How long the uplink probe waits for the hub's receipt (kept under check_timeout_s)"))
    clock_skew_max_s: float = Field(default=5, gt=0, le=3600,
                                    description="Largest difference from the hub's clock that passes")

    @field_validator("start")
    @classmethod
    def _hh_mm(cls, v: str) -> str:
        hh, _, mm = v.partition(":")
        if not (hh.isdigit() and mm.isdigit() and len(mm) == 2 and int(hh) < 24 and int(mm) < 60):
            raise ValueError(f"selftest.start {v!r} is not a time of day HH:MM (e.g. 03:00) / "
                             f"自检开始时间 {v!r} 不是 HH:MM 格式（例如 03:00）")
        return v

    @field_validator("window_min")
    @classmethod
    def _window(cls, v: int) -> int:
        if not 1 <= v <= 720:
            raise ValueError(f"selftest.window_min {v} must be 1..720 minutes / 自检时间窗 {v} 分钟须在 1 到 720 之间")
        return v


class SimSettings(_Section):
    control_socket: Path | None = Field(
        default=None,
        description="Unix socket for 'pingan-edge sim'; default $PINGAN_SIM_DIR/<node id>.sock")


class UpdateSettings(_Section):
    """How a config pushed by the hub (config.update) is tried before it replaces the confirmed one."""

    trial_s: float = Field(default=60, ge=2, le=600, description=(
        "A pending config must bring the node up (broker connected, hub status received, loop ticking) "
        "within this many seconds of a start, or that start counts as failed"))
    settle_s: float = Field(default=5, ge=0.5, le=120,
                            description="How long the node must stay healthy before the config is confirmed")
    max_boots: int = Field(default=2, ge=1, le=5, description=(
        "Starts a pending config gets; one more and the node goes back to its last confirmed config"))


class NodeConfig(_Section):
    node: NodeIdentity
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    pins: Pins = Field(default_factory=Pins)
    alarm: AlarmSettings = Field(default_factory=AlarmSettings)
    camera: CameraSettings = Field(default_factory=CameraSettings)
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    sim: SimSettings = Field(default_factory=SimSettings)
    live: LiveSettings = Field(default_factory=LiveSettings)
    door: DoorSettings | None = Field(default=None, description="rental_door only: lock, contacts, timers")
    reader: ReaderSettings | None = Field(default=None, description="rental_door only: the fingerprint reader")
    vision: VisionSettings | None = Field(default=None, description="alarm_post: on-device detection, zones, "
                                          "privacy masks, camera tamper (see pingan-edge detect)")
    heartbeat_s: float = Field(default=10, ge=1, le=3600, description="Heartbeat period")
    data_dir: Path = Field(default=Path("/var/lib/pingan"),
                           description="Where the outbox and state live (on the SD card)")
    key_env: str = Field(default="PINGAN_NODE_KEY",
                         description="Env variable or credential file with the command-signing key")
    selftest: SelftestSettings = Field(default_factory=SelftestSettings,
                                       description="The daily self-test (docs/selftest.md)")
    updates: UpdateSettings = Field(default_factory=UpdateSettings,
                                    description="Trying a config pushed by the hub (config.update)")

    @field_validator("key_env")
    @classmethod
    def _secret_names(cls, v: str) -> str:
        return _secret_name(v)

    @model_validator(mode="after")
    def _kind_sections(self) -> NodeConfig:
        if self.node.kind == "rental_door":
            missing = [name for name in ("door", "reader") if getattr(self, name) is None]
            if missing:
                raise ValueError(f"a rental_door node needs the {' and '.join(missing)} section(s); "
                                 "copy them from firmware_config/rental_door.example.yaml")
            extra = sorted(self.pins.model_fields_set - {"factory"})
            if extra:
                raise ValueError(f"pins.{extra[0]} is an alarm-pole pin: a rental_door's pins are in the "
                                 "door section (pins takes only 'factory')")
            if "alarm" in self.model_fields_set:
                raise ValueError("the alarm section is for alarm_post nodes, not a rental_door")
        else:
            for name in ("door", "reader"):
                if getattr(self, name) is not None:
                    raise ValueError(f"the {name} section is for rental_door nodes, not a {self.node.kind}")
        return self

    @model_validator(mode="after")
    def _live_encoder_needs_picamera2(self) -> NodeConfig:
        if self.live.encoder == "picamera2" and self.camera.source.strip() != "picamera2":
            raise ValueError(f"live.encoder picamera2 needs camera.source: picamera2 (it is "
                             f"{self.camera.source!r}); use live.encoder: auto or software")
        return self

    @model_validator(mode="after")
    def _pins_distinct(self) -> NodeConfig:
        used: list[tuple[str, int | None]]
        if self.door is not None:
            used = list(self.door.pins.items())
        else:
            used = [("pins.alarm_button", self.pins.alarm_button), ("pins.status_led", self.pins.status_led),
                    ("pins.siren", self.pins.siren), ("pins.tamper_switch", self.pins.tamper_switch),
                    ("pins.button_test_drive", self.pins.button_test_drive),
                    ("pins.siren_feedback", self.pins.siren_feedback)]
        seen: dict[int, str] = {}
        for name, pin in used:
            if pin is None:
                continue
            if pin in seen:
                raise ValueError(f"{name} and {seen[pin]} both use GPIO{pin}")
            seen[pin] = name
        return self

    @property
    def wants_camera(self) -> bool:
        """Alarm poles always have a camera; a door only when its config names one."""
        return self.node.kind == "alarm_post" or "camera" in self.model_fields_set

    @property
    def control_socket(self) -> Path:
        return self.sim.control_socket or sim_socket_path(self.node.id)

    def secret(self, name: str) -> str | None:
        """A secret from the environment or systemd's $CREDENTIALS_DIRECTORY, never the YAML.

        The name is checked here again, not only in the model: joined onto the credentials folder
        unchecked, ``../../etc/hostname`` would read any file into the MQTT password."""
        if not _SECRET_NAME.match(name):
            raise ConfigError(f"secret name {name!r} is not an environment variable or credential name "
                              f"({SECRET_NAME_PATTERN}): refusing to read it")
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

    def block_key(self) -> bytes | None:
        """The block's template key (rental doors), from the environment or credentials like the signing key."""
        if self.door is None:
            return None
        value = self.secret(self.door.block_key_env)
        return value.encode() if value else None

    def site_value(self, field: str) -> object:
        """The value of one of :data:`SITE_FIELDS` (``None`` where its section is absent)."""
        obj: object = self
        for part in field.split("."):
            obj = getattr(obj, part, None) if obj is not None else None
        return obj

    def site_fields_set(self) -> list[str]:
        """Which of :data:`SITE_FIELDS` this config's file names (a pushed config may name none)."""
        named = []
        for field in SITE_FIELDS:
            section, _, name = field.rpartition(".")
            owner = getattr(self, section, None) if section else self
            if owner is not None and name in owner.model_fields_set:
                named.append(field)
        return named

    def with_site_fields_of(self, site: NodeConfig) -> NodeConfig:
        """This (pushed) config with every site field taken from ``site``, the installer's file."""
        mqtt = self.mqtt.model_copy(update={f.split(".")[1]: site.site_value(f)
                                            for f in SITE_FIELDS if f.startswith("mqtt.")})
        update: dict[str, object] = {"mqtt": mqtt, "key_env": site.key_env, "data_dir": site.data_dir}
        if self.door is not None and site.door is not None:
            update["door"] = self.door.model_copy(update={"block_key_env": site.door.block_key_env})
        return self.model_copy(update=update)


def site_field_changes(site: NodeConfig, pushed: NodeConfig) -> list[str]:
    """The site fields a pushed config names with a value other than the installer's."""
    return [f"{f} cannot be changed remotely ({site.site_value(f)!s} -> {pushed.site_value(f)!s})"
            for f in pushed.site_fields_set() if _same(site.site_value(f)) != _same(pushed.site_value(f))]


def _same(value: object) -> object:
    return Path(value).resolve() if isinstance(value, Path) else value


def pushed_config_from_text(text: str, site: NodeConfig, source: str = "config.update") -> NodeConfig:
    """A config pushed by the hub, as the node runs it: valid on its own, naming no site field with
    another value than the installer's, and with every site field taken from the installer's file."""
    pushed = node_config_from_text(text, source)
    changes = site_field_changes(site, pushed)
    if changes:
        raise ConfigError(f"{source}: " + "; ".join(changes) + " (where a node connects and where its secrets "
                          "come from are set on site: pingan-edge install with a new bundle)")
    return pushed.with_site_fields_of(site)


def sim_socket_path(node_id: str) -> Path:
    """Where a simulated node listens for 'pingan-edge sim' (one folder per demo or test run)."""
    return Path(os.environ.get("PINGAN_SIM_DIR", "/tmp/pingan-sim")) / f"{node_id}.sock"


def load_node_config(path: str | os.PathLike[str]) -> NodeConfig:
    return _node_checks(load_yaml_model(path, NodeConfig), path)


def node_config_from_text(text: str, source: str = "<config>") -> NodeConfig:
    """A node config from YAML (or JSON) text, as the hub and the node check a pushed config.update."""
    return _node_checks(load_yaml_text(text, NodeConfig, source), source)


def _node_checks(cfg: NodeConfig, path: str | os.PathLike[str]) -> NodeConfig:
    if cfg.reader is not None and cfg.reader.port == "sim" and cfg.pins.factory != "mock" \
            and os.environ.get("GPIOZERO_PIN_FACTORY", "").lower() != "mock":
        raise ConfigError(f"{path}: reader.port 'sim' (the simulated reader) needs simulated pins: "
                          "set pins.factory: mock", [{"loc": ["reader", "port"], "line": None, "type": "value_error",
                                                     "msg": "'sim' needs simulated pins: set pins.factory: mock"}])
    return cfg
