"""Fan-out of new events and alarm changes to every WebSocket on /api/live.

The ingest writer thread hands batches to the app's event loop; each client has a bounded
queue so one stuck browser cannot hold the others back (it is dropped and reconnects with
``?since=<cursor>`` to catch up from the store).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from hub import metrics

log = logging.getLogger(__name__)
CLIENT_QUEUE = 10_000  # a district reconnecting at once (2,000 births) must not drop the consoles


class LiveHub:
    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self._clients: set[asyncio.Queue[dict[str, Any] | None]] = set()
        # replicas (hub/cluster.py): items go to every replica through PostgreSQL NOTIFY, and come back
        # to each one's consoles through fanout_threadsafe; None = one process, fan out here
        self.relay: Callable[[list[dict[str, Any]]], None] | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def subscribe(self) -> asyncio.Queue[dict[str, Any] | None]:
        q: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(CLIENT_QUEUE)
        self._clients.add(q)
        metrics.live_clients.set(len(self._clients))
        return q

    def unsubscribe(self, q: asyncio.Queue[dict[str, Any] | None]) -> None:
        self._clients.discard(q)
        metrics.live_clients.set(len(self._clients))

    def publish_threadsafe(self, messages: list[dict[str, Any]]) -> None:
        if self.relay is not None:
            self.relay(messages)
        else:
            self.fanout_threadsafe(messages)

    def publish(self, messages: list[dict[str, Any]]) -> None:
        if self.relay is not None:
            self.relay(messages)
        else:
            self.fanout(messages)

    def fanout_threadsafe(self, messages: list[dict[str, Any]]) -> None:
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.fanout, messages)

    def fanout(self, messages: list[dict[str, Any]]) -> None:
        """To this process's consoles."""
        for q in list(self._clients):
            for m in messages:
                try:
                    q.put_nowait(m)
                except asyncio.QueueFull:
                    log.warning("a live client is too slow; dropping it (it will catch up with ?since=)")
                    self._clients.discard(q)
                    while not q.empty():
                        q.get_nowait()
                    q.put_nowait(None)  # tells its sender to close the socket
                    break
