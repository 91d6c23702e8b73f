"""Start a local MQTT broker on a free loopback port: mosquitto, or amqtt as a fallback.

Used by the demo and by the test suite, so both run against the same real server. The config
sizes the queues an alarm system needs: mosquitto drops messages silently past
``max_queued_messages`` (default 1000) for a disconnected persistent session, and holds at
most ``max_inflight_messages`` (default 20) unacknowledged QoS 1 messages per client, which
would throttle a hub that acknowledges only after its commit.

It also carries the size limits of the production config (``pingan-hub broker config``): a
packet over ``max_packet_size`` disconnects its sender as soon as its length header is read,
before the broker buffers it, so nothing larger can reach the hub's MQTT client either; the
queues are bounded in bytes as well as in messages.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from hub.errors import HubError

MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto")
MAX_QUEUED_MESSAGES = 200_000  # a 2,000-node district's backlog through a hub restart
MAX_INFLIGHT_MESSAGES = 1000  # lets the hub batch commits before acking
# Size limits. The contract's largest payloads are a snapshot or clip frame (256 KiB) and a command
# (64 KiB, a config.update's YAML at most 32 KiB): these leave room without letting one stolen node
# credential make the broker or the hub buffer hundreds of MB.
# ``max_packet_size`` rather than ``message_size_limit``: the latter drops a message only after reading
# it whole, and mosquitto 2.0 already asks for it to be replaced.
MAX_PACKET_BYTES = 1024 * 1024  # whole packet; a larger one disconnects its sender before it is read
MAX_INFLIGHT_BYTES = 64 * 1024 * 1024  # per client, unacknowledged: bounds what the hub holds before commit
MAX_QUEUED_BYTES = 256 * 1024 * 1024  # per client: 200,000 events of ~1 KB fit; nodes resend what is dropped


def size_limits() -> list[str]:
    """The limits every mosquitto we write carries (the test/demo broker and the production one)."""
    return [
        f"max_packet_size {MAX_PACKET_BYTES}",
        f"max_inflight_messages {MAX_INFLIGHT_MESSAGES}",
        f"max_inflight_bytes {MAX_INFLIGHT_BYTES}",
        f"max_queued_messages {MAX_QUEUED_MESSAGES}",
        f"max_queued_bytes {MAX_QUEUED_BYTES}",
    ]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def find_mosquitto() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((p for p in MOSQUITTO_PATHS if os.access(p, os.X_OK)), None)


def mosquitto_config(port: int, data_dir: Path, extra: str = "") -> str:
    lines = [
        f"listener {port} 127.0.0.1",
        "allow_anonymous true",
        "persistence true",
        f"persistence_location {data_dir}/",
        f"pid_file {data_dir}/mosquitto.pid",  # how the hub finds it to check its open-file limit
        "autosave_interval 1",
        *size_limits(),
        "set_tcp_nodelay true",  # without it Nagle + delayed ACK hold a snapshot back ~40 ms
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_dest stderr",
    ]
    if os.geteuid() == 0:
        # the test/demo broker only (loopback, anonymous, in pytest's 0700 tmp dirs, which the 'mosquitto'
        # user cannot read); the production config of `pingan-hub broker config` never runs as root
        lines.append("user root")
    return "\n".join(lines) + "\n" + extra


class Broker:
    """A broker subprocess; ``kind`` is 'mosquitto' or 'amqtt'.

    It holds one open file per client, so it runs with its soft open-file limit raised to the hard one (a
    shell's soft 1,024 would refuse the load bench's nodes past a thousand, silently); ``open_files`` sets
    another, e.g. a low one to show what a refused node looks like."""

    def __init__(self, data_dir: Path, port: int | None = None, kind: str | None = None,
                 extra_config: str = "", open_files: int | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.kind = kind or ("mosquitto" if find_mosquitto() else "amqtt")
        self.extra_config = extra_config
        self.open_files = open_files
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir / f"{self.kind}.log"

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        if self.kind == "mosquitto":
            exe = find_mosquitto()
            if exe is None:
                raise HubError("mosquitto is not installed (apt-get install -y mosquitto)")
            conf = self.data_dir / "mosquitto.conf"
            conf.write_text(mosquitto_config(self.port, self.data_dir, self.extra_config))
            return [exe, "-c", str(conf)]
        conf = self.data_dir / "amqtt.yaml"
        conf.write_text(
            "listeners:\n  default:\n    type: tcp\n"
            f"    bind: 127.0.0.1:{self.port}\n"
            "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n    allow_anonymous: true\n")
        return [sys.executable, "-m", "amqtt.scripts.broker_script", "-c", str(conf)]

    def start(self, timeout: float = 15.0) -> Broker:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self._command(), stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        ceiling = 1 << 20 if hard == resource.RLIM_INFINITY else hard  # the kernel's nr_open default
        soft = ceiling if self.open_files is None else min(self.open_files, ceiling)
        try:  # before it accepts its first client (it reads its config and opens its listeners first)
            resource.prlimit(self.proc.pid, resource.RLIMIT_NOFILE, (soft, hard))
        except OSError:  # exited at once: the loop below says why
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HubError(f"{self.kind} exited at start (code {self.proc.returncode}): "
                               f"{self.errors() or self.log_path.read_text()[-500:]}")
            if port_open("127.0.0.1", self.port):
                errors = self.errors()
                if errors:
                    self.stop()
                    raise HubError(f"{self.kind} reported errors: {errors}")
                return self
            time.sleep(0.02)
        self.stop()
        raise HubError(f"{self.kind} did not open port {self.port} within {timeout:.0f} s")

    def errors(self) -> str:
        """Any 'Error:' line the broker logged (a harness must not ignore them)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(line for line in text.splitlines() if "Error:" in line)

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful stop (mosquitto writes its persistence file on SIGTERM)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
