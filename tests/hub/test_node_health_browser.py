"""The node page's last 48 hours (issue 21, hub/nodes/health.py), in real Chromium: a real node's heartbeats
through mosquitto fill this hour's bar; hours the hub heard nothing are drawn as gaps; a restart and the
hottest temperature are said in the summary and the hour-by-hour table, in both languages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from edge.protocol import Heartbeat
from hub.nodes.health import hour_of, roll_up
from hub.store.engine import make_engine
from hub.transport.broker import Broker
from tests.conftest import ADMIN, wait_for
from tests.web.test_browser import launched_chromium, login, watch_errors


@pytest.fixture()
def browser():
    yield from launched_chromium()


def test_the_node_page_draws_the_last_48_hours_of_heartbeats(broker: Broker, hub_factory, node_factory,
                                                            browser) -> None:
    hub = hub_factory(broker.url)
    node_factory("pole-t1", broker.url, hub.register("pole-t1"))
    hub.wait_online("pole-t1")
    wait_for(lambda: hub.get("/api/nodes/pole-t1/health")["rows"], 30, message="a heartbeat rolled up")
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    errors = watch_errors(page)
    login(page, hub.url, *ADMIN)
    if page.evaluate("pingan.lang") != "zh":
        page.click("header .lang")
    page.goto(hub.url + "/#/nodes/pole-t1")
    page.wait_for_selector("#node-trend svg")
    assert "收到心跳的小时 1/48" in page.inner_text("#node-trend-summary")
    assert page.locator("#node-trend rect").count() == 48
    assert page.locator("#node-trend rect.gap").count() == 47  # nothing heard before the node started
    # this hour's bar: the agent started this hour (drawn as a restart), unless the hour began since
    assert page.locator("#node-trend rect.ok, #node-trend rect.restart").count() == 1

    # three hours ago the node was running hot and restarted (written as the writer would have)
    engine = make_engine(f"sqlite:///{hub.data_dir / 'hub.db'}")
    then = hour_of(datetime.now(UTC)) - timedelta(hours=3) + timedelta(minutes=30)
    with engine.begin() as conn:
        roll_up(conn, [("pole-t1", Heartbeat(ts=then, uptime_s=120, outbox_depth=9, cpu_temp_c=78.4), then)])
    engine.dispose()
    restarts = sum(r["restarted"] for r in hub.get("/api/nodes/pole-t1/health")["rows"])
    assert restarts >= 1
    page.reload()
    page.wait_for_selector("#node-trend rect.restart")
    summary = page.inner_text("#node-trend-summary")
    assert "收到心跳的小时 2/48" in summary and f"重启 {restarts}" in summary and "最高温度 78.4 °C" in summary, summary
    assert page.locator("#node-trend rect.gap").count() == 46
    page.click("#node-trend summary")
    rows = page.locator("#node-trend-table tr[data-hour]")
    assert rows.count() == 2 and "78.4" in rows.nth(0).inner_text() and "✓" in rows.nth(0).inner_text()

    page.click("header .lang")
    page.goto(hub.url + "/#/nodes/pole-t1")
    page.wait_for_selector("#node-trend svg")
    summary = page.inner_text("#node-trend-summary")
    assert "Hours with heartbeats 2/48" in summary and f"Restarts {restarts}" in summary
    assert "Hottest 78.4 °C" in summary
    assert "Last 48 hours" in page.inner_text("#tab-nodes")
    assert not errors, errors
