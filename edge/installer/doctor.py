"""``pingan-edge doctor``: checks a node as an installer would, with a fix for each failure.

Every check returns one Finding; the command prints them all (it never stops at the first
problem) and exits non-zero when any check failed, so it works in a provisioning script.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge.config import NodeConfig, load_node_config
from edge.errors import ConfigError, PinganError

MIN_FREE_BYTES = 200 * 1024 * 1024


@dataclass
class Finding:
    name: str
    status: str  # "ok" | "warn" | "fail"
    detail: str
    fix: str = ""

    def lines(self) -> list[str]:
        tag = {"ok": "OK  ", "warn": "WARN", "fail": "FAIL"}[self.status]
        out = [f"{tag} {self.name}: {self.detail}"]
        if self.fix and self.status != "ok":
            out.append(f"     fix: {self.fix}")
        return out


class Doctor:
    def __init__(self, config_path: Path, *, watchdog_device: Path = Path("/dev/watchdog"),
                 system_conf: Path = Path("/etc/systemd/system.conf"), min_free_bytes: int = MIN_FREE_BYTES,
                 broker_timeout: float = 5.0, confirm: Callable[[str], bool] | None = None) -> None:
        self.config_path = config_path
        self.watchdog_device = watchdog_device
        self.system_conf = system_conf
        self.min_free_bytes = min_free_bytes
        self.broker_timeout = broker_timeout
        self.confirm = confirm  # asks the installer, e.g. "did the lock click?"; None: do not ask
        self.cfg: NodeConfig | None = None

    def run(self) -> list[Finding]:
        findings = [self.check_config()]
        if self.cfg is None:
            return findings
        checks: list[Callable[[], Finding]] = [self.check_secrets]
        if self.cfg.node.kind == "rental_door":
            checks += [self.check_door_pins, self.check_reader]
        else:
            checks.append(self.check_pins)
        if self.cfg.wants_camera:
            checks.append(self.check_camera)
        if self.cfg.node.kind == "alarm_post" and self.cfg.live.enabled:
            checks.append(self.check_live)
        checks += [self.check_broker, self.check_disk, self.check_clock, self.check_watchdog]
        for check in checks:
            try:
                findings.append(check())
            except Exception as exc:  # noqa: BLE001 - a check that crashes is itself a finding
                findings.append(Finding(check.__name__.removeprefix("check_"), "fail", f"check crashed: {exc}",
                                        "report this with the output of pingan-edge doctor -v"))
        return findings

    def check_config(self) -> Finding:
        try:
            self.cfg = load_node_config(self.config_path)
        except ConfigError as exc:
            return Finding("config", "fail", str(exc), f"edit {self.config_path} (see firmware_config/*.example.yaml)")
        from edge.agent.configstore import ConfigStore

        # after a config.update the agent runs the confirmed remote config: check that one
        self.cfg, in_effect = ConfigStore(self.config_path, self.cfg.data_dir).in_effect(self.cfg)
        return Finding("config", "ok", f"{self.config_path} is valid ({self.cfg.node.id}, {self.cfg.node.kind}); "
                                       f"in effect: {in_effect}")

    def check_secrets(self) -> Finding:
        cfg = self._cfg
        mqtt_secret = cfg.mqtt.client_key_env if cfg.mqtt.client_cert else cfg.mqtt.password_env
        names = [cfg.key_env, mqtt_secret] + ([cfg.door.block_key_env] if cfg.door else [])
        missing = [name for name in names if not cfg.secret(name)]
        if missing:
            return Finding("secrets", "fail", f"not set: {', '.join(missing)}",
                           "install the node bundle (pingan-edge install BUNDLE) or set them in the environment")
        return Finding("secrets", "ok", "command-signing key and MQTT password are present")

    def check_pins(self) -> Finding:
        from edge.hw.gpio import AlarmPostPins

        cfg = self._cfg
        try:
            pins = AlarmPostPins(cfg.pins)
        except PinganError as exc:
            return Finding("pins", "fail", str(exc), "check pins.* in the config and that no other program uses them; "
                           f"draw the header: pingan-edge wiring {self.config_path} --svg wiring.svg")
        try:
            if pins.button_pressed:
                return Finding("pins", "fail", f"alarm button on GPIO{cfg.pins.alarm_button} reads pressed at rest",
                               "check the button wiring (normally open, to GND; pingan-edge wiring "
                               f"{self.config_path} shows its pin) or a jammed button")
            pins.set_siren(True)
            energised = bool(pins.siren.value)
            pins.set_siren(False)
            if not energised or pins.siren.value:
                return Finding("pins", "fail", "siren relay output did not follow", "check the relay board power")
            kind = "simulated (MockFactory)" if pins.mock else "real"
            return Finding("pins", "ok", f"{kind} pins open; button at rest; siren relay toggles")
        finally:
            pins.close()

    def check_door_pins(self) -> Finding:
        from edge.hw.door_pins import DoorPins

        cfg = self._cfg
        assert cfg.door is not None
        try:
            pins = DoorPins(cfg.door, cfg.pins.factory)
        except PinganError as exc:
            return Finding("pins", "fail", str(exc), "check door.* pins in the config and that nothing else uses them; "
                           f"draw the header: pingan-edge wiring {self.config_path} --svg wiring.svg")
        try:
            pins.set_locked(False)
            released = pins.relay.value
            clicked = self.confirm("did the lock release (click) just now?") if self.confirm else None
            pins.set_locked(True)
            pins.de_energise()
            if released == pins.relay.value and not pins.mock:
                return Finding("pins", "fail", "the lock relay output did not change", "check the relay board")
            if clicked is False:
                return Finding("pins", "fail", f"the lock on GPIO{cfg.door.lock_relay} did not click",
                               "check the relay board's power and the lock wiring; lock_active_high may be wrong")
            asked = " and the installer heard it" if clicked else ""
            return Finding("pins", "ok", f"lock relay on GPIO{cfg.door.lock_relay} toggles{asked}; "
                           f"left in its de-energised ({cfg.door.mode}) state")
        finally:
            pins.close()

    def check_reader(self) -> Finding:
        from edge.hw.fingerprint import FingerprintReader

        cfg = self._cfg
        rc = cfg.reader
        assert rc is not None
        if rc.port == "sim":
            return Finding("reader", "ok", "simulated reader (reader.port: sim)")
        try:
            reader = FingerprintReader.open(rc.port, baudrate=rc.baudrate, timeout=rc.timeout, address=rc.address,
                                            password=rc.password)
        except PinganError as exc:
            return Finding("reader", "fail", str(exc), "check reader.port, enable_uart=1 and the dialout group "
                           "(firmware_config/README.md)")
        try:
            reader.verify_password()
            stored = reader.count()
        except PinganError as exc:
            return Finding("reader", "fail", f"the reader on {rc.port} does not answer properly: {exc}",
                           "check TX/RX are crossed, the reader's 3.3 V supply and reader.baudrate/password")
        finally:
            reader.close()
        return Finding("reader", "ok", f"{rc.port} answers; {stored} fingerprints stored")

    def check_camera(self) -> Finding:
        from edge.hw.camera import open_camera

        cfg = self._cfg
        try:
            camera = open_camera(cfg.camera.source, cfg.camera.width, cfg.camera.height, cfg.node.id)
        except PinganError as exc:
            return Finding("camera", "fail", str(exc), "check camera.source and the cable / stream address")
        try:
            frames = [camera.read() for _ in range(3)]
        finally:
            camera.close()
        if any(f is None for f in frames):
            return Finding("camera", "fail", "the camera opened but delivered no frames",
                           "check the ribbon cable or stream; alarms will go without a picture")
        h, w = frames[0].shape[:2]
        return Finding("camera", "ok", f"{cfg.camera.source}: frames of {w}x{h}")

    def check_live(self) -> Finding:
        """Live view: WebRTC and the H.264 encoder import, the talk-back microphone and speaker open."""
        from edge.live.checks import check_live_view

        status, detail, fix = check_live_view(self._cfg.live, self._cfg.camera.source)
        return Finding("live", status, detail, fix)

    def check_broker(self) -> Finding:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        cfg = self._cfg
        mq = cfg.mqtt
        user = mq.username or cfg.node.id
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{cfg.node.id}-doctor", protocol=mqtt.MQTTv311)
        if mq.client_cert is None:
            client.username_pw_set(user, cfg.secret(mq.password_env))
        if mq.tls:
            from edge.link.mqtt import pem_bytes, tls_context

            try:
                client.tls_set_context(tls_context(str(mq.ca_file) if mq.ca_file else None,
                                                   str(mq.client_cert) if mq.client_cert else None,
                                                   pem_bytes(cfg.secret(mq.client_key_env))))
            except PinganError as exc:
                return Finding("broker", "fail", str(exc), "reinstall the node bundle (ca.crt, client certificate)")
        result: dict[str, object] = {}
        done = threading.Event()

        def on_connect(c, userdata, flags, rc, props) -> None:
            result["rc"] = rc
            done.set()

        client.on_connect = on_connect
        try:
            client.connect(mq.host, mq.port, keepalive=10)
        except (OSError, ValueError) as exc:
            return Finding("broker", "fail", f"cannot reach {mq.host}:{mq.port}: {exc}",
                           "check the network, the broker address in mqtt.url and the hub's firewall")
        client.loop_start()
        try:
            if not done.wait(self.broker_timeout):
                return Finding("broker", "fail", f"{mq.host}:{mq.port} did not answer the MQTT handshake",
                               "check that the address is the broker's MQTT port (and TLS for mqtts://)")
            rc = result["rc"]
            if getattr(rc, "is_failure", False):
                return Finding("broker", "fail", f"broker refused user {user}: {rc}",
                               "the MQTT password or certificate is wrong or the node was removed: "
                               "reinstall its bundle")
            return Finding("broker", "ok", f"connected to {mq.url} as {user}")
        finally:
            client.disconnect()
            client.loop_stop()

    def check_disk(self) -> Finding:
        cfg = self._cfg
        path = cfg.data_dir if cfg.data_dir.exists() else cfg.data_dir.parent
        while not path.exists():
            path = path.parent
        free = shutil.disk_usage(path).free
        if free < self.min_free_bytes:
            return Finding("disk", "fail", f"only {free // 2**20} MiB free under {path}",
                           "free space on the SD card (old logs: journalctl --vacuum-size=50M)")
        if not os.access(path, os.W_OK):
            return Finding("disk", "fail", f"{path} is not writable",
                           f"create {cfg.data_dir} owned by the agent's user")
        return Finding("disk", "ok", f"{free // 2**20} MiB free under {path}")

    def check_clock(self) -> Finding:
        if shutil.which("timedatectl"):
            out = subprocess.run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"], capture_output=True,
                                 text=True, timeout=5)
            if out.returncode == 0 and out.stdout.strip() == "yes":
                return Finding("clock", "ok", "synchronised (NTP)")
            if out.returncode == 0:
                return Finding("clock", "fail", "the clock is not synchronised",
                               "point systemd-timesyncd or chrony at the hub box (it serves NTP) and wait a minute")
        if Path("/run/systemd/timesync/synchronized").exists():
            return Finding("clock", "ok", "synchronised (systemd-timesyncd)")
        return Finding("clock", "warn", f"cannot tell whether the clock is synchronised (now {time.ctime()})",
                       "install systemd-timesyncd or chrony and point it at the hub box")

    def check_watchdog(self) -> Finding:
        if not self.watchdog_device.exists():
            return Finding("watchdog", "fail", f"{self.watchdog_device} is missing: no hardware watchdog",
                           "add dtparam=watchdog=on to /boot/firmware/config.txt and reboot")
        conf = self.system_conf.read_text() if self.system_conf.exists() else ""
        if not any(line.strip().startswith("RuntimeWatchdogSec=") for line in conf.splitlines()):
            return Finding("watchdog", "fail", "the device exists but systemd does not feed it",
                           f"set RuntimeWatchdogSec=14 in {self.system_conf} (the Pi's limit is about 15 s)")
        return Finding("watchdog", "ok", "hardware watchdog armed by systemd")

    @property
    def _cfg(self) -> NodeConfig:
        assert self.cfg is not None
        return self.cfg
