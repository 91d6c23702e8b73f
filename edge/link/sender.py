"""Moves outbox entries to the broker and retires them on the hub's receipts.

Flow control is by receipts: at most ``window`` entries may be out (published, no receipt yet).
That keeps the broker's queue towards the hub short, so an alarm pressed during a drain of
thousands of old events waits behind at most ``window`` of them, not the whole backlog. Alarms
themselves are never held back by the window.
Entries with no receipt after ``resend_after`` are sent again (with backoff), except while
the hub's retained status says it is offline; after a reconnect everything unreceipted is
sent again. The hub stores by event id, so a resend never makes a duplicate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from edge.clock import Clock
from edge.link.outbox import Entry, Outbox
from edge.protocol import Priority

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes, int], "int | None"]


@dataclass(slots=True)
class _Out:
    entry: Entry
    sent_at: float
    attempts: int


class Sender:
    def __init__(self, outbox: Outbox, publish: Publish, clock: Clock, *, window: int = 64,
                 resend_after: float = 10.0, max_backoff: float = 120.0) -> None:
        self.outbox = outbox
        self.publish = publish
        self.clock = clock
        self.window = window
        self.resend_after = resend_after
        self.max_backoff = max_backoff
        self.hub_online = True
        self._out: dict[str, _Out] = {}
        self._cursor = {p: 0 for p in Priority}
        self.sent_total = 0
        self.resent_total = 0

    @property
    def outstanding(self) -> int:
        return len(self._out)

    def reset(self) -> None:
        """After a reconnect: forget what is out, so every unreceipted entry goes again."""
        self._out.clear()
        self._cursor = {p: 0 for p in Priority}

    def _due(self, out: _Out, now: float) -> bool:
        backoff = min(self.max_backoff, self.resend_after * (2 ** max(0, out.attempts - 1)))
        return bool(now - out.sent_at >= backoff)

    def pump(self) -> int:
        """Send what the window allows, highest class first; returns how many went out."""
        sent = 0
        now = self.clock.monotonic()
        for priority in Priority:
            # resends of this class first (they are older than its fresh entries)
            if self.hub_online:
                for _key, out in sorted(self._out.items(), key=lambda kv: kv[1].entry.seq):
                    if out.entry.priority != priority or not self._due(out, now):
                        continue
                    if not self._send(out.entry, resend=True):
                        return sent
                    sent += 1
            while priority == Priority.ALARM or len(self._out) < self.window:
                room = 100 if priority == Priority.ALARM else self.window - len(self._out)
                batch = self.outbox.fresh(priority, self._cursor[priority], room)
                if not batch:
                    break
                for entry in batch:
                    self._cursor[priority] = entry.seq
                    if entry.key in self._out:
                        continue
                    if not self._send(entry, resend=False):
                        return sent
                    sent += 1
            if len(self._out) >= self.window:
                break
        return sent

    def _send(self, entry: Entry, *, resend: bool) -> bool:
        mid = self.publish(entry.topic, entry.payload, entry.qos)
        if mid is None:
            if not resend:
                self._cursor[Priority(entry.priority)] = min(self._cursor[Priority(entry.priority)],
                                                             entry.seq - 1)
            return False
        prev = self._out.get(entry.key)
        self._out[entry.key] = _Out(entry, self.clock.monotonic(), (prev.attempts + 1) if prev else 1)
        if resend:
            self.resent_total += 1
        else:
            self.sent_total += 1
        return True

    def receipted(self, keys: list[str]) -> int:
        for key in keys:
            self._out.pop(key, None)
        return self.outbox.remove(keys)

    def rejected(self, key: str, reason: str) -> Entry | None:
        self._out.pop(key, None)
        return self.outbox.dead_letter(key, reason)
