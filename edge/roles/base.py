"""What every role does with an event: stamp it, picture it, and put it in the outbox.

Shared by the alarm pole and the door so the outbox discipline (event, then its picture and
burst, in the event's class; from memory when even the reserve is gone) is written once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from edge.clock import Clock
from edge.config import NodeConfig
from edge.link.outbox import Outbox, OutboxFull, clip_key, event_key, snapshot_key
from edge.protocol import Event, Topics, priority_of

log = logging.getLogger(__name__)


class EventEmitter:
    """Mixin; the role sets cfg, node_id, camera, camera_ok, outbox, clock, wake and send_direct."""

    cfg: NodeConfig
    node_id: str
    camera: Any
    camera_ok: bool
    outbox: Outbox
    clock: Clock
    wake: Callable[[], None]
    send_direct: Callable[[str, bytes, int], Any]

    def _location(self) -> dict[str, Any]:
        ident = self.cfg.node
        loc: dict[str, Any] = {"place": ident.place, "grid": ident.grid}
        if ident.location:
            loc.update(lat=ident.location.lat, lon=ident.location.lon)
        return loc

    def _snapshot(self) -> bytes | None:
        if self.camera is None:
            return None
        from edge.hw.camera import encode_jpeg  # OpenCV only where there is a camera

        try:
            frame = self.camera.read()
        except Exception as exc:  # noqa: BLE001 - a dead camera must never stop an alarm
            log.error("camera failed: %s", exc)
            frame = None
        if frame is None:
            if self.camera_ok:
                self.camera_ok = False
                self.emit("tamper.camera", {"reason": "feed_lost"})
            return None
        self.camera_ok = True
        return encode_jpeg(frame, self.cfg.camera.jpeg_quality)

    def emit(self, kind: str, data: dict[str, Any] | None = None, *, with_snapshot: bool = False,
             jpeg: bytes | None = None, burst: list[bytes] | None = None) -> Event:
        """Write an event (its picture, its pre-press burst) to the outbox; from memory if the disk refuses."""
        if jpeg is None and with_snapshot:
            jpeg = self._snapshot()
        event = Event.make(self.node_id, kind, {**self._location(), **(data or {})},
                           snapshot=jpeg is not None, ts=self.clock.now())
        event_id = str(event.id)
        priority = priority_of(kind)
        topic = Topics.events(self.node_id)
        payload = event.to_bytes()
        entries = [(event_key(event_id), topic, payload)]
        if jpeg is not None:
            entries.append((snapshot_key(event_id), Topics.snapshot(self.node_id, event_id), jpeg))
        entries += [(clip_key(event_id, n), Topics.clip(self.node_id, event_id, n), frame)
                    for n, frame in enumerate(burst or [])]
        try:
            self.outbox.put_many(entries, priority)
        except OutboxFull as exc:
            log.error("%s; sending %s %s from memory", exc, kind, event_id)
            self.send_direct(topic, payload, 1)
            if jpeg is not None:
                self.send_direct(Topics.snapshot(self.node_id, event_id), jpeg, 1)
        self.wake()
        return event
