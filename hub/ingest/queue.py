"""The hub's ingest queue: alarms first, everything else in arrival order.

After a broker restart the hub's session hands over what the broker queued, 2,000 nodes send
their births and resend what has no receipt, and the writer may be tens of thousands of
messages behind. A resident's press must not wait behind them: the soak bench saw an alarm
stored 20 s after it arrived before this queue. The node's outbox does the same (alarms overtake
lower classes), so the hub keeps the contract's order within a class and changes nothing else.

Heartbeats are QoS 0, so the broker's in-flight limit (which bounds the QoS 1 events waiting here
to ``max_inflight_messages``) does not hold them back: 2,000 nodes send 200 a second whether the
writer keeps up or not. Only a node's newest heartbeat means anything, so a heartbeat replaces
the one still waiting from the same node: the queue holds at most one per node, however far
behind the writer falls.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from edge.protocol import Priority, Topics, priority_of

T = TypeVar("T")
_KIND = re.compile(rb'"kind"\s*:\s*"([a-z0-9_.]{1,64})"')


def is_alarm_event(topic: str, payload: bytes) -> bool:
    """A cheap look at an event's kind on the MQTT thread; the writer validates it properly later."""
    return Topics.channel(topic) == "events" and is_alarm_payload(payload)


def is_alarm_payload(payload: bytes) -> bool:
    """Whether an event payload's kind is alarm-class (for a caller that already knows the channel)."""
    m = _KIND.search(payload[:4096])
    return m is not None and priority_of(m.group(1).decode()) == Priority.ALARM


class Empty(Exception):
    pass


class _Latest:
    """A place in the routine lane whose item is the newest put under its key."""

    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        self.key = key


class TwoLaneQueue(Generic[T]):
    def __init__(self) -> None:
        self._urgent: deque[T] = deque()
        self._routine: deque[T | _Latest] = deque()
        self._latest: dict[str, T] = {}
        self._cond = threading.Condition()

    def qsize(self) -> int:
        return len(self._urgent) + len(self._routine)

    def put(self, item: T, urgent: bool = False, latest_of: str | None = None) -> bool:
        """Queue ``item``; with ``latest_of`` it replaces a waiting item put under the same key, keeping that
        item's place. Returns False when it replaced one (the caller owes the old one no acknowledgement:
        only QoS 0 messages may be put this way)."""
        with self._cond:
            if latest_of is not None:
                if latest_of in self._latest:
                    self._latest[latest_of] = item
                    return False
                self._latest[latest_of] = item
                self._routine.append(_Latest(latest_of))
            else:
                (self._urgent if urgent else self._routine).append(item)
            self._cond.notify()
            return True

    def get(self, timeout: float) -> T:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._urgent and not self._routine:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Empty
                self._cond.wait(left)
            return self._pop()

    def get_batch(self, limit: int, timeout: float, cost: Callable[[T], int] | None = None) -> list[T]:
        """What is waiting, up to ``limit`` (in ``cost`` units, 1 each by default): every alarm first, then
        the oldest of the rest.

        Alarms share the commit with routine messages rather than getting commits of their own: with
        2,000 nodes resending after a broker restart, alarm-only commits (an fsync each) took the
        writer's whole time and the routine lane grew without bound (the soak saw 495,000 queued).
        The cost bounds the commit an alarm arriving now must wait for: 500 births took ~1 s under load.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._urgent and not self._routine:
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                self._cond.wait(left)
            batch = [self._urgent.popleft() for _ in range(min(limit, len(self._urgent)))]
            spent = len(batch)
            while self._routine and spent < limit:
                item = self._pop_routine()
                batch.append(item)
                spent += cost(item) if cost else 1
            return batch

    def _pop_routine(self) -> T:
        item = self._routine.popleft()
        return self._latest.pop(item.key) if isinstance(item, _Latest) else item

    def _pop(self) -> T:
        if self._urgent:
            return self._urgent.popleft()
        if self._routine:
            return self._pop_routine()
        raise Empty
