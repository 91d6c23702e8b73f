"""The node page shows the wiring picture of the config in effect (issue 20, part 2): before the hub knows one
it says how to get it on the node (no failing request); once a pushed config is applied, the Pi header is
drawn with the node's own connections. In both languages."""

from __future__ import annotations

import pytest

from hub.transport.broker import Broker
from tests.conftest import ADMIN, wait_for
from tests.e2e.test_config_update import FAST_TRIAL, _yaml_with
from tests.web.test_browser import launched_chromium, login, watch_errors


@pytest.fixture()
def browser():
    yield from launched_chromium()


def test_the_node_page_draws_the_wiring_of_the_config_in_effect(broker: Broker, hub_factory, node_factory,
                                                               browser) -> None:
    hub = hub_factory(broker.url)
    node = node_factory("pole-w1", broker.url, hub.register("pole-w1"), updates=FAST_TRIAL)
    hub.wait_online("pole-w1")
    page = browser.new_page(viewport={"width": 1366, "height": 768})
    errors = watch_errors(page)
    login(page, hub.url, *ADMIN)
    if page.evaluate("pingan.lang") != "zh":
        page.click("header .lang")
    page.goto(hub.url + "/#/nodes/pole-w1")
    page.wait_for_selector("#node-wiring p.hint")
    assert "pingan-edge wiring" in page.inner_text("#node-wiring")

    r = hub.post("/api/nodes/pole-w1/config", {"yaml": _yaml_with(node, node={"place": "North gate"})})
    assert r.status_code < 300, r.text
    wait_for(lambda: any(u["state"] == "applied" for u in hub.get("/api/nodes/pole-w1/config/updates")), 60,
             message="the pushed config applied on the node")
    page.reload()
    page.wait_for_selector('#node-title[data-node="pole-w1"]')  # a reload on the node's page finds it (it said
    #                                                           "no such node" until the list was asked again)
    page.wait_for_selector("#node-wiring svg")
    pins = page.eval_on_selector_all("#node-wiring svg text[data-conn]", "els => els.map((e) => e.dataset.conn)")
    assert "pins.alarm_button" in pins and "pins.status_led" in pins, pins
    assert "接线图" in page.inner_text("#tab-nodes")
    page.click("header .lang")
    page.goto(hub.url + "/#/nodes/pole-w1")
    page.wait_for_selector("#node-wiring svg")
    assert "Wiring" in page.inner_text("#tab-nodes")
    assert not errors, errors
