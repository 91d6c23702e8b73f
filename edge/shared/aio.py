"""asyncio helpers shared by the node agent, the simulator and the hub.

``asyncio.wait_for(event.wait(), t)`` in a loop is the obvious way to sleep until woken, and on
Python 3.11 it is wrong: when the event fires in the same loop turn as the task is cancelled,
``wait_for`` returns the inner result and drops the cancellation, so the "cancelled" loop runs on.
The district soak found it: a virtual node's send loop from a dead session outlived its session,
took a resident's press and published it on the dead connection, and the press reached the hub only
on its resend 10 s later. ``asyncio.timeout`` waits in the caller's own task, so a cancel always lands.
"""

from __future__ import annotations

import asyncio
from typing import Any


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait until ``event`` is set or ``timeout`` seconds pass; True when it was set. Cancellable."""
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True


async def cancel_and_wait(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and return once every one has ended, so none outlives its owner. The cancel is
    repeated until it lands: library code that still waits with ``wait_for`` (aiomqtt's publish) can
    swallow one, and a single cancel then leaves the task running."""
    pending = {t for t in tasks if not t.done()}
    while pending:
        for t in pending:
            t.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.1)
