"""Each responder's own live stream (WebSocket ``/api/responder/live``): only their tasks, nothing else.

A responder must not see the district's alarms, so their phones never join the operators' fan-out
(hub/live/fanout.py); each username has its own set of :class:`LiveClient` backlogs (a responder may
have the page open twice). Messages are ``TaskMessage`` (hub/live/messages.py). On hub replicas a task
goes to every replica as a ``TaskRelay`` (PostgreSQL NOTIFY, hub/app.py ``_publish_task``), and each hands
it to the pages open on it; consoles never get it (hub/live/fanout.py drops ``task_for``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from hub.live.fanout import LiveClient

log = logging.getLogger(__name__)
CLIENT_QUEUE = 200  # a phone is sent its own tasks only; far behind means gone


class TaskStreams:
    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self._clients: dict[str, set[LiveClient]] = {}

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def subscribe(self, username: str) -> LiveClient:
        client = LiveClient(CLIENT_QUEUE)
        self._clients.setdefault(username, set()).add(client)
        return client

    def unsubscribe(self, username: str, client: LiveClient) -> None:
        group = self._clients.get(username)
        if group is not None:
            group.discard(client)
            if not group:
                del self._clients[username]

    def connected(self) -> int:
        return sum(len(g) for g in self._clients.values())

    def publish_threadsafe(self, username: str, message: dict[str, Any]) -> None:
        """From any thread: queue ``message`` for every open page of ``username``."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._put, username, message, time.monotonic())

    def _put(self, username: str, message: dict[str, Any], at: float) -> None:
        for client in list(self._clients.get(username, ())):
            if not client.put(message, at):
                log.warning("%s's page is too far behind; dropping it (it reloads its tasks)", username)
                self.unsubscribe(username, client)
                client.close()
