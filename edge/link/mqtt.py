"""The node's MQTT connection (paho-mqtt 2.x), handing everything to the node's asyncio loop.

paho runs its network loop in its own thread; each callback only schedules work on the loop
with ``call_soon_threadsafe``, so all node state has a single owner. The retained ``status``
topic carries birth and last will, and paho reconnects by itself with a capped backoff.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge import __version__
from edge.errors import LinkError
from edge.protocol import NodeStatus, Topics, utcnow
from edge.shared.sockopts import nodelay

log = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes], None]


def pem_bytes(text: str | None) -> bytes | None:
    """A PEM secret as NodeConfig.secret reads it (stripped), with its final newline back."""
    return (text.strip() + "\n").encode() if text else None


def tls_context(ca_file: str | None, client_cert: str | None = None, client_key: bytes | None = None) -> ssl.SSLContext:
    """TLS to the broker, verified against the hub's CA; with a client certificate when given. The key
    comes from the environment or $CREDENTIALS_DIRECTORY as PEM bytes and is handed to OpenSSL through
    an anonymous memory file, so it is never written to disk again."""
    try:
        ctx = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
    except (OSError, ssl.SSLError) as exc:
        raise LinkError(f"cannot load the broker's CA {ca_file}: {exc}") from None
    if client_cert:
        if not client_key:
            raise LinkError(f"no private key for the client certificate {client_cert}: install the node bundle")
        fd = os.memfd_create("pingan-mqtt-client-key", os.MFD_CLOEXEC)
        try:
            os.write(fd, client_key)
            ctx.load_cert_chain(client_cert, f"/proc/self/fd/{fd}")
        except (OSError, ssl.SSLError) as exc:
            raise LinkError(f"cannot use the client certificate {client_cert} with its key: {exc}") from None
        finally:
            os.close(fd)
    return ctx


class NodeLink:
    def __init__(self, loop: asyncio.AbstractEventLoop, node_id: str, kind: str, *, host: str, port: int,
                 username: str | None = None, password: str | None = None, tls_ca: str | None = None,
                 tls: bool = False, keepalive: int = 15, protocol: str = "3.1.1",
                 client_cert: str | None = None, client_key: bytes | None = None) -> None:
        self.loop = loop
        self.node_id = node_id
        self.kind = kind
        self.host, self.port, self.keepalive = host, port, keepalive
        self.connected = False
        self.on_message: MessageHandler = lambda topic, payload: None
        self.on_connected: Callable[[], None] = lambda: None
        self.on_disconnected: Callable[[], None] = lambda: None
        proto = mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311
        kwargs: dict[str, Any] = {"client_id": node_id, "protocol": proto}
        if proto == mqtt.MQTTv311:
            kwargs["clean_session"] = False  # commands queued while we were away still arrive
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, **kwargs)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        if username and not (client_cert and password is None):  # a certificate login needs no user
            self.client.username_pw_set(username, password)
        if tls:
            self.client.tls_set_context(tls_context(tls_ca, client_cert, client_key))
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.will_set(Topics.status(node_id), self._status("offline"), qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_socket_open = nodelay

    def _status(self, state: str) -> bytes:
        return NodeStatus(state=state, kind=self.kind, version=__version__, ts=utcnow()).to_bytes()  # type: ignore[arg-type]

    # --- paho thread -> loop ---------------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any,
                    properties: Any) -> None:
        if reason_code.is_failure:
            log.error("broker %s:%d refused the connection: %s (check the node's MQTT username "
                      "and password)", self.host, self.port, reason_code)
            return
        client.publish(Topics.status(self.node_id), self._status("online"), qos=1, retain=True)
        client.subscribe(list(Topics.node_subscriptions(self.node_id)))
        self.loop.call_soon_threadsafe(self._set_connected, True)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason_code: Any,
                       properties: Any) -> None:
        self.loop.call_soon_threadsafe(self._set_connected, False)

    def _set_connected(self, up: bool) -> None:
        was = self.connected
        self.connected = up
        if up and not was:
            log.info("connected to broker %s:%d", self.host, self.port)
            self.on_connected()
        elif was and not up:
            log.warning("lost the broker %s:%d; paho will reconnect", self.host, self.port)
            self.on_disconnected()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self.loop.call_soon_threadsafe(self.on_message, msg.topic, bytes(msg.payload))

    # --- loop side -------------------------------------------------------------------------
    def start(self) -> None:
        self.client.connect_async(self.host, self.port, keepalive=self.keepalive)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> int | None:
        """Hand a message to paho; returns its mid, or None when not connected."""
        if not self.connected:
            return None
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return None
        return info.mid

    def stop(self, say_offline: bool = True) -> None:
        """Say goodbye (retained offline) and stop; disconnect before loop_stop (paho's fast path).

        ``say_offline=False`` for a planned restart (config.update): the retained status stays online
        and no node.offline alarm is raised for a node back in seconds; a node that does not come back
        is noticed by the hub's heartbeat timeout."""
        try:
            if self.connected and say_offline:
                self.client.publish(Topics.status(self.node_id), self._status("offline"), qos=1,
                                    retain=True).wait_for_publish(timeout=2)
        except (RuntimeError, ValueError):
            pass
        self.client.disconnect()
        self.client.loop_stop()
