"""Each node's heartbeats rolled up per hour (issue 21, hub/nodes/health.py): ``nodes.heartbeat`` keeps only the
newest, and the node page's last 48 hours come from this. Stored by the ingest writer in bulk, on SQLite and
PostgreSQL (where a missing value must not wipe a stored maximum), read by ``/api/nodes/{node}/health``, purged
after ``health_keep_days``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from edge.protocol import Heartbeat, Topics
from hub.ingest.writer import Incoming
from hub.nodes.health import hour_of, roll_up
from hub.store import migrate
from hub.store.engine import init_db, make_engine
from hub.store.schema import node_health_hourly
from tests.hub.test_scale import sqlite_hub  # noqa: F401 - the fixture

_mid = iter(range(1, 1_000_000))


def beat(at: datetime, uptime: float, outbox: int = 0, temp: float | None = None, fps: float | None = None) -> bytes:
    body: dict[str, Any] = {"ts": at.isoformat(), "uptime_s": uptime, "outbox_depth": outbox}
    if temp is not None:
        body["cpu_temp_c"] = temp
    if fps is not None:
        body["fps"] = fps
    return json.dumps(body).encode()


def test_a_nodes_heartbeats_are_rolled_up_per_hour_and_shown_by_the_api(sqlite_hub) -> None:  # noqa: F811
    state, ingest, client = sqlite_hub
    base = hour_of(datetime.now(UTC)) - timedelta(hours=2)  # two hours ago, then the hour after it
    beats = [(base + timedelta(minutes=10), beat(base, 10_000, outbox=0, temp=50.0, fps=14.5)),
             (base + timedelta(minutes=20), beat(base, 10_600, outbox=12, temp=71.5, fps=9.0)),
             (base + timedelta(minutes=30), beat(base, 11_200, outbox=3)),  # no temperature: the 71.5 stays
             # the node restarted: 30 s of uptime at 20 past the hour
             (base + timedelta(hours=1, minutes=20), beat(base, 30, outbox=40, temp=48.0))]
    for at, payload in beats:  # one batch each, as they would come ten minutes apart
        ingest.handle_batch([Incoming(Topics.heartbeat("pole-7"), payload, next(_mid), 0, at)])
    r = client.get("/api/nodes/pole-7/health", params={"hours": 48})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["hours"] == 48
    assert datetime.fromisoformat(body["since"]) == hour_of(datetime.now(UTC)) - timedelta(hours=47)
    rows = [{k: v for k, v in row.items() if k != "node"} for row in body["rows"]]
    assert rows == [
        {"hour": base.isoformat(), "heartbeats": 3, "outbox_max": 12, "restarted": False, "cpu_temp_max": 71.5,
         "fps_min": 9.0, "disk_free_min": None},
        {"hour": (base + timedelta(hours=1)).isoformat(), "heartbeats": 1, "outbox_max": 40, "restarted": True,
         "cpu_temp_max": 48.0, "fps_min": None, "disk_free_min": None},
    ]
    # the window is the last N hours: asked for 2, the older hour is outside it
    assert [x["hour"] for x in client.get("/api/nodes/pole-7/health", params={"hours": 2}).json()["rows"]] == [
        (base + timedelta(hours=1)).isoformat()]
    # the latest heartbeat is still what the fleet list shows
    node = next(n for n in client.get("/api/nodes").json() if n["id"] == "pole-7")
    assert node["heartbeat"]["uptime_s"] == 30


def test_the_health_api_refuses_an_unknown_node_and_a_bad_window_in_words(sqlite_hub) -> None:  # noqa: F811
    _, _, client = sqlite_hub
    r = client.get("/api/nodes/nobody/health")
    assert r.status_code == 404 and "no node nobody" in r.text
    for hours in (0, 24 * 30 + 1, "many"):
        r = client.get("/api/nodes/nobody/health", params={"hours": hours})
        assert r.status_code == 422 and "hours" in r.text, r.text


def test_hours_older_than_the_keep_days_are_purged(sqlite_hub) -> None:  # noqa: F811
    state, ingest, client = sqlite_hub
    old, recent = datetime.now(UTC) - timedelta(days=100), datetime.now(UTC) - timedelta(hours=1)
    for at in (old, recent):
        ingest.handle_batch([Incoming(Topics.heartbeat("door-1"), beat(at, 5_000), next(_mid), 0, at)])
    assert state.node_health.purge(datetime.now(UTC)) == 1  # health_keep_days is 90 by default
    with state.engine.connect() as conn:
        assert conn.execute(select(node_health_hourly.c.hour)).scalars().all() == [hour_of(recent)]


def hb(uptime: float, outbox: int = 0, temp: float | None = None, disk: int | None = None) -> Heartbeat:
    return Heartbeat(ts=datetime.now(UTC), uptime_s=uptime, outbox_depth=outbox, cpu_temp_c=temp, disk_free_bytes=disk)


@pytest.mark.parametrize("store", ["sqlite", "postgresql"])
def test_the_upsert_merges_batches_and_ignores_missing_values(store: str, tmp_path, request) -> None:
    """Each database spells "the larger of two, a missing one ignored" differently (SQLite's max() is NULL when
    either is); a heartbeat without a temperature must not wipe the hour's hottest."""
    url = f"sqlite:///{tmp_path / 'hub.db'}" if store == "sqlite" else request.getfixturevalue("pg_url")
    engine = make_engine(url)
    if store == "postgresql":
        migrate.upgrade(engine)  # a PostgreSQL hub runs on a migrated schema (migration 0013 made this table)
    init_db(engine)
    hour = hour_of(datetime.now(UTC))
    at = hour + timedelta(minutes=40)
    batches = [[("a", hb(9_000, outbox=2, temp=None, disk=5_000), at), ("b", hb(9_000, temp=40.0), at)],
               [("a", hb(9_010, outbox=7, temp=66.0, disk=None), at)],
               [("a", hb(9_020, outbox=1, temp=None, disk=4_000), at), ("a", hb(60, temp=None), at)]]
    for batch in batches:
        with engine.begin() as conn:
            roll_up(conn, batch)
    with engine.connect() as conn:
        rows = {r.node: r for r in conn.execute(select(node_health_hourly))}
    a = rows["a"]
    assert (a.heartbeats, a.outbox_max, a.cpu_temp_max, a.disk_free_min, a.restarted) == (4, 7, 66.0, 4_000, 1)
    assert (rows["b"].heartbeats, rows["b"].cpu_temp_max, rows["b"].disk_free_min) == (1, 40.0, None)
    engine.dispose()
