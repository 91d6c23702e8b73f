"""The live stream's order: a console far behind a reconnecting district still sees an alarm first."""

from __future__ import annotations

import asyncio

from hub.live.fanout import LiveHub


def _door(cursor: int) -> dict:
    return {"type": "event", "cursor": cursor, "event": {"id": f"d{cursor}", "kind": "door.granted"}}


def _alarm(cursor: int) -> dict:
    return {"type": "event", "cursor": cursor, "event": {"id": f"a{cursor}", "kind": "alarm.pressed"},
            "alarm": {"id": f"a{cursor}", "state": "open"}}


def _drain(client) -> list:
    async def go() -> list:
        out = []
        while len(client):
            out.append(await client.get())
        return out
    return asyncio.run(go())


def test_an_alarm_overtakes_a_backlog_without_moving_the_cursor_past_it() -> None:
    live = LiveHub()
    client = live.subscribe()
    live.publish([_door(i) for i in range(1, 501)] + [_alarm(501)])
    got = _drain(client)
    first = got[0]
    assert first["event"]["kind"] == "alarm.pressed"
    assert first["early"] is True and first["seq"] == 501
    assert "cursor" not in first  # a reconnect with ?since= must not skip doors 1..500
    assert [m["cursor"] for m in got[1:]] == list(range(1, 501))


def test_an_alarm_with_nothing_ahead_keeps_its_cursor() -> None:
    live = LiveHub()
    client = live.subscribe()
    live.publish([_alarm(7)])
    (only,) = _drain(client)
    assert only["cursor"] == 7 and "early" not in only


def test_a_client_too_far_behind_is_dropped_and_told_so() -> None:
    live = LiveHub()
    slow, fine = live.subscribe(), live.subscribe()
    slow.limit = 10
    live.publish([_door(i) for i in range(20)])
    assert asyncio.run(slow.get()) is None  # its sender closes the socket; the console reconnects with ?since=
    assert len(fine) == 20
    live.publish([_door(21)])
    assert len(fine) == 21  # the dropped one no longer gets anything


def test_the_ingest_queue_takes_alarms_before_a_backlog() -> None:
    from edge.protocol import Event, Topics
    from hub.ingest.queue import Empty, TwoLaneQueue, is_alarm_event

    door = Event.make("door-1", "door.granted", {"slot": 1})
    alarm = Event.make("pole-1", "alarm.pressed", {"count": 1})
    assert is_alarm_event(Topics.events("pole-1"), alarm.to_bytes())
    assert not is_alarm_event(Topics.events("door-1"), door.to_bytes())
    assert not is_alarm_event(Topics.heartbeat("pole-1"), alarm.to_bytes())  # only the events channel counts
    assert not is_alarm_event(Topics.events("pole-1"), b"\xff not json")  # garbage is the writer's to reject

    q: TwoLaneQueue[str] = TwoLaneQueue()
    for i in range(3):
        q.put(f"door-{i}")
    q.put("alarm", urgent=True)
    assert [q.get(timeout=1) for _ in range(4)] == ["alarm", "door-0", "door-1", "door-2"]
    try:
        q.get(timeout=0.01)
    except Empty:
        pass
    else:
        raise AssertionError("an empty queue must time out")


def test_a_batch_takes_every_alarm_first_then_the_oldest_of_the_rest() -> None:
    from hub.ingest.queue import TwoLaneQueue

    q: TwoLaneQueue[str] = TwoLaneQueue()
    for i in range(5):
        q.put(f"door-{i}")
    q.put("alarm-1", urgent=True)
    q.put("alarm-2", urgent=True)
    assert q.get_batch(4, timeout=1) == ["alarm-1", "alarm-2", "door-0", "door-1"]
    assert q.get_batch(500, timeout=1) == ["door-2", "door-3", "door-4"]
    assert q.get_batch(500, timeout=0.01) == []


def test_a_newer_item_under_the_same_key_replaces_the_waiting_one_in_its_place() -> None:
    from hub.ingest.queue import TwoLaneQueue

    q: TwoLaneQueue[str] = TwoLaneQueue()
    assert q.put("hb-a1", latest_of="a")
    q.put("door-0")
    assert q.put("hb-b1", latest_of="b")
    assert not q.put("hb-a2", latest_of="a")  # replaced, keeps a's place
    assert not q.put("hb-a3", latest_of="a")
    assert q.qsize() == 3
    assert q.get_batch(500, timeout=1) == ["hb-a3", "door-0", "hb-b1"]
    assert q.put("hb-a4", latest_of="a")  # taken by the writer: the next one queues again
    assert q.get_batch(500, timeout=1) == ["hb-a4"]


def test_a_batch_holds_a_bounded_amount_of_work_so_an_alarm_never_waits_long() -> None:
    """Births are written one row at a time: 500 of them in one commit kept a press waiting ~1 s after a
    broker restart. With costs, the batch stops at the budget; alarms still come first and in full."""
    from hub.ingest.queue import TwoLaneQueue

    q: TwoLaneQueue[str] = TwoLaneQueue()
    for i in range(100):
        q.put(f"status-{i}")
    q.put("event-0")
    q.put("alarm-0", urgent=True)

    def cost(item: str) -> int:
        return 1 if item.startswith(("event", "alarm")) else 8

    first = q.get_batch(80, timeout=1, cost=cost)
    assert first[0] == "alarm-0" and len(first) == 1 + 10  # 1 + 10 x 8 >= 80
    rest = []
    while q.qsize():
        rest += q.get_batch(80, timeout=1, cost=cost)
    assert rest[-1] == "event-0" and len(rest) == 91  # nothing dropped, order kept
