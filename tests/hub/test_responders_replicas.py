"""Hub replicas (PostgreSQL, docs/scale.md): a task dispatched on one replica reaches the responder's page open
on the other (relayed through PostgreSQL NOTIFY as ``task_for``), and no console receives it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
import websockets

from hub.transport.broker import Broker
from tests.conftest import wait_for
from tests.replicas import prepare_postgres, start_replicas


@pytest.fixture()
def cluster(tmp_path: Path, broker: Broker, pg_url: str):
    prepare_postgres(pg_url)
    made = []

    def start(n: int = 2):
        made.extend(start_replicas(tmp_path, broker.url, pg_url, n))
        return made

    yield start
    for r in made:
        r.stop()


def test_a_task_dispatched_on_one_replica_reaches_the_page_open_on_the_other(cluster, broker: Broker, pg_url: str,
                                                                            node_factory) -> None:
    from hub.auth.service import Auth
    from hub.store.engine import make_engine

    engine = make_engine(pg_url)
    Auth(engine).add_user("zhang", "responder-pass-1", "responder", actor="tests")
    engine.dispose()
    a, b = cluster(2)
    node = node_factory("pole-07", broker.url, a.register("pole-07"))
    wait_for(lambda: any(n["id"] == "pole-07" and n["state"] == "online" for n in b.get("/api/nodes")),
             message="pole-07 online")
    r = httpx.put(f"{a.url}/api/teams/g01", headers=a.headers, timeout=10, json={
        "name": "G01", "kind": "grid_staff", "grids": ["G01"],
        "shifts": [{"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7)]})
    assert r.status_code == 200, r.text
    assert httpx.put(f"{a.url}/api/responders/zhang", headers=a.headers, timeout=10,
                     json={"name": "Zhang", "team": "g01"}).status_code == 200
    phone = {"Authorization": f"Bearer {b.login('zhang', 'responder-pass-1')}"}
    assert httpx.post(f"{b.url}/api/responder/duty", json={"on": True, "consent": True}, headers=phone,
                      timeout=10).status_code == 200
    node.control(cmd="press")
    alarm = wait_for(lambda: a.get("/api/alarms"), message="alarm stored")[0]

    async def scenario() -> tuple[dict, list[dict]]:
        ticket = httpx.post(f"{b.url}/api/live/ticket", headers=phone, timeout=10).json()["ticket"]
        ws_b = b.url.replace("http://", "ws://")
        seen: list[dict] = []
        async with websockets.connect(f"{ws_b}/api/responder/live?ticket={ticket}") as page, \
                websockets.connect(b.ws_url()) as console:
            assert json.loads(await page.recv())["type"] == "hello"
            assert json.loads(await console.recv())["type"] == "hello"

            async def read_console() -> None:
                async for raw in console:
                    seen.append(json.loads(raw))

            reader = asyncio.create_task(read_console())
            r = await asyncio.to_thread(lambda: httpx.post(f"{a.url}/api/alarms/{alarm['id']}/dispatches",
                                                           json={"to": ["zhang"]}, headers=a.headers, timeout=10))
            assert r.status_code == 200, r.text
            msg = json.loads(await asyncio.wait_for(page.recv(), 20))
            await asyncio.sleep(1)  # what the console on b gets meanwhile
            reader.cancel()
        assert msg["type"] == "task"
        return msg["task"], seen

    task, seen_by_console = asyncio.run(scenario())
    assert task["responder"] == "zhang" and task["state"] == "offered" and task["alarm_id"] == alarm["id"]
    assert not [m for m in seen_by_console if m.get("type") in ("task", "task_for")]
    assert any(m.get("type") == "dispatch" for m in seen_by_console)  # b's console follows the dispatch made on a
