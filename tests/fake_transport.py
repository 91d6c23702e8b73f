"""A stand-in for the hub's broker connection (hub/transport/mqtt.py's Transport): records what the hub
would publish and acknowledge, so ingest can be fed batches by hand. The broker itself is tested end to end."""

from __future__ import annotations

from collections.abc import Callable

from hub.transport.mqtt import Received


class FakeTransport:
    def __init__(self) -> None:
        self.connected = False  # as a real transport before its first connection
        self.connected_since = 0.0
        self.acked: list[int] = []
        self.published: list[tuple[str, bytes]] = []
        self.on_message: Callable[[Received], None] | None = None

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> bool:
        self.published.append((topic, payload))
        return True

    def ack(self, mid: int, qos: int) -> None:
        if qos > 0:  # QoS 0 has nothing to acknowledge
            self.acked.append(mid)

    def start(self, on_message: Callable[[Received], None]) -> None:
        self.on_message = on_message

    def stop(self) -> None: ...
