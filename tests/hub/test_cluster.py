"""Pieces of the replica machinery that need no broker: NOTIFY chunking, settings, the leader lock."""

from __future__ import annotations

import json

import pytest

from hub.config import load_settings
from hub.errors import SettingsError
from hub.live.fanout import LiveHub
from hub.runtime.cluster import NOTIFY_MAX, Cluster, chunks
from hub.store.engine import make_engine
from tests.conftest import wait_for


def test_live_items_are_chunked_under_the_notify_limit_and_big_ones_cut_to_a_reference() -> None:
    small = [{"type": "node", "node": f"pole-{i:03d}", "state": "online"} for i in range(500)]
    huge = {"type": "event", "cursor": 7, "event": {"id": "e1", "node": "pole-001", "kind": "alarm.pressed",
                                                    "ts": "t", "received_at": "r", "data": {"x": "y" * 20000}},
            "alarm": {"id": "e1", "node": "pole-001", "kind": "alarm.pressed", "state": "open", "count": 1}}
    payloads = chunks([*small, huge])
    assert all(len(p.encode()) <= NOTIFY_MAX for p in payloads)
    items = [i for p in payloads for i in json.loads(p)]
    assert items[:500] == small  # order kept, nothing lost
    cut = items[500]
    assert cut["truncated"] is True and cut["event"]["id"] == "e1" and "data" not in cut["event"]
    assert cut["alarm"]["state"] == "open" and cut["cursor"] == 7


def test_replicas_need_postgresql() -> None:
    with pytest.raises(SettingsError, match="needs PostgreSQL"):
        load_settings(share_group="pingan-hub")
    with pytest.raises(SettingsError, match="PINGAN_SHARE_GROUP"):
        load_settings(share_group="has space", database_url="postgresql+psycopg://x@127.0.0.1/db")


def test_one_replica_holds_the_leader_lock_until_its_connection_goes(pg_url: str) -> None:
    engine = make_engine(pg_url)
    a, b = Cluster(engine, LiveHub(), "a"), Cluster(engine, LiveHub(), "b")
    try:
        a._try_lead()
        b._try_lead()
        assert a.is_leader() and not b.is_leader()
        a._try_lead()  # still holding: stays leader
        assert a.is_leader()
        a._close_lock_conn()  # as when the leader's process dies: the server drops the lock (soon after)
        wait_for(lambda: b._try_lead() or b.is_leader(), 10, 0.05, "b takes the lock")
        a._try_lead()  # a's new connection holds no lock: a is not leader any more
        assert not a.is_leader() and b.is_leader()
    finally:
        a._close_lock_conn()
        b._close_lock_conn()
        engine.dispose()


def test_sqlite_hub_is_its_own_leader(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        assert Cluster(engine, LiveHub(), "1").is_leader()
    finally:
        engine.dispose()
