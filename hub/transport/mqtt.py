"""The hub's one broker connection, behind a small seam that ingest and the services share.

Why a seam: ingest, alarm commands, door commands, live video and Home Assistant all publish, and
ingest acknowledges what it committed; they hold a :class:`Transport` and never a paho client, so a
test hands them a fake (no broker, batches fed by hand) instead of monkeypatching a client, and the
broker's rules live in one place (Frigate's Communicator plays the same part).

What this connection does for the hub (design.md, "The hub's MQTT client"): client id
``pingan-hub-<replica>``; subscriptions made again on every connect; messages acknowledged only
when ingest says they are committed (``manual_ack_set``); a retained hub status with a last will;
a replica that sees another replica's will says "online" again.

Sizes: paho reads each packet whole before ``on_message``, and MQTT 3.1.1 cannot tell the broker a
maximum, so the real bound on what this process buffers is the broker's ``max_packet_size`` (and
``max_inflight_bytes`` for what waits for a commit; hub/transport/broker.py). A payload larger than
anything a node may send is refused here, before it is copied or queued.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import ValidationError

from edge.protocol import MAX_SNAPSHOT_BYTES, HubStatus, Topics
from edge.shared.sockopts import nodelay
from hub.config import HubSettings
from hub.runtime import metrics
from hub.store.engine import now_utc

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Received:
    """A message from a node, as the transport hands it over (``mid`` to acknowledge it after the commit)."""

    topic: str
    payload: bytes
    mid: int
    qos: int


class Transport(Protocol):
    """What ingest and the services need of the broker connection."""

    connected: bool
    connected_since: float  # time.monotonic() of the last (re)connection

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> bool: ...
    def ack(self, mid: int, qos: int) -> None: ...
    def start(self, on_message: Callable[[Received], None]) -> None: ...
    def stop(self) -> None: ...


class MqttTransport:
    """paho-mqtt, one client per hub process."""

    def __init__(self, settings: HubSettings) -> None:
        self.settings = settings
        self.connected = False
        self.connected_since = time.monotonic()
        self._stopping = False
        self._on_message: Callable[[Received], None] = lambda msg: None
        # replicas use clean sessions: a dead replica's share goes to the others, the nodes' resends cover
        # what it had in flight (design.md); one hub keeps its session so nothing queued is lost
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pingan-hub-{settings.replica}",
                                  clean_session=bool(settings.share_group), protocol=mqtt.MQTTv311)
        self.client.manual_ack_set(True)
        self.client.max_inflight_messages_set(1000)
        if settings.mqtt_username:
            self.client.username_pw_set(settings.mqtt_username, settings.mqtt_password)
        if settings.mqtt_url.startswith("mqtts"):
            self.client.tls_set()
        self.client.will_set(Topics.HUB_STATUS, HubStatus(state="offline").to_bytes(), qos=1, retain=True)
        # one client: retry often. After a broker restart the nodes are back within 1-3 s and their presses
        # wait at the broker until the hub is; with retries every 1-2 s a press waited up to 2 s for it
        self.client.reconnect_delay_set(0.25, 0.5)  # type: ignore[arg-type]  # paho takes float seconds
        self.client.on_connect = self._connected
        self.client.on_disconnect = self._disconnected
        self.client.on_message = self._message
        self.client.on_socket_open = nodelay

    # --- paho thread -----------------------------------------------------------------------------
    def _connected(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if rc.is_failure:
            log.error("broker refused the hub: %s (check PINGAN_MQTT_USERNAME/PASSWORD)", rc)
            return
        self.connected_since = time.monotonic()  # before `connected`: the writer reads both, unlocked
        self.connected = True
        client.subscribe(Topics.hub_subscriptions(self.settings.share_group or None))
        self._say("online")
        log.info("hub connected to broker %s", self.settings.mqtt_url)

    def _disconnected(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self.connected = False
        log.warning("hub lost the broker (%s); reconnecting", rc)

    def _message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if len(msg.payload) > MAX_SNAPSHOT_BYTES:  # the largest a node may send: refused before any copy
            self.ack(msg.mid, msg.qos)
            metrics.rejected.labels("oversized").inc()
            log.warning("rejected message on %s: oversized (%d bytes)", msg.topic[:120], len(msg.payload))
            return
        if msg.topic == Topics.HUB_STATUS:  # replicas only: another replica's last will
            self._hub_status(msg)
            return
        self._on_message(Received(msg.topic, bytes(msg.payload), msg.mid, msg.qos))

    def _hub_status(self, msg: mqtt.MQTTMessage) -> None:
        """A dead replica's will says the hub is offline while this one still serves: say online again,
        or nodes would hold their resends (design.md) until some replica restarts."""
        self.ack(msg.mid, msg.qos)
        try:
            offline = HubStatus.model_validate_json(msg.payload).state == "offline"
        except ValidationError:
            return
        if offline and self.connected and not self._stopping:
            log.info("another replica went away; hub status set online again by %s", self.settings.replica)
            self._say("online")

    def _say(self, state: Literal["online", "offline"]) -> mqtt.MQTTMessageInfo:
        """The hub's retained status (its last will says offline when it dies without saying so)."""
        return self.client.publish(Topics.HUB_STATUS, HubStatus(state=state, ts=now_utc()).to_bytes(), qos=1,
                                   retain=True)

    def resubscribe_statuses(self) -> None:
        """Subscribe to node statuses again: the broker then hands over every retained status anew. A replica
        that has just become the leader calls it: statuses are stored by the leader only, and those that came
        while the old leader was dying (or none led) would otherwise wait for each node's next reconnect."""
        if self.connected:
            self.client.subscribe([sub for (channel, _), sub in zip(Topics.NODE_PUBLISHES, Topics.HUB_SUBSCRIPTIONS,
                                                                   strict=True) if channel == "status"])

    # --- the seam ------------------------------------------------------------------------------
    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> bool:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    def ack(self, mid: int, qos: int) -> None:
        if qos > 0:
            self.client.ack(mid, qos)

    def start(self, on_message: Callable[[Received], None]) -> None:
        self._on_message = on_message
        self.client.connect_async(self.settings.mqtt_host, self.settings.mqtt_port, keepalive=15)
        self.client.loop_start()

    def stop(self) -> None:
        self._stopping = True
        try:
            if self.connected:
                self._say("offline").wait_for_publish(timeout=2)
        except (RuntimeError, ValueError):
            pass
        self.client.disconnect()
        self.client.loop_stop()
