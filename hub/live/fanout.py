"""Fan-out of new events and alarm changes to every WebSocket on /api/live.

The ingest writer thread hands batches to the app's event loop. Each client has a bounded
backlog, so one stuck browser cannot hold the others back (it is dropped and reconnects with
``?since=<cursor>`` to catch up from the store).

Alarms jump the backlog. After a broker restart a district re-announces itself (2,000 births,
resent door events) and a console can be thousands of messages behind; a resident's press must
not wait behind them (the soak bench saw 22 s before this). An alarm that overtakes routine
messages loses its ``cursor`` (it is sent as ``seq`` with ``early: true``): a client's cursor
only moves in order, so a reconnect with ``?since=`` never skips the routine messages it
overtook; the alarm may then be replayed once, and clients key events by id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from hub.runtime import metrics

log = logging.getLogger(__name__)
CLIENT_QUEUE = 10_000  # a district reconnecting at once (2,000 births) must not drop the consoles


def is_urgent(message: dict[str, Any]) -> bool:
    """What a console must see first: anything that opens or changes an alarm, and command replies."""
    if message.get("type") == "reply":  # an operator waits on it; live-view keep-alives are housekeeping
        return not str(message.get("name", "")).startswith("live.")
    if message.get("type") == "enrol":  # a tenant at a door and a clerk wait on each step
        return True
    return message.get("type") == "alarm" or "alarm" in message


class LiveClient:
    """One WebSocket's backlog: urgent messages first, the rest in order."""

    def __init__(self, limit: int = CLIENT_QUEUE) -> None:
        self.limit = limit
        self.urgent: deque[tuple[float, dict[str, Any]]] = deque()  # (committed at, message)
        self.routine: deque[tuple[float, dict[str, Any]]] = deque()
        self.closed = False
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self.urgent) + len(self.routine)

    def put(self, message: dict[str, Any], at: float | None = None) -> bool:
        """Queue one message (``at``: when it was committed); False when the client must be dropped."""
        at = time.monotonic() if at is None else at
        if len(self) >= self.limit:
            return False
        if is_urgent(message):
            if self.routine and message.get("cursor") is not None:
                message = {**message, "seq": message["cursor"], "early": True}
                del message["cursor"]
            self.urgent.append((at, message))
        else:
            self.routine.append((at, message))
        self._ready.set()
        return True

    def close(self) -> None:
        self.closed = True
        self.urgent.clear()
        self.routine.clear()
        self._ready.set()

    async def get(self) -> dict[str, Any] | None:
        """The next message, or None once the client has been dropped."""
        while not self.closed and not self.urgent and not self.routine:
            self._ready.clear()
            await self._ready.wait()
        if self.closed:
            return None
        lane, queue = ("urgent", self.urgent) if self.urgent else ("routine", self.routine)
        at, message = queue.popleft()
        metrics.live_wait.labels(lane).observe(time.monotonic() - at)
        return message


class LiveHub:
    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self._clients: set[LiveClient] = set()
        # replicas (hub/runtime/cluster.py): items go to every replica through PostgreSQL NOTIFY, and come back
        # to each one's consoles through fanout_threadsafe; None = one process, fan out here
        self.relay: Callable[[list[dict[str, Any]]], None] | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def subscribe(self) -> LiveClient:
        client = LiveClient()
        self._clients.add(client)
        metrics.live_clients.set(len(self._clients))
        return client

    def unsubscribe(self, client: LiveClient) -> None:
        self._clients.discard(client)
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
            self.loop.call_soon_threadsafe(self.fanout, messages, time.monotonic())

    def fanout(self, messages: list[dict[str, Any]], at: float | None = None) -> None:
        """To this process's consoles (``at``: when the batch was committed, for the wait metric)."""
        messages = [m for m in messages if m.get("type") != "task_for"]  # for responders' pages (hub/responders)
        for client in list(self._clients):
            for m in messages:
                if not client.put(m, at):
                    log.warning("a live client is too slow; dropping it (it will catch up with ?since=)")
                    self._clients.discard(client)
                    client.close()
                    break
        metrics.live_clients.set(len(self._clients))


async def watch_loop_lag(every_s: float = 0.25) -> None:
    """Measures how late the event loop wakes up: the live stream and every request wait on it."""
    while True:
        start = time.monotonic()
        await asyncio.sleep(every_s)
        metrics.loop_lag.observe(max(0.0, time.monotonic() - start - every_s))
