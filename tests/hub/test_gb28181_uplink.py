"""No alarm lost on the way to the city platform (hub/gb28181/uplink.py): alarms go up from the store until the
platform settles them, across a hub restart, without sending the platform a district's history when city
networking is first turned on, without sending one twice, and given up (counted, logged) after a day.

The restart is played against sipp (Debian's sip-tester) as the city platform; the sweep's rules are checked
on a real SQLite store."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from hub.gb28181 import adapter as adapter_module
from hub.gb28181.adapter import GbAdapter
from hub.gb28181.uplink import LATE_COMMIT_S, UplinkStore
from hub.live.fanout import LiveHub
from hub.live.messages import EventMessage
from hub.store.schema import events, gb_alarm_uplink, gb_uplink_mark
from hub.transport.broker import free_port
from tests import sipp
from tests.hub.test_gb28181_sipp import BUTTON_1, make_store, platform, rig, until


def store_event(engine: Any, node: str, kind: str, received_at: datetime, data: dict | None = None) -> str:
    """An event as the ingest writer stores it; returns its id."""
    event_id = f"ev-{time.monotonic_ns()}"
    with engine.begin() as conn:
        conn.execute(events.insert().values(id=event_id, node=node, kind=kind, ts=received_at,
                                            received_at=received_at, data=data or {}))
    return event_id


def fan_out(live: LiveHub, event_id: str, node: str, kind: str, at: datetime) -> None:
    """... and as it fans it out after the commit."""
    live.fanout([EventMessage(cursor=1, event={"id": event_id, "node": node, "kind": kind, "ts": at.isoformat(),
                                               "received_at": at.isoformat(), "data": {}},
                              alarm={"id": event_id}).out()])


def outcomes(engine: Any) -> dict[str, str]:
    with engine.connect() as conn:
        return {r.event_id: r.outcome for r in conn.execute(select(gb_alarm_uplink))}


def mark(engine: Any) -> datetime:
    with engine.connect() as conn:
        return conn.execute(select(gb_uplink_mark.c.settled_before)).scalar_one()


@pytest.mark.skipif(sipp.SIPP is None, reason="sipp (Debian sip-tester) is not installed")
def test_an_alarm_pressed_while_the_city_is_away_goes_up_after_a_hub_restart_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adapter_module, "FRESH_S", 0.5)  # the sweep's grace for the live path: not 10 s here

    async def run() -> tuple[Any, dict[str, Any], str, str, Any]:
        # the hub before: city networking on for the first time, the platform not answering
        away = rig(tmp_path, "udp", free_port(), answer_timeout_s=0.3)
        history = store_event(away.engine, "pole-01", "alarm.pressed", datetime.now(UTC) - timedelta(minutes=5))
        await away.adapter.start()
        at = datetime.now(UTC)
        pressed = store_event(away.engine, "pole-01", "alarm.pressed", at)
        fan_out(away.live, pressed, "pole-01", "alarm.pressed", at)
        await until(lambda: pressed in away.adapter._inflight, what="the press queued for the platform")
        await away.adapter.stop()  # the hub restarts before the city platform came back: the queue is memory
        assert outcomes(away.engine) == {}
        await asyncio.sleep(0.6)  # past the live path's grace, so the first sweep after registering takes it

        # the hub after, the platform back
        up = platform(tmp_path, "udp")
        back = GbAdapter(away.settings.model_copy(update={
            "gb_upstream": f"sip:34020000002000000002@127.0.0.1:{up.port};transport=udp"}), away.engine,
            away.live, None, backoff_base_s=0.2, backoff_cap_s=1.0, answer_timeout_s=2.0)
        await back.start()
        try:
            await until(lambda: back.counts["alarms_sent"] == 1, what="the alarm from the store at the platform")
            back._sweep_now.set()  # another sweep: the settled alarm does not go up again
            await asyncio.sleep(1.0)
            health = back.health()
        finally:
            await back.stop()
        up.stop()
        return up, health, pressed, history, away.engine

    up, health, pressed, history, engine = asyncio.run(run())
    assert health["alarms_sent"] == 1 and health["alarms_resent"] == 1, health
    alarms = [m for m in up.received("MESSAGE ") if "<CmdType>Alarm</CmdType>" in m]
    assert len(alarms) == 1 and f"<DeviceID>{BUTTON_1}</DeviceID>" in alarms[0] and "一键报警" in alarms[0]
    assert outcomes(engine) == {pressed: "sent"}  # the press from before the first start never went up
    assert history not in outcomes(engine)


def test_the_sweep_sends_what_is_owed_gives_up_after_a_day_and_moves_its_mark(tmp_path: Path) -> None:
    engine = make_store(tmp_path)
    now = datetime.now(UTC)
    store = UplinkStore(engine)
    store.mark(now - timedelta(hours=30))  # city networking has been on for 30 hours
    old = store_event(engine, "pole-01", "alarm.pressed", now - timedelta(hours=25))
    store_event(engine, "pole-01", "detection.person", now - timedelta(hours=2))  # no zone: never goes up
    took = store_event(engine, "pole-01", "alarm.pressed", now - timedelta(hours=1))
    store.settle(took, "sent", now - timedelta(hours=1))
    owed = store_event(engine, "pole-01", "tamper.opened", now - timedelta(minutes=1))
    fresh = store_event(engine, "pole-01", "alarm.pressed", now - timedelta(seconds=2))  # the live path's

    async def run() -> tuple[GbAdapter, list[str], datetime, list[str], datetime]:
        from hub.config import load_settings

        settings = load_settings(data_dir=tmp_path, mqtt_enabled=False, gb_id="34020000002000000001",
                                 gb_password="12345678", gb_sip_port=free_port(), gb_sip_host="127.0.0.1",
                                 gb_upstream="sip:34020000002000000002@127.0.0.1:5060;transport=udp")
        gb = GbAdapter(settings, engine, LiveHub())
        await gb._sweep_once()
        queued = [gb.alarms.get_nowait().event_id for _ in range(gb.alarms.qsize())]
        first_mark = mark(engine)
        await gb._sweep_once()  # the owed one is in flight: not queued twice, and it holds the mark
        again = [gb.alarms.get_nowait().event_id for _ in range(gb.alarms.qsize())]
        held = mark(engine)
        store.settle(owed, "sent", datetime.now(UTC))
        gb._inflight.discard(owed)
        await gb._sweep_once()
        return gb, queued, first_mark, again, held

    gb, queued, first_mark, again, held = asyncio.run(run())
    assert queued == [owed] and again == []
    assert gb.counts["alarms_dropped"] == 1 and gb.counts["alarms_resent"] == 1
    assert outcomes(engine) == {old: "expired", took: "sent", owed: "sent"}
    with engine.connect() as conn:
        owed_at = conn.execute(select(events.c.received_at).where(events.c.id == owed)).scalar_one()
    assert first_mark == owed_at and held == owed_at  # the mark stops at the oldest alarm still owed
    settled_to = mark(engine)
    assert abs((settled_to - (datetime.now(UTC) - timedelta(seconds=LATE_COMMIT_S))).total_seconds()) < 30
    assert settled_to < now - timedelta(seconds=2)  # the fresh press is still ahead of the mark
    assert fresh not in outcomes(engine)


def test_settled_rows_are_purged_after_two_days(tmp_path: Path) -> None:
    engine = make_store(tmp_path)
    store = UplinkStore(engine)
    now = datetime.now(UTC)
    store.settle("ev-old", "sent", now - timedelta(days=3))
    store.settle("ev-new", "sent", now - timedelta(hours=1))
    assert store.purge(now) == 1
    assert outcomes(engine) == {"ev-new": "sent"}
    store.mark(now - timedelta(days=5))  # a mark far behind is moved up when nothing is owed
    assert store.advance(None, now) == now - timedelta(seconds=LATE_COMMIT_S)
