"""A bare MQTT client for tests that probe the broker's rules (ACL, TLS, certificates) directly."""

from __future__ import annotations

import ssl
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.link.mqtt import tls_context


def mqtt_connect(port: int, *, user: str | None = None, password: str | None = None, client_id: str = "",
                 ca: Path | None = None, cert: tuple[bytes, bytes] | None = None, tmp: Path | None = None,
                 wait_s: float = 5) -> tuple[mqtt.Client, int]:
    """Connect and wait for CONNACK; returns the client and its reason code, -1 when the TLS handshake or
    the connection was refused before any CONNACK. ``cert`` is (key, certificate) PEM, written to ``tmp``."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or f"c-{time.time_ns()}", protocol=mqtt.MQTTv311)
    if ca is not None:
        cert_path = None
        if cert is not None:
            assert tmp is not None, "a client certificate needs a directory to be written to"
            cert_path = tmp / f"client-{time.time_ns()}.crt"
            cert_path.write_bytes(cert[1])
        c.tls_set_context(tls_context(str(ca), str(cert_path) if cert_path else None, cert[0] if cert else None))
    if user:
        c.username_pw_set(user, password)
    result: dict[str, int] = {}
    done = threading.Event()

    def on_connect(client, userdata, flags, rc, props) -> None:
        result["rc"] = rc.value
        done.set()

    c.on_connect = on_connect
    try:
        c.connect("127.0.0.1", port)
    except (ssl.SSLError, OSError):
        return c, -1
    c.loop_start()
    done.wait(wait_s)
    return c, result.get("rc", -1)


def close(*clients: mqtt.Client) -> None:
    for c in clients:
        c.disconnect()
        c.loop_stop()
