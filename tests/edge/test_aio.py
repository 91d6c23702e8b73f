"""``edge.shared.aio.wait_event``: the wake-up wait of the node's send loops must always honour a cancel."""

from __future__ import annotations

import asyncio

from edge.shared.aio import wait_event


async def _send_loop(wake: asyncio.Event, rounds: list[int]) -> None:
    while True:
        await wait_event(wake, 2.5)
        wake.clear()
        rounds.append(1)


def test_wait_event_returns_true_when_set_and_false_on_timeout() -> None:
    async def main() -> tuple[bool, bool]:
        ev = asyncio.Event()
        asyncio.get_running_loop().call_later(0.01, ev.set)
        return await wait_event(ev, 5), await wait_event(asyncio.Event(), 0.01)

    assert asyncio.run(main()) == (True, False)


def test_a_loop_cancelled_as_it_is_woken_stops() -> None:
    """The soak's lost press: a session ends (its send loop cancelled) in the same loop turn as a press wakes
    that loop. With ``asyncio.wait_for`` on Python 3.11 the loop swallowed the cancel and ran on."""

    async def main() -> tuple[bool, int]:
        wake, rounds = asyncio.Event(), []
        task = asyncio.create_task(_send_loop(wake, rounds))
        await asyncio.sleep(0.01)
        wake.set()
        await asyncio.sleep(0)  # the waiter is now due to wake ...
        task.cancel()  # ... and the session ends before it runs
        await asyncio.sleep(0.05)
        return task.done(), len(rounds)

    done, rounds = asyncio.run(main())
    assert done, "the cancelled loop kept running"
    assert rounds <= 1


def test_cancel_and_wait_ends_a_task_that_swallows_one_cancel() -> None:
    """aiomqtt's publish still waits with ``wait_for``; a session's end must not hang on a task in it."""
    from edge.shared.aio import cancel_and_wait

    async def stubborn(started: asyncio.Event) -> None:
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            pass  # swallowed once, as wait_for does when its inner wait completes in the same turn
        await asyncio.sleep(10)

    async def main() -> bool:
        started = asyncio.Event()
        task = asyncio.create_task(stubborn(started))
        await started.wait()
        await asyncio.wait_for(cancel_and_wait([task]), 5)
        return task.cancelled()

    assert asyncio.run(main())
